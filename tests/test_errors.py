"""smrt's errors on bad input and broken SavedModels.

Every error derives from smrt.Error and from the builtin a caller would catch, its message
names the input, signature or path at fault, and a loaded model still runs correctly after
any error (checked by replaying the model zoo's reference cases for it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import smrt
from smrt.errors import STATUS_ERRORS

from .conftest import Zoo, assert_same

X = np.arange(6, dtype=np.float32).reshape(2, 3)


@contextlib.contextmanager
def raises(
    smrt_class: type[smrt.Error], builtin: type[BaseException], *fragments: str
) -> Iterator[pytest.ExceptionInfo[smrt.Error]]:
    """Expects ``smrt_class`` (which must also be a ``builtin``) with every fragment in its
    message."""
    with pytest.raises(smrt_class) as info:
        yield info
    assert isinstance(info.value, smrt.Error)
    assert isinstance(info.value, builtin), f"{type(info.value).__mro__} lacks {builtin}"
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def assert_still_runs(model: smrt.Model, zoo: Zoo, name: str) -> None:
    """The model gives TensorFlow's answers for every reference case of ``name``."""
    for i, case in enumerate(zoo.cases(name)):
        out = model.signatures[case.signature](**case.inputs)
        assert set(out) == set(case.outputs)
        for key, expected in case.outputs.items():
            assert_same(out[key], expected, f"{name} c{i} {case.signature}/{key}")


def copy_model(zoo: Zoo, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(zoo.path(name), target)
    return target


OPENERS = {"load": smrt.load, "inspect": smrt.inspect}
opener = pytest.mark.parametrize("open_model", OPENERS.values(), ids=OPENERS.keys())


# --- signatures ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["nope", "SERVING_DEFAULT", "", "serving_default "])
def test_unknown_signature_is_key_error(zoo: Zoo, loaded: Any, key: str) -> None:
    model = loaded("add_one")
    with raises(smrt.SignatureNotFoundError, KeyError, f"'{key}'", "serving_default"):
        model.signatures[key]
    assert key not in model.signatures
    assert model.signatures.get(key) is None
    assert_still_runs(model, zoo, "add_one")


@pytest.mark.parametrize("key", [3, None, b"serving_default", "\udcff"])
def test_signature_key_that_is_not_a_valid_str_is_key_error(
    zoo: Zoo, loaded: Any, key: Any
) -> None:
    model = loaded("add_one")
    with raises(smrt.SignatureNotFoundError, KeyError):
        model.signatures[key]
    assert key not in model.signatures
    assert_still_runs(model, zoo, "add_one")


def test_init_op_is_not_a_callable_signature(zoo: Zoo, loaded: Any) -> None:
    model = loaded("add_one")
    assert "__saved_model_init_op" in model.meta_graph.signatures
    assert "__saved_model_init_op" not in model.signatures
    with raises(smrt.SignatureNotFoundError, KeyError, "'__saved_model_init_op'", "init op"):
        model.signatures["__saved_model_init_op"]
    assert_still_runs(model, zoo, "add_one")


def test_model_without_signatures_calls_its_root(zoo: Zoo) -> None:
    """No default signature: model(...) is the root object's saved __call__ (issue 17), whose
    errors are typed too."""
    with smrt.load(zoo.path("module_no_signatures")) as model:
        assert list(model.signatures) == []
        assert float(model(x=np.float32(1))) == 1.0
        with raises(smrt.NoMatchingFunctionError, TypeError, "root.__call__", "Option 1:"):
            model(y=np.float32(1))


# --- input names and counts ----------------------------------------------------------------


def test_missing_input(zoo: Zoo, loaded: Any) -> None:
    model = loaded("add_one")
    with raises(smrt.InvalidInputError, ValueError, "'x'", "serving_default"):
        model()
    assert_still_runs(model, zoo, "add_one")


def test_missing_one_of_several_inputs(zoo: Zoo, loaded: Any) -> None:
    model = loaded("all_dtypes")
    with raises(smrt.InvalidInputError, ValueError, "'c'", "scalars"):
        model.signatures["scalars"](a=np.float32(1), b=np.int64(2))
    assert_still_runs(model, zoo, "all_dtypes")


@pytest.mark.parametrize("name", ["z", "X", "x "])
def test_unexpected_input_name(zoo: Zoo, loaded: Any, name: str) -> None:
    model = loaded("add_one")
    with raises(smrt.InvalidInputError, ValueError, f"'{name}'", "serving_default"):
        model(x=X, **{name: X})
    assert_still_runs(model, zoo, "add_one")


def test_input_name_that_is_not_valid_unicode_is_unexpected(zoo: Zoo, loaded: Any) -> None:
    model = loaded("add_one")
    with raises(smrt.InvalidInputError, ValueError, "serving_default"):
        model(**{"\udcff": X})
    assert_still_runs(model, zoo, "add_one")


@pytest.mark.parametrize(
    "call",
    [
        lambda sig: sig(X, x=X),
        lambda sig: sig({"x": X}, x=X),
    ],
    ids=["positional-and-keyword", "dict-and-keyword"],
)
def test_input_given_twice(zoo: Zoo, loaded: Any, call: Callable[[Any], Any]) -> None:
    model = loaded("add_one")
    with raises(smrt.InvalidInputError, ValueError, "'x'", "twice"):
        call(model.signatures["serving_default"])
    assert_still_runs(model, zoo, "add_one")


def test_too_many_positionals(zoo: Zoo, loaded: Any) -> None:
    model = loaded("add_one")
    with raises(smrt.InvalidInputError, ValueError, "serving_default", "positional"):
        model(X, X)
    assert_still_runs(model, zoo, "add_one")


def test_positional_for_a_signature_with_several_inputs(zoo: Zoo, loaded: Any) -> None:
    scalars = loaded("all_dtypes").signatures["scalars"]
    with raises(smrt.InvalidInputError, ValueError, "scalars", "a, b, c"):
        scalars(np.float32(1))
    assert_still_runs(loaded("all_dtypes"), zoo, "all_dtypes")


@pytest.mark.parametrize("key", [1, b"x", None, ("x",)])
def test_non_str_dict_key(zoo: Zoo, loaded: Any, key: Any) -> None:
    model = loaded("add_one")
    with raises(smrt.InvalidInputError, ValueError, "serving_default", type(key).__name__):
        model({key: X})
    assert_still_runs(model, zoo, "add_one")


# --- shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected", "got"),
    [
        ("add_one", np.ones(3, np.float32), "(None, None)", "(3,)"),
        ("add_one", np.ones((1, 2, 3), np.float32), "(None, None)", "(1, 2, 3)"),
        ("add_one", np.float32(1), "(None, None)", "()"),
        ("tiny_add", np.ones(4, np.float32), "(1, 4)", "(4,)"),
        ("control_flow", np.array([1], np.int32), "()", "(1,)"),
    ],
)
def test_wrong_rank(
    zoo: Zoo, loaded: Any, name: str, value: np.ndarray, expected: str, got: str
) -> None:
    model = loaded(name)
    with raises(smrt.InvalidInputError, ValueError, "'x'", expected, got):
        model(x=value)
    assert_still_runs(model, zoo, name)


