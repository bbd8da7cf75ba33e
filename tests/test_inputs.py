"""The input forms smrt accepts, what it returns, and its 64-byte-aligned allocators.

Expected values are computed with NumPy from what each zoo model does (see model_zoo.py):
add_one: y = x + 1; tiny_add: y = x + x; module_with_signature: x * 1.0; all_dtypes'
serving_default: x + x (not x for bool, x + x joined for strings); all_dtypes' scalars:
(a * 2, b + 1, c); multiple_signatures: float(string_input) and x; control_flow: x % 3.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import smrt

from .conftest import Zoo

BASE = np.arange(24, dtype=np.float32).reshape(4, 6) - 7.5


def unaligned(array: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``array`` whose data is NOT 64-byte aligned."""
    offset = max(array.dtype.itemsize, 1)
    buffer = smrt.empty(array.nbytes + offset, np.uint8)
    out = buffer[offset : offset + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    assert array.size == 0 or out.ctypes.data % 64 != 0
    return out


def read_only(array: np.ndarray) -> np.ndarray:
    out = array.copy()
    out.setflags(write=False)
    return out


def dtype_inputs(sig: smrt.Signature, n: int) -> dict[str, np.ndarray]:
    """n values for every input of all_dtypes' serving_default."""
    out: dict[str, np.ndarray] = {}
    for key, spec in sig.inputs.items():
        if spec.dtype == "string":
            out[key] = np.array([f"s{i}".encode() for i in range(n)], dtype=object)
        elif spec.dtype == "bool":
            out[key] = np.arange(n) % 2 == 0
        else:
            out[key] = (np.arange(n) - n // 2).astype(spec.numpy_dtype)
    return out


def touched(x: np.ndarray) -> np.ndarray:
    """What all_dtypes' serving_default returns for x."""
    if x.dtype == np.bool_:
        return ~x
    if x.dtype == object:
        return np.array([v + v for v in x.tolist()], dtype=object)
    return x + x


def assert_outputs_of(inputs: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> None:
    assert set(out) == {f"o_{k}" for k in inputs}
    for key, x in inputs.items():
        native = x.astype(x.dtype.newbyteorder("=")) if x.dtype.kind != "O" else x
        expected = touched(native)
        got = out[f"o_{key}"]
        assert got.dtype == expected.dtype, key
        assert got.shape == expected.shape, key
        if x.dtype.kind == "O":
            assert got.tolist() == expected.tolist(), key
        else:
            assert got.tobytes() == expected.tobytes(), key


# --- calling conventions -------------------------------------------------------------------


def test_single_input_positional(loaded: Any) -> None:
    model = loaded("add_one")
    np.testing.assert_array_equal(model(BASE)["y"], BASE + 1)
    np.testing.assert_array_equal(model.signatures["serving_default"](BASE)["y"], BASE + 1)


def test_one_dict_positional(loaded: Any) -> None:
    np.testing.assert_array_equal(loaded("add_one")({"x": BASE})["y"], BASE + 1)
    scalars = loaded("all_dtypes").signatures["scalars"]
    out = scalars({"a": np.float32(1.5), "b": np.int64(2), "c": b"c"})
    assert (out["o_a"], out["o_b"], out["o_c"]) == (3.0, 3, b"c")


def test_signature_without_inputs(zoo: Zoo) -> None:
    with smrt.load(zoo.path("stateful")) as model:
        assert model.signatures["read"]()["v"] == np.float32(1)
        assert model.signatures["read"]({})["v"] == np.float32(1)


def test_numpy_scalars(loaded: Any) -> None:
    out = loaded("all_dtypes").signatures["scalars"](
        a=np.float32(3), b=np.int64(4), c=np.bytes_(b"c")
    )
    assert (out["o_a"], out["o_b"], out["o_c"]) == (6.0, 5, b"c")
    assert loaded("module_with_signature")(np.float32(3))["output_0"] == np.float32(3)
    assert loaded("control_flow")(x=np.int32(5))["y"] == 2


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("a", 1.25, 2.5),
        ("a", 3, 6.0),
        ("a", np.float32(1.25), 2.5),
        ("a", np.array(1.25, np.float32), 2.5),
        ("b", 7, 8),
        ("b", -(2**62), -(2**62) + 1),
        ("b", np.int64(7), 8),
        ("b", np.array(7, np.int64), 8),
        ("c", "x", b"x"),
        ("c", b"x", b"x"),
        ("c", np.str_("x"), b"x"),
        ("c", np.bytes_(b"x"), b"x"),
        ("c", np.array("x"), b"x"),
        ("c", np.array(b"x"), b"x"),
        ("c", np.array(b"x", dtype=object), b"x"),
        ("c", np.array("x", dtype=object), b"x"),
    ],
)
def test_python_scalars_and_0d_arrays_for_scalar_inputs(
    loaded: Any, key: str, value: Any, expected: Any
) -> None:
    inputs: dict[str, Any] = {"a": np.float32(0), "b": np.int64(0), "c": b""}
    inputs[key] = value
    out = loaded("all_dtypes").signatures["scalars"](**inputs)
    got = out[f"o_{key}"]
    assert got.shape == ()
    assert got.dtype == {"a": np.float32, "b": np.int64, "c": object}[key]
    assert got[()] == expected
    if key == "c":
        assert type(got[()]) is bytes


@pytest.mark.parametrize("value", [3, 3.0, np.float32(3), np.array(3.0, np.float32), True])
def test_python_scalars_for_an_unknown_rank_float_input(loaded: Any, value: Any) -> None:
    out = loaded("multiple_signatures").signatures["from_float"](value)["output_0"]
    assert out.shape == ()
    assert out == np.float32(value)


@pytest.mark.parametrize("value", [5, -1, np.int32(5), np.array(5, np.int32), True])
def test_python_and_numpy_scalars_for_an_int32_input(loaded: Any, value: Any) -> None:
    expected = -1 if int(value) < 0 else int(value) % 3
    assert loaded("control_flow")(x=value)["y"] == expected


@pytest.mark.parametrize(
    "kind", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
             "float16", "bfloat16", "float32", "float64", "complex64", "complex128"]
)
def test_python_int_list_for_every_numeric_dtype(loaded: Any, kind: str) -> None:
    sig = loaded("all_dtypes").signatures["serving_default"]
    inputs: dict[str, Any] = dtype_inputs(sig, 3)
    key = next(k for k, s in sig.inputs.items() if s.dtype == kind)
    inputs[key] = [0, 1, 50]
    out = sig(**inputs)[f"o_{key}"]
    assert out.dtype == sig.inputs[key].numpy_dtype
    np.testing.assert_array_equal(out.astype(np.complex128), [0, 2, 100])