def test_wrong_rank_of_a_string_input(zoo: Zoo, loaded: Any) -> None:
    model = loaded("parse_example")
    with raises(smrt.InvalidInputError, ValueError, "'examples'", "(None,)", "()"):
        model(examples=b"x")
    assert_still_runs(model, zoo, "parse_example")


@pytest.mark.parametrize("shape", [(1, 5), (2, 4), (1, 3), (0, 4), (4, 1)])
def test_fixed_dimension_mismatch(zoo: Zoo, loaded: Any, shape: tuple[int, int]) -> None:
    model = loaded("tiny_add")
    with raises(smrt.InvalidInputError, ValueError, "'x'", "(1, 4)", str(shape)):
        model(x=np.ones(shape, np.float32))
    assert_still_runs(model, zoo, "tiny_add")


# --- dtypes and values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "inputs", "bad", "got"),
    [
        ("add_one", {"x": X.astype(np.float64)}, "x", "float64"),
        ("add_one", {"x": X.astype(np.float16)}, "x", "float16"),
        ("add_one", {"x": X.astype(np.int32)}, "x", "int32"),
        ("control_flow", {"x": np.array(1, np.int64)}, "x", "int64"),
        ("control_flow", {"x": np.array(1, np.uint32)}, "x", "uint32"),
        ("parse_example", {"examples": np.array([1, 2])}, "examples", "int64"),
        ("parse_example", {"examples": np.array([1.5])}, "examples", "float64"),
        ("multiple_signatures", {"string_input": np.array(1.5)}, "string_input", "float64"),
        ("add_one", {"x": np.array([["1", "2"]])}, "x", "U1"),
        ("add_one", {"x": np.array([[b"1", b"2"]])}, "x", "S1"),
        ("add_one", {"x": np.ones((1, 2), object)}, "x", "object"),
    ],
)
def test_wrong_dtype_array(
    zoo: Zoo, loaded: Any, name: str, inputs: dict[str, Any], bad: str, got: str
) -> None:
    model = loaded(name)
    with raises(smrt.InputTypeError, TypeError, f"'{bad}'", got):
        model(**inputs)
    assert_still_runs(model, zoo, name)


@pytest.mark.parametrize(
    "value",
    [object(), {"a": 1}, None, [[1.0, 2.0], [3.0]], (v for v in [1.0]), 1j, "1.5", b"1.5"],
    ids=["object", "dict", "None", "ragged-list", "generator", "complex", "str", "bytes"],
)
def test_value_that_is_not_array_like_for_a_float_input(
    zoo: Zoo, loaded: Any, value: Any
) -> None:
    model = loaded("add_one")
    with raises(smrt.InputTypeError, TypeError, "'x'", "serving_default"):
        model(x=value)
    assert_still_runs(model, zoo, "add_one")


@pytest.mark.parametrize(
    "value",
    [object(), {"a": b"x"}, None, 5, 1.5, np.array(5), np.float32(1), "\udcff"],
    ids=["object", "dict", "None", "int", "float", "int-array", "float32", "surrogate"],
)
def test_value_that_is_not_a_string_for_a_string_scalar(
    zoo: Zoo, loaded: Any, value: Any
) -> None:
    model = loaded("multiple_signatures")
    with raises(smrt.InputTypeError, TypeError, "'string_input'", "serving_default"):
        model(string_input=value)
    assert_still_runs(model, zoo, "multiple_signatures")


@pytest.mark.parametrize(
    "value",
    [
        np.array([b"x", None], dtype=object),
        np.array([b"x", 1], dtype=object),
        np.array([b"x", 1.5], dtype=object),
        np.array([b"x", [b"y"]], dtype=object),
        [None],
        ["ok", "\udcff"],
        [5],
    ],
    ids=["None-element", "int-element", "float-element", "list-element", "None-list",
         "surrogate-list", "int-list"],
)
def test_value_that_is_not_strings_for_a_string_vector(
    zoo: Zoo, loaded: Any, value: Any
) -> None:
    model = loaded("parse_example")
    with raises(smrt.InputTypeError, TypeError, "'examples'", "serving_default"):
        model(examples=value)
    assert_still_runs(model, zoo, "parse_example")


@pytest.mark.parametrize("value", [object(), {"a": b"x"}], ids=["object", "dict"])
def test_object_that_is_not_array_like_for_a_string_vector_is_type_error(
    zoo: Zoo, loaded: Any, value: Any
) -> None:
    """Not array-like is a type error, whatever the input's rank."""
    model = loaded("parse_example")
    with raises(smrt.InputTypeError, TypeError, "'examples'", "serving_default"):
        model(examples=value)
    assert_still_runs(model, zoo, "parse_example")


@pytest.mark.parametrize(
    "value", [[1, b"x"], [b"x", 2.5], ["x", True]], ids=["int", "float", "bool"]
)
def test_list_mixing_numbers_and_strings_for_a_string_input_is_type_error(
    zoo: Zoo, loaded: Any, value: list[Any]
) -> None:
    """NumPy would turn the number into its decimal string; a string input must not."""
    model = loaded("parse_example")
    with raises(smrt.InputTypeError, TypeError, "'examples'", "serving_default"):
        model(examples=value)
    assert_still_runs(model, zoo, "parse_example")


@pytest.mark.parametrize("value", [2.5, 2.0, -1.0, float("nan"), np.float64(2)])
def test_python_float_to_an_int_input_is_type_error(
    zoo: Zoo, loaded: Any, value: float
) -> None:
    model = loaded("control_flow")  # x: int32 scalar
    with raises(smrt.InputTypeError, TypeError, "'x'", "int32"):
        model(x=value)
    assert_still_runs(model, zoo, "control_flow")


@pytest.mark.parametrize("value", [3, -2, 0, True])
def test_python_int_to_a_float_input_is_allowed(zoo: Zoo, loaded: Any, value: int) -> None:
    model = loaded("all_dtypes")
    out = model.signatures["scalars"](a=value, b=7, c=b"c")
    assert out["o_a"].dtype == np.float32
    assert out["o_a"] == np.float32(2 * value)
    assert out["o_b"] == 8
    assert_still_runs(model, zoo, "all_dtypes")