def test_array_conversion_that_frees_another_input(zoo: Zoo) -> None:
    with smrt.load(zoo.path("dynamic_shapes")) as model:
        sig = model.signatures["serving_default"]
        inputs: dict[str, object] = {}

        class DropsZ:
            def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
                inputs.pop("z", None)  # the caller's last reference to z
                [np.full(2, 7.0, np.float32) for _ in range(50)]  # reuse its memory
                return np.zeros((1, 1, 3), np.float32)

        inputs.update(x=DropsZ(), z=np.array([1.0, 2.0], np.float32))
        np.testing.assert_array_equal(sig(inputs)["w"], [2.0, 4.0])


# --- strings -------------------------------------------------------------------------------

STRINGS = ["", "é", "ünïcødé ✓, and longer than 22 bytes", "a\0b", "\0lead", "x" * 100]
ENCODED = [s.encode() for s in STRINGS]
STRING_FORMS: dict[str, Callable[[], Any]] = {
    "list-of-str": lambda: list(STRINGS),
    "tuple-of-bytes": lambda: tuple(ENCODED),
    "U-array": lambda: np.array(STRINGS),
    "S-array": lambda: np.array(ENCODED),
    "object-bytes": lambda: np.array(ENCODED, dtype=object),
    "object-str": lambda: np.array(STRINGS, dtype=object),
    "object-mixed": lambda: np.array(
        [s if i % 2 else e for i, (s, e) in enumerate(zip(STRINGS, ENCODED, strict=True))],
        dtype=object,
    ),
    "object-sliced": lambda: np.array([v for e in ENCODED for v in (e, b"skip")], object)[::2],
    "U-sliced": lambda: np.array([v for s in STRINGS for v in (s, "skip")])[::2],
    "S-reversed": lambda: np.array(ENCODED[::-1])[::-1],
    "U-big-endian": lambda: _big_endian(np.array(STRINGS)),
    "U-big-endian-sliced": lambda: _big_endian(np.array(STRINGS).repeat(2))[::2],
}