@pytest.mark.parametrize("value", [128, 300, -129, 2**63, 2**70])
def test_out_of_range_python_int_for_an_int8_input(zoo: Zoo, loaded: Any, value: int) -> None:
    model = loaded("all_dtypes")
    sig = model.signatures["serving_default"]
    inputs = {k: np.zeros(1, s.numpy_dtype) for k, s in sig.inputs.items() if k != "s"}
    inputs["s"] = np.array([b""], dtype=object)
    inputs["i8"] = [value]  # NumPy would wrap (or refuse); smrt must not feed a wrapped value
    with raises(smrt.InputTypeError, TypeError, "'i8'"):
        sig(**inputs)
    assert_still_runs(model, zoo, "all_dtypes")


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**64])
def test_out_of_range_python_int_for_an_int32_scalar(zoo: Zoo, loaded: Any, value: int) -> None:
    model = loaded("control_flow")
    with raises(smrt.InputTypeError, TypeError, "'x'"):
        model(x=value)
    assert_still_runs(model, zoo, "control_flow")


@pytest.mark.parametrize("value", [[np.int64(300)], [np.int64(-1)], [1, np.int64(2**40)]])
def test_numpy_integers_that_do_not_fit_are_refused(zoo: Zoo, value: object) -> None:
    sig = smrt.load(zoo.path("all_dtypes")).signatures["serving_default"]
    inputs = {k: np.zeros(len(value), spec.numpy_dtype) for k, spec in sig.inputs.items()}  # type: ignore[arg-type]
    inputs["s"] = np.array([b"s"] * len(value), dtype=object)  # type: ignore[arg-type]
    inputs["u8"] = value
    with pytest.raises(smrt.InputTypeError, match=r"'u8'.*does not hold"):
        sig(**inputs)


# --- TensorFlow errors while running -------------------------------------------------------


@pytest.mark.parametrize(
    "examples",
    [[b"not a serialized Example"], [b"\xff\xff\xff"], np.array(["\u00e9" * 40])],
    ids=["text", "bad-varint", "unicode"],
)
def test_tensorflow_status_error_while_running(zoo: Zoo, loaded: Any, examples: Any) -> None:
    model = loaded("parse_example")
    with raises(smrt.InvalidArgumentError, ValueError, "serving_default") as info:
        model(examples=examples)
    assert isinstance(info.value, smrt.StatusError)
    assert info.value.code == 3
    assert_still_runs(model, zoo, "parse_example")


# --- the SavedModel directory --------------------------------------------------------------


@opener
def test_missing_directory(tmp_path: Path, open_model: Any) -> None:
    missing = tmp_path / "no" / "such" / "model"
    with raises(smrt.ModelNotFoundError, FileNotFoundError, str(missing)):
        open_model(missing)


@opener
def test_missing_directory_with_a_non_utf8_name(tmp_path: Path, open_model: Any) -> None:
    missing = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9")  # a Latin-1 name: "caf\udce9"
    with raises(smrt.ModelNotFoundError, FileNotFoundError, str(tmp_path)):
        open_model(missing)


@opener
def test_path_is_a_file(tmp_path: Path, open_model: Any) -> None:
    file = tmp_path / "saved_model.pb"
    file.write_bytes(b"")
    with raises(smrt.ModelNotFoundError, FileNotFoundError, str(file)):
        open_model(file)


@opener
def test_directory_without_saved_model_pb(tmp_path: Path, open_model: Any) -> None:
    (tmp_path / "variables").mkdir()
    with raises(smrt.ModelNotFoundError, FileNotFoundError, str(tmp_path), "saved_model.pb") as e:
        open_model(tmp_path)
    assert "TF Serving" not in str(e.value)


@opener
def test_tf_serving_base_path_names_the_newest_version(
    zoo: Zoo, tmp_path: Path, open_model: Any
) -> None:
    for version in ("1", "12", "3"):
        shutil.copytree(zoo.path("tiny_add"), tmp_path / version)
    (tmp_path / "99").mkdir()  # no saved_model.pb: not a version
    with raises(smrt.ModelNotFoundError, FileNotFoundError, "TF Serving", str(tmp_path / "12")):
        open_model(tmp_path)


@opener
def test_empty_saved_model_pb(tmp_path: Path, open_model: Any) -> None:
    pb = tmp_path / "saved_model.pb"
    pb.write_bytes(b"")
    with raises(smrt.DataLossError, smrt.StatusError, str(pb), "empty"):
        open_model(tmp_path)