def _big_endian(array: np.ndarray) -> np.ndarray:
    return array.astype(array.dtype.newbyteorder(">"))


@pytest.mark.parametrize("form", STRING_FORMS.values(), ids=STRING_FORMS.keys())
def test_string_input_forms(loaded: Any, form: Callable[[], Any]) -> None:
    sig = loaded("all_dtypes").signatures["serving_default"]
    inputs: dict[str, Any] = dtype_inputs(sig, len(STRINGS))
    inputs["s"] = form()
    out = sig(**inputs)["o_s"]
    assert out.dtype == object
    assert out.shape == (len(STRINGS),)
    assert out.tolist() == [e + e for e in ENCODED]
    assert all(type(v) is bytes for v in out.tolist())


@pytest.mark.parametrize(
    "wrap", [list, lambda v: np.array(v, dtype=object)], ids=["list", "object"]
)
def test_trailing_nul_bytes_are_kept(loaded: Any, wrap: Callable[[list[bytes]], Any]) -> None:
    sig = loaded("all_dtypes").signatures["serving_default"]
    inputs: dict[str, Any] = dtype_inputs(sig, 3)
    inputs["s"] = wrap([b"ab\0", b"\0", b"\0\0\0"])
    assert sig(**inputs)["o_s"].tolist() == [b"ab\0ab\0", b"\0\0", b"\0" * 6]


def test_code_points_past_unicode_are_refused(loaded: Any) -> None:
    sig = loaded("all_dtypes").signatures["serving_default"]
    inputs: dict[str, Any] = dtype_inputs(sig, 2)
    inputs["s"] = np.array([0x41, 0x110000], np.uint32).view("<U1")
    with pytest.raises(smrt.errors.InputTypeError, match=r"input 's' .* not valid Unicode"):
        sig(**inputs)


def test_a_copy_too_large_for_memory_raises(loaded: Any) -> None:
    # A broadcast view: 16 TiB of float32 without the memory; the copy cannot be allocated.
    huge = np.broadcast_to(np.float32(1), (1 << 42,))
    sig = loaded("dynamic_shapes").signatures["serving_default"]
    with pytest.raises(smrt.errors.ResourceExhaustedError, match="out of memory"):
        sig(x=np.zeros((1, 1, 3), np.float32), z=huge)


SCALAR_STRING = "ünïcødé ✓ with a NUL \0 inside, and longer than 22 bytes"


@pytest.mark.parametrize(
    "value",
    [
        SCALAR_STRING,
        SCALAR_STRING.encode(),
        np.str_(SCALAR_STRING),
        np.bytes_(SCALAR_STRING.encode()),
        np.array(SCALAR_STRING),
        np.array(SCALAR_STRING.encode()),
        np.array(SCALAR_STRING, dtype=object),
    ],
    ids=["str", "bytes", "np.str_", "np.bytes_", "0d-U", "0d-S", "0d-object"],
)
def test_scalar_string_forms(loaded: Any, value: Any) -> None:
    out = loaded("all_dtypes").signatures["scalars"](a=0.0, b=0, c=value)["o_c"]
    assert out.dtype == object
    assert out.shape == ()
    assert out[()] == SCALAR_STRING.encode()


def test_string_outputs_are_object_arrays_of_bytes(loaded: Any) -> None:
    examples = smrt.tf_example.encode_batch([{"x": 1.0, "ids": [1], "name": "név"}, {"x": 2.0}])
    out = loaded("parse_example")(examples=examples)
    assert out["name"].dtype == object
    assert out["name"].tolist() == ["név".encode(), b""]
    assert all(type(v) is bytes for v in out["name"].tolist())


def test_bytearray_and_memoryview_string_elements(zoo: Zoo) -> None:
    with smrt.load(zoo.path("multiple_signatures")) as model:
        parse = model.signatures["serving_default"]
        for value, expected in ((bytearray(b"2.5"), 2.5), (memoryview(b"1.5"), 1.5)):
            element = np.empty((), dtype=object)
            element[()] = value
            assert parse(string_input=element)["output_0"] == expected
        with smrt.load(zoo.path("parse_example")) as examples:
            batch = np.empty(1, dtype=object)  # (NumPy would unpack a bytearray in a list)
            batch[0] = bytearray(smrt.tf_example.encode({"x": [1.0]}))
            assert examples(examples=batch)["x"].tolist() == [[1.0]]


# --- memory layout -------------------------------------------------------------------------

LAYOUTS: dict[str, Callable[[], np.ndarray]] = {
    "sliced": lambda: BASE[::2, 1::2],
    "transposed": lambda: BASE.T,
    "fortran": lambda: np.asfortranarray(BASE),
    "reversed": lambda: BASE[::-1, ::-1],
    "broadcast": lambda: np.broadcast_to(BASE[1], (5, 6)),
    "unaligned": lambda: unaligned(BASE),
    "read-only": lambda: read_only(BASE),
    "big-endian": lambda: BASE.astype(">f4"),
    "big-endian-transposed": lambda: BASE.astype(">f4").T,
    "big-endian-aligned": lambda: smrt.aligned(BASE.astype(">f4")),
}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_any_memory_layout_gives_correct_results(
    loaded: Any, layout: Callable[[], np.ndarray]
) -> None:
    x = layout()
    before = x.copy()
    expected = x.astype(np.float32) + 1
    y = loaded("add_one")(x)["y"]
    assert y.dtype == np.float32
    assert y.flags.c_contiguous
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(x, before)


def test_big_endian_inputs_of_every_dtype(loaded: Any) -> None:
    sig = loaded("all_dtypes").signatures["serving_default"]
    inputs = dtype_inputs(sig, 5)
    swapped = {
        k: v.astype(v.dtype.newbyteorder(">")) if v.dtype.kind in "iufc" else v
        for k, v in inputs.items()
    }
    assert_outputs_of(inputs, sig(**swapped))


@pytest.mark.parametrize(
    ("shape", "expected"), [((0, 3), (0, 3)), ((3, 0), (3, 0)), ((0, 0), (0, 0))]
)
def test_zero_size_inputs(loaded: Any, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    for x in (np.zeros(shape, np.float32), smrt.zeros(shape, np.float32)):
        y = loaded("add_one")(x)["y"]
        assert (y.shape, y.dtype) == (expected, np.float32)


def test_zero_size_inputs_with_dynamic_dims(loaded: Any) -> None:
    out = loaded("dynamic_shapes")(x=np.zeros((0, 5, 3), np.float32), z=np.zeros(0, np.float32))
    assert out["y"].shape == (0, 3)
    assert out["w"].shape == (0,)
    out = loaded("dynamic_shapes")(
        x=np.zeros((2, 0, 3), np.float32), z=np.zeros((3, 0, 1), np.float32)
    )
    np.testing.assert_array_equal(out["y"], np.zeros((2, 3), np.float32))
    assert out["w"].shape == (3, 0, 1)


def test_zero_size_inputs_of_every_dtype(loaded: Any) -> None:
    sig = loaded("all_dtypes").signatures["serving_default"]
    inputs = dtype_inputs(sig, 0)
    inputs["s"] = np.array([], dtype=object)
    assert_outputs_of(inputs, sig(**inputs))
    for empty in (np.array([], "S"), np.array([], "U"), np.zeros(0, object)):
        assert sig(**{**inputs, "s": empty})["o_s"].shape == (0,)


@pytest.mark.parametrize(
    "shape", [(), (1,), (0,), (2, 3, 4), (1, 2, 1, 2, 1, 2), (2, 0, 3)], ids=str
)
def test_unknown_rank_inputs(loaded: Any, shape: tuple[int, ...]) -> None:
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) * 0.5
    out = loaded("module_with_signature")(x)["output_0"]
    assert out.shape == shape
    np.testing.assert_array_equal(out, x)
    w = loaded("dynamic_shapes")(x=np.ones((1, 2, 3), np.float32), z=x)["w"]
    np.testing.assert_array_equal(w, x * 2)


@pytest.mark.parametrize("shape", [(1, 1), (7, 1), (1, 1000), (33, 65)], ids=str)
def test_dynamic_dims(loaded: Any, shape: tuple[int, int]) -> None:
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    np.testing.assert_array_equal(loaded("add_one")(x)["y"], x + 1)


# --- inputs are never modified -------------------------------------------------------------

PLACEMENTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "aligned": smrt.aligned,
    "unaligned": unaligned,
}