def test_saved_model_pb_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").mkdir()
    for call in (smrt.inspect, smrt.load):
        with pytest.raises(smrt.DataLossError, match="not a regular file"):
            call(tmp_path)


@opener
@pytest.mark.parametrize("keep", [1, 2, 3, 10, 100, 0.5, 0.9, -2, -1])
def test_truncated_saved_model_pb(
    zoo: Zoo, loaded: Any, tmp_path: Path, open_model: Any, keep: float
) -> None:
    model_dir = copy_model(zoo, "tiny_add", tmp_path)
    pb = model_dir / "saved_model.pb"
    data = pb.read_bytes()
    size = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    pb.write_bytes(data[:size])
    with raises(smrt.DataLossError, smrt.StatusError, str(pb)):
        open_model(model_dir)
    assert_still_runs(loaded("tiny_add"), zoo, "tiny_add")


def test_every_truncation_of_saved_model_pb_is_data_loss(zoo: Zoo, tmp_path: Path) -> None:
    model_dir = copy_model(zoo, "add_one", tmp_path)
    pb = model_dir / "saved_model.pb"
    data = pb.read_bytes()
    for size in range(len(data)):
        pb.write_bytes(data[:size])
        with raises(smrt.DataLossError, smrt.StatusError, str(pb)):
            smrt.inspect(model_dir)


@opener
@pytest.mark.parametrize(
    "garbage",
    [
        np.random.default_rng(0).bytes(5000),
        np.random.default_rng(1).bytes(7),
        b"\x00" * 100,
        b"\xff" * 100,
        b"\x12\xff\xff\xff\xff\x0f",  # field 2 claiming a 4 GB MetaGraph
        b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a length that overflows int64
        b"\x08\x01",  # a valid SavedModel with no MetaGraph
        b"saved_model_schema_version: 1\nmeta_graphs {}\n",  # text format
    ],
    ids=["random", "short-random", "zeros", "ones", "huge-length", "overflow", "no-meta", "text"],
)
def test_garbage_saved_model_pb(
    zoo: Zoo, loaded: Any, tmp_path: Path, open_model: Any, garbage: bytes
) -> None:
    pb = tmp_path / "saved_model.pb"
    pb.write_bytes(garbage)
    with raises(smrt.DataLossError, smrt.StatusError, str(pb)):
        open_model(tmp_path)
    assert_still_runs(loaded("tiny_add"), zoo, "tiny_add")


@opener
@pytest.mark.parametrize(
    "needle",
    [b'"\x05serve', b"tensorflow/serving/predict", b"serving_default_x:0"],
    ids=["tag", "method-name", "tensor-name"],
)
def test_saved_model_pb_with_invalid_utf8_in_a_string_field(
    zoo: Zoo, tmp_path: Path, open_model: Any, needle: bytes
) -> None:
    """Protobuf string fields must be UTF-8: TensorFlow rejects such a file as DataLoss."""
    model_dir = copy_model(zoo, "tiny_add", tmp_path)
    pb = model_dir / "saved_model.pb"
    data = bytearray(pb.read_bytes())
    at = data.find(needle)
    assert at >= 0
    data[at + len(needle) - 3] = 0xFF
    pb.write_bytes(bytes(data))
    with raises(smrt.DataLossError, smrt.StatusError, str(model_dir)):
        open_model(model_dir)


@pytest.mark.parametrize("tags", [("serve", "gpu"), ("train",), "serve,tpu", (), ("SERVE",)])
def test_tag_set_that_is_not_there(zoo: Zoo, loaded: Any, tags: Any) -> None:
    path = zoo.path("add_one")
    with raises(smrt.NotFoundError, LookupError, path, "tag-set", "'serve'") as info:
        smrt.load(path, tags=tags)
    assert isinstance(info.value, smrt.StatusError)
    assert info.value.code == 5
    assert_still_runs(loaded("add_one"), zoo, "add_one")


def test_inspect_tag_set_that_is_not_there(zoo: Zoo) -> None:
    info = smrt.inspect(zoo.path("add_one"))
    with raises(smrt.NotFoundError, LookupError, zoo.path("add_one"), "gpu", "'serve'"):
        info.meta_graph(("serve", "gpu"))


def _flip_first_bytes(data: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in data[:4]) + data[4:]