@pytest.mark.parametrize("place", PLACEMENTS.values(), ids=PLACEMENTS.keys())
@pytest.mark.parametrize(
    ("name", "key", "fn"),
    [
        ("add_one", "x", lambda x: x + 1),
        ("tiny_add", "x", lambda x: x + x),
        ("module_with_signature", "x", lambda x: x),
    ],
)
def test_input_array_is_unchanged(
    loaded: Any, place: Callable[[np.ndarray], np.ndarray], name: str, key: str,
    fn: Callable[[np.ndarray], np.ndarray],
) -> None:
    x = place(BASE[:1, :4].copy())
    assert smrt.is_aligned(x) == (place is smrt.aligned)
    before = x.copy()
    out = loaded(name)(**{key: x})
    (y,) = out.values()
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(y, fn(before))
    assert not np.shares_memory(x, y)
    y[...] = 1234  # writing to the output must not reach the input either
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("place", PLACEMENTS.values(), ids=PLACEMENTS.keys())
def test_inputs_of_every_dtype_are_unchanged(
    loaded: Any, place: Callable[[np.ndarray], np.ndarray]
) -> None:
    sig = loaded("all_dtypes").signatures["serving_default"]
    inputs = {k: v if v.dtype == object else place(v) for k, v in dtype_inputs(sig, 17).items()}
    before = {k: v.copy() for k, v in inputs.items()}
    strings = inputs["s"].tolist()
    out = sig(**inputs)
    for key, x in inputs.items():
        if x.dtype != object:
            assert x.tobytes() == before[key].tobytes(), key
        assert not np.shares_memory(x, out[f"o_{key}"]), key
    assert all(a is b for a, b in zip(inputs["s"].tolist(), strings, strict=True))
    assert_outputs_of(before, out)


def test_input_kept_by_a_variable_warns_and_later_inputs_are_copied(zoo: Zoo) -> None:
    with smrt.load(zoo.path("stateful")) as model:
        mutate, read = model.signatures["mutate"], model.signatures["read"]
        first = smrt.aligned(np.array(5.0, np.float32))
        with pytest.warns(RuntimeWarning, match="'mutate' kept a reference"):
            mutate(new_v=first)
        second = smrt.aligned(np.array(6.0, np.float32))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            mutate(new_v=second)  # copied now: no warning
        second[...] = -1.0
        assert read()["v"] == 6.0


def test_an_input_kept_by_a_variable_is_handed_back_while_a_call_holds_the_gil(
        zoo: Zoo, run_python: Any) -> None:
    # The variable keeps the first lent array; the second call replaces it on one of
    # TensorFlow's threads while the calling thread holds the GIL (release_gil=False). That
    # hand-back must not wait for the GIL, or both threads wait forever. In a child process
    # with a watchdog, so a regression fails instead of hanging the test run.
    out = run_python(f"""
import faulthandler, time, warnings, weakref, numpy as np, smrt
faulthandler.dump_traceback_later(60, exit=True)
warnings.simplefilter("ignore", RuntimeWarning)
with smrt.load({zoo.path("stateful")!r}) as model:
    mutate, read = model.signatures["mutate"], model.signatures["read"]
    mutate.release_gil = False
    first = smrt.aligned(np.array(5.0, np.float32))
    kept = weakref.ref(first)
    mutate(new_v=first)
    del first
    for value in range(4):
        mutate(new_v=smrt.aligned(np.array(float(value), np.float32)))
    print(float(read()["v"]))
    deadline = time.monotonic() + 10  # released soon after, by the interpreter: nothing leaks
    while kept() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    print(kept() is None)
""")
    assert out.split() == ["3.0", "True"]


# --- outputs -------------------------------------------------------------------------------


def base_chain_end(array: np.ndarray) -> object:
    obj: object = array
    while isinstance(obj, np.ndarray) and obj.base is not None:
        obj = obj.base
    return obj


def test_outputs_are_writable_views_of_tensorflow_buffers(loaded: Any) -> None:
    sig = loaded("all_dtypes").signatures["serving_default"]
    out = sig(**dtype_inputs(sig, 9))
    for key, y in out.items():
        assert isinstance(y, np.ndarray), key
        assert y.flags.writeable, key
        assert y.flags.c_contiguous, key
        if y.dtype == object:
            continue
        assert not y.flags.owndata, key
        assert type(base_chain_end(y)).__name__ == "PyCapsule", key
        y[...] = y[::-1]  # writable in place


def test_outputs_of_two_calls_do_not_share_memory(loaded: Any) -> None:
    model = loaded("add_one")
    y1, y2 = model(BASE)["y"], model(BASE)["y"]
    assert not np.shares_memory(y1, y2)
    y1[...] = 0
    np.testing.assert_array_equal(y2, BASE + 1)


def test_outputs_survive_the_model_being_closed_and_deleted(zoo: Zoo) -> None:
    model = smrt.load(zoo.path("all_dtypes"))
    sig = model.signatures["serving_default"]
    inputs = dtype_inputs(sig, 1000)
    out = sig(**inputs)
    views = {k: v[1:-1:3] for k, v in out.items()}
    model.close()
    del model, sig, out
    gc.collect()
    for key, x in inputs.items():
        expected = touched(x)[1:-1:3]
        got = views[f"o_{key}"]
        assert got.tolist() == expected.tolist(), key
        got[...] = got[::-1]  # still writable memory
    del views
    gc.collect()


def test_writing_an_output_never_changes_the_model(zoo: Zoo) -> None:
    # Outputs that TensorFlow still holds (a graph constant, a variable) come back as copies.
    with smrt.load(zoo.path("control_flow")) as model:
        first = model(x=np.int32(-1))["y"]
        first[...] = 99
        assert model(x=np.int32(-1))["y"] == -1
    with smrt.load(zoo.path("stateful")) as model:
        model.signatures["read"]()["v"][...] = 1234.0
        assert model.signatures["read"]()["v"] == 1.0


def test_fresh_outputs_are_still_zero_copy_views(zoo: Zoo) -> None:
    with smrt.load(zoo.path("add_one")) as model:
        y = model(smrt.zeros((2, 3), np.float32))["y"]
        assert type(y.base).__name__ == "PyCapsule"
        assert y.flags.writeable


# --- bfloat16 ------------------------------------------------------------------------------


def test_bfloat16_input_and_output(loaded: Any) -> None:
    sig = loaded("all_dtypes").signatures["serving_default"]
    inputs = dtype_inputs(sig, 4)
    inputs["bf16"] = np.array([1.5, -2.0, 0.25, 1e38], ml_dtypes.bfloat16)
    out = sig(**inputs)["o_bf16"]
    assert out.dtype == ml_dtypes.bfloat16
    expected = (inputs["bf16"] + inputs["bf16"]).astype(np.float32)
    np.testing.assert_array_equal(out.astype(np.float32), expected)
    assert sig.inputs["bf16"].numpy_dtype == np.dtype(ml_dtypes.bfloat16)


# --- aligned allocation --------------------------------------------------------------------