@pytest.mark.parametrize(
    ("target", "corrupt"),
    [
        ("variables.data-00000-of-00001", _flip_first_bytes),
        ("variables.data-00000-of-00001", lambda d: np.random.default_rng(2).bytes(len(d))),
        ("variables.data-00000-of-00001", lambda d: d[:2]),
        ("variables.data-00000-of-00001", lambda d: b""),
        ("variables.index", lambda d: np.random.default_rng(3).bytes(len(d))),
        ("variables.index", lambda d: d[: len(d) // 2]),
        ("variables.index", lambda d: b""),
    ],
    ids=["data-flipped", "data-random", "data-truncated", "data-empty", "index-random",
         "index-truncated", "index-empty"],
)
def test_corrupt_variables_fail_at_load(
    zoo: Zoo, loaded: Any, tmp_path: Path, target: str, corrupt: Callable[[bytes], bytes]
) -> None:
    for name in ("stateful", "keras_mobilenet"):
        model_dir = copy_model(zoo, name, tmp_path)
        file = model_dir / "variables" / target
        file.write_bytes(corrupt(file.read_bytes()))
        with raises(smrt.StatusError, smrt.Error, str(model_dir)) as info:
            smrt.load(model_dir)
        assert type(info.value) in STATUS_ERRORS.values(), type(info.value)
        assert type(info.value).code == info.value.code
    assert_still_runs(loaded("add_one"), zoo, "add_one")


def test_missing_variables_data_file(zoo: Zoo, tmp_path: Path) -> None:
    model_dir = copy_model(zoo, "stateful", tmp_path)
    (model_dir / "variables" / "variables.data-00000-of-00001").unlink()
    with raises(smrt.NotFoundError, LookupError, str(model_dir)):
        smrt.load(model_dir)


def test_tensorflow_error_whose_message_is_not_utf8(zoo: Zoo, tmp_path: Path) -> None:
    """Corrupting the checkpoint key the restore function reads makes TensorFlow fail with
    NOT_FOUND, quoting the key's (now non-UTF-8) bytes in its message."""
    model_dir = copy_model(zoo, "stateful", tmp_path)
    pb = model_dir / "saved_model.pb"
    data = bytearray(pb.read_bytes())
    at = data.rfind(b"v/.ATTRIBUTES/VARIABLE_VALUE")
    assert at >= 0
    data[at + 6] = 0x8F
    pb.write_bytes(bytes(data))
    with raises(smrt.NotFoundError, LookupError, str(model_dir)):
        smrt.load(model_dir)


# --- closed models -------------------------------------------------------------------------


def test_call_after_close(zoo: Zoo) -> None:
    model = smrt.load(zoo.path("add_one"))
    signature = model.signatures["serving_default"]
    model.close()
    assert model.closed
    with raises(smrt.ModelClosedError, RuntimeError, zoo.path("add_one"), "closed"):
        model(x=X)
    with raises(smrt.ModelClosedError, RuntimeError, zoo.path("add_one")):
        signature(x=X)
    assert "closed" in repr(model)


def test_call_after_leaving_with_block(zoo: Zoo) -> None:
    with smrt.load(zoo.path("multiple_signatures")) as model:
        assert model(string_input=b"2")["output_0"] == 2.0
        from_float = model.signatures["from_float"]
    assert model.closed
    with raises(smrt.ModelClosedError, RuntimeError, zoo.path("multiple_signatures")):
        model(string_input=b"2")
    with raises(smrt.ModelClosedError, RuntimeError, zoo.path("multiple_signatures")):
        from_float(x=np.float32(1))


def test_with_block_closes_on_error(zoo: Zoo) -> None:
    with pytest.raises(smrt.InvalidInputError), smrt.load(zoo.path("add_one")) as model:
        model(y=X)
    assert model.closed


def test_close_twice_is_fine(zoo: Zoo) -> None:
    model = smrt.load(zoo.path("add_one"))
    model.close()
    model.close()
    with model:
        pass
    assert model.closed


def test_closing_one_model_leaves_another_of_the_same_path_running(zoo: Zoo) -> None:
    first, second = smrt.load(zoo.path("add_one")), smrt.load(zoo.path("add_one"))
    first.close()
    np.testing.assert_array_equal(second(x=X)["y"], X + 1)
    second.close()



def test_every_error_code_has_one_class() -> None:
    # One table: the C++ core's codes, each raised as the smrt.errors class that declares it.
    assert sorted(smrt._core.ERROR_CODES.values()) == sorted(smrt.errors.ERRORS)
    for code, cls in smrt.errors.ERRORS.items():
        assert cls.code == code
        assert issubclass(cls, smrt.Error)
    status_classes = {code: cls for code, cls in smrt.errors.ERRORS.items() if code <= 16}
    assert status_classes == smrt.errors.STATUS_ERRORS