SIZES = [0, 1, 2, 3, 7, 15, 16, 17, 63, 64, 65, 1000, 4097, (0, 5), (3, 0), (2, 3, 5)]
DTYPES = [np.uint8, np.float16, np.float32, np.float64, np.complex128, np.bool_, ml_dtypes.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("allocate", [smrt.empty, smrt.zeros], ids=["empty", "zeros"])
def test_empty_and_zeros_are_64_byte_aligned(
    allocate: Callable[..., np.ndarray], dtype: Any
) -> None:
    for size in SIZES:
        a = allocate(size, dtype)
        shape = size if isinstance(size, tuple) else (size,)
        assert (a.shape, a.dtype) == (shape, np.dtype(dtype))
        assert a.ctypes.data % 64 == 0, size
        assert a.flags.c_contiguous
        assert smrt.is_aligned(a)
        if allocate is smrt.zeros:
            assert not a.tobytes().strip(b"\0")
        a[...] = 1  # the memory is usable


@pytest.mark.parametrize(
    "source",
    [
        lambda: unaligned(BASE),
        lambda: BASE.T,
        lambda: BASE[:, ::2],
        lambda: [[1.0, 2.0], [3.0, 4.0]],
        lambda: np.float32(2),
        lambda: np.zeros((0, 3)),
        lambda: unaligned(np.arange(1, dtype=np.int8)),
    ],
    ids=["unaligned", "transposed", "strided", "list", "scalar", "zero-size", "one-int8"],
)
def test_aligned_returns_an_aligned_copy(source: Callable[[], Any]) -> None:
    value = source()
    a = smrt.aligned(value)
    assert a.ctypes.data % 64 == 0
    assert a.flags.c_contiguous
    np.testing.assert_array_equal(a, np.asarray(value))
    assert a.dtype == np.asarray(value).dtype
    if isinstance(value, np.ndarray):
        assert not np.shares_memory(a, value)


def test_aligned_returns_the_same_object_when_already_aligned() -> None:
    for size in SIZES:
        a = smrt.empty(size, np.float32)
        assert smrt.aligned(a) is a
        assert smrt.aligned(a, np.float32) is a
        assert smrt.aligned(a, "float32") is a
    b = smrt.aligned(smrt.zeros(8, np.float32), np.float64)
    assert (b.dtype, b.ctypes.data % 64) == (np.float64, 0)


def test_aligned_allocation_aligns_every_array_made_inside() -> None:
    with smrt.aligned_allocation():
        arrays = [np.empty(n, np.uint8) for n in (0, 1, 3, 17, 100, 5000)]
        arrays += [np.arange(1, 40, dtype=np.float32), np.ones((3, 7)), BASE.copy(), BASE.T.copy()]
        arrays += [np.array([1, 2, 3], np.int16), np.concatenate([BASE, BASE])]
    for a in arrays:
        assert a.ctypes.data % 64 == 0, a.shape
    grown = np.arange(10, dtype=np.float32)
    with smrt.aligned_allocation():
        grown = np.arange(10, dtype=np.float32)
    grown.resize(100_000, refcheck=False)  # realloc keeps the allocator, and the contents
    assert grown.ctypes.data % 64 == 0
    np.testing.assert_array_equal(grown[:10], np.arange(10))
    del arrays, grown
    gc.collect()


def test_aligned_allocation_ends_with_the_block() -> None:
    with smrt.aligned_allocation():
        pass
    addresses = [np.empty(n, np.uint8).ctypes.data % 64 for n in range(1, 200)]
    assert any(addresses), "NumPy's own allocator should give some unaligned arrays"


# --- check_shapes=False: sizes left to TensorFlow, as TF Serving does ----------------------------


def test_shapes_are_checked_by_default_and_can_be_left_to_tensorflow(zoo: Zoo) -> None:
    x = np.ones((2, 4), np.float32)  # tiny_add declares (1, 4); TensorFlow adds any size
    with smrt.load(zoo.path("tiny_add")) as model:
        with pytest.raises(smrt.errors.InvalidInputError, match=r"expects shape \(1, 4\)"):
            model(x)
        np.testing.assert_array_equal(model.signatures["serving_default"].run(
            {"x": x}, check_shapes=False)["y"], x + x)  # per call
    with smrt.load(zoo.path("tiny_add"), check_shapes=False) as model:
        np.testing.assert_array_equal(model(x)["y"], x + x)  # per load
        with pytest.raises(smrt.errors.InvalidInputError, match=r"expects shape \(1, 4\)"):
            model.signatures["serving_default"].run({"x": x}, check_shapes=True)


def test_ranks_may_differ_only_by_size_one_dimensions_of_small_inputs(zoo: Zoo) -> None:
    # TF Serving's half_plus_two declares x (-1, 1); its clients send [2.0, 3.0, 4.0].
    with smrt.load(zoo.path("tf_serving_half_plus_two"), check_shapes=False) as model:
        y = model(np.array([2.0, 3.0, 4.0], np.float32))["y"]
        np.testing.assert_array_equal(y, np.array([3.0, 3.5, 4.0], np.float32))
        with pytest.raises(smrt.errors.InvalidInputError, match="another rank is refused"):
            model(np.ones((1, 1, 3), np.float32))


def test_a_rank_tensorflow_would_abort_on_is_refused(zoo: Zoo, run_python) -> None:
    # A rank-3 image fed to MobileNet aborts the process in TensorFlow's conv kernel (a CHECK,
    # TF 2.21); smrt refuses it first. In a child process, so a regression cannot take the
    # test run down with it.
    out = run_python(f"""
import numpy as np, smrt
model = smrt.load({zoo.path("keras_mobilenet")!r}, check_shapes=False)
try:
    model(np.ones((224, 224, 3), np.float32))
except smrt.errors.InvalidInputError as e:
    print("refused:", "another rank" in str(e))
""")
    assert out.strip() == "refused: True"
