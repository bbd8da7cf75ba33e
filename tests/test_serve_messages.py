"""smrt's own decoding of TF Serving's request messages (smrt._core.decode_*), checked
against what TensorFlow and tensorflow-serving-api make and read (tests/tf_serving_protos.py):
every dtype in tensor_content and in the typed *_val fields, TensorFlow's fill rules,
protobuf's merge rules, and clear errors for messages TensorFlow would refuse."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import smrt
import smrt.errors
import smrt.memory
from smrt import _core

from .conftest import assert_same
from .protowire import field, varint

LIMIT = 64 << 20


@pytest.fixture(scope="module")
def messages(tf_protos: Path) -> dict[str, tuple[str, bytes, Any]]:
    with open(tf_protos / "messages.pkl", "rb") as f:
        return pickle.load(f)  # type: ignore[no-any-return]


def _predict_names(kind: str) -> list[str]:
    # Names are fixed by tests/tf_serving_protos.py; listed here so each is its own test.
    dtypes = ["float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "int64",
              "uint32", "uint64", "bool", "float16", "bfloat16", "complex64", "complex128",
              "string", "scalar"]
    if kind == "good":
        return ([f"made_{d}" for d in dtypes] + [f"typed_{d}" for d in dtypes]
                + ["fill_broadcast", "fill_too_few", "fill_none", "fill_too_many",
                   "fill_strings", "two_inputs", "versioned", "merged"])
    return ["bad_content_size", "bad_dtype", "bad_negative_dim", "bad_truncated"]


@pytest.mark.parametrize("name", _predict_names("good"))
def test_predict_request_decodes_as_tensorflow_reads_it(
        messages: dict[str, tuple[str, bytes, Any]], name: str) -> None:
    _, data, expected = messages[name]
    _spec, inputs, _filter = _core.decode_predict_request(data, LIMIT)
    assert sorted(inputs) == sorted(expected)
    for key, want in expected.items():
        got = inputs[key]
        assert_same(got, np.asarray(want), f"{name}: {key}")
        if got.dtype != object:
            assert smrt.memory.is_aligned(got), "numeric inputs go to TensorFlow without a copy"


def test_model_spec_and_output_filter(messages: dict[str, tuple[str, bytes, Any]]) -> None:
    spec, _, output_filter = _core.decode_predict_request(messages["two_inputs"][1], LIMIT)
    assert spec == ("m", None, "stable", "sig")
    assert output_filter == ["y", "z"]
    spec, _, _ = _core.decode_predict_request(messages["versioned"][1], LIMIT)
    assert spec == ("m", 12, "", "")
    spec, _, _ = _core.decode_predict_request(messages["merged"][1], LIMIT)
    assert spec[0] == "second"  # the last scalar wins


@pytest.mark.parametrize(("name", "match"), [
    ("bad_content_size", "input 'x': tensor_content holds 8 bytes"),
    ("bad_dtype", "input 'x': dtype DT_RESOURCE"),
    ("bad_negative_dim", "input 'x': dimension -1"),
    ("bad_truncated", "could not be parsed"),
])
def test_bad_tensors_are_invalid_argument(messages: dict[str, tuple[str, bytes, Any]],
                                          name: str, match: str) -> None:
    with pytest.raises(smrt.InvalidArgumentError, match=match):
        _core.decode_predict_request(messages[name][1], LIMIT)


@pytest.mark.parametrize("name", ["bad_huge", "bad_huge_strings"])
def test_what_a_message_may_allocate_is_bounded(messages: dict[str, tuple[str, bytes, Any]],
                                                name: str) -> None:
    # A few bytes declaring 2**40 elements filled from one value: refused before allocating.
    with pytest.raises(smrt.errors.ResourceExhaustedError, match="input 'x' would take more than"):
        _core.decode_predict_request(messages[name][1], LIMIT)


@pytest.mark.parametrize("name", ["classify", "regress_context", "multi_inference"])
def test_examples_requests(messages: dict[str, tuple[str, bytes, Any]], name: str) -> None:
    kind, data, expected = messages[name]
    tasks, examples = _core.decode_examples_request(data, kind == "multi_inference", LIMIT)
    assert examples.tolist() == expected
    if kind == "multi_inference":
        assert tasks == [(("m", None, "", "classify_x_to_y"), "tensorflow/serving/classify"),
                         (("m", None, "", ""), "tensorflow/serving/regress")]
    else:
        assert tasks == [(("m", None, "", "classify_x_to_y"), "")]


def test_empty_input_is_refused(messages: dict[str, tuple[str, bytes, Any]]) -> None:
    with pytest.raises(smrt.InvalidArgumentError, match=r"^Input is empty\.$"):
        _core.decode_examples_request(messages["empty_input"][1], False, LIMIT)


def _predict(tensor: bytes, spec: bytes = field(1, b"m")) -> bytes:
    """PredictRequest{model_spec = 1, inputs = 2 {key = 1: "x", value = 2: tensor}}."""
    return field(1, spec) + field(2, field(1, b"x") + field(2, tensor))


def _tensor(dtype: int, size: int, values: bytes = b"") -> bytes:
    """TensorProto{dtype = 1, tensor_shape = 2 {dim = 2 {size = 1}}} + raw value fields."""
    shape = field(2, field(2, varint(1 << 3) + varint(size)))
    return varint(1 << 3) + varint(dtype) + shape + values


def test_sizes_that_wrap_are_refused_not_crashed() -> None:
    # DT_FLOAT x 2**62 is 2**64 bytes: wrapped to 0 it passed the budget, then NumPy failed.
    with pytest.raises(smrt.InvalidArgumentError,
                       match="input 'x': the shape has 4611686018427387904 elements"):
        _core.decode_predict_request(_predict(_tensor(1, 2**62)), LIMIT)
    # DT_STRING x (2**61 - 1) with one string_val: 8 bytes a pointer plus the string wrapped.
    with pytest.raises(smrt.errors.ResourceExhaustedError, match="input 'x' would take more than"):
        _core.decode_predict_request(_predict(_tensor(7, 2**61 - 1, field(8, b"s"))), LIMIT)


def test_over_long_packed_varint_is_invalid_argument() -> None:
    # int_val (7) packed: one 11-byte varint, which a count of end bytes took for one value.
    tensor = _tensor(3, 1, field(7, b"\x80" * 10 + b"\x01"))
    with pytest.raises(smrt.InvalidArgumentError, match="input 'x': bad packed varints"):
        _core.decode_predict_request(_predict(tensor), LIMIT)


def test_version_and_label_are_one_oneof() -> None:
    # ModelSpec{name = 1, version = 2 {value = 1}, signature_name = 3, version_label = 4}.
    version = field(2, varint(1 << 3) + varint(7))
    label = field(4, b"stable")
    name = field(1, b"m")
    spec, _, _ = _core.decode_predict_request(
        _predict(_tensor(1, 1), name + version + label), LIMIT)
    assert spec == ("m", None, "stable", "")
    spec, _, _ = _core.decode_predict_request(
        _predict(_tensor(1, 1), name + label + version), LIMIT)
    assert spec == ("m", 7, "", "")


def test_zero_examples_are_refused() -> None:
    # ClassificationRequest{model_spec = 1, input = 2 {example_list = 1 {}}}: util.cc's words.
    data = field(1, field(1, b"m")) + field(2, field(1, b""))
    with pytest.raises(smrt.InvalidArgumentError, match=r"^Input is empty\.$"):
        _core.decode_examples_request(data, False, LIMIT)


def test_masked_crc32c() -> None:
    # TFRecord's masking of CRC-32C("123456789") = 0xE3069283 (the standard check value).
    crc = 0xE3069283
    assert _core.masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


def _arrays() -> dict[str, np.ndarray]:
    import ml_dtypes

    return {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 3, "f64": np.array([1e300, -2.5]),
        "i8": np.array([-128, 127], np.int8), "u8": np.array([0, 255], np.uint8),
        "i16": np.array([-300, 300], np.int16), "u16": np.array([65535], np.uint16),
        "i32": np.array([-(2**31), 5], np.int32), "i64": np.array([-(2**63), 2**63 - 1]),
        "u32": np.array([2**32 - 1], np.uint32), "u64": np.array([2**64 - 1], np.uint64),
        "b": np.array([True, False]), "f16": np.array([1.5, -65504], np.float16),
        "bf16": np.array([1.5, -3.0], ml_dtypes.bfloat16),
        "c64": np.array([1 + 2j], np.complex64), "c128": np.array([[1 - 1j]], np.complex128),
        "s": np.array([b"a", b"\xff\x00", b""], object), "scalar": np.array(2.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
    }


@pytest.mark.parametrize("tensor_content", [False, True])
def test_predict_response_reads_back_in_tensorflow(tmp_path: Path, run_python: Any,
                                                   tensor_content: bool) -> None:
    arrays = _arrays()
    data = _core.encode_predict_response(arrays, "m", 7, "serving_default", tensor_content)
    (tmp_path / "response.pb").write_bytes(data)
    out = run_python(f"""
import pickle, numpy as np, tensorflow as tf
from tensorflow_serving.apis import predict_pb2
r = predict_pb2.PredictResponse.FromString(open({str(tmp_path / 'response.pb')!r}, 'rb').read())
typed = [k for k, v in r.outputs.items() if v.tensor_content]
arrays = {{k: tf.make_ndarray(v) for k, v in r.outputs.items()}}
spec = (r.model_spec.name, r.model_spec.version.value, r.model_spec.signature_name)
pickle.dump((arrays, spec, typed), open({str(tmp_path / 'out.pkl')!r}, 'wb'))
""", env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out == ""
    with open(tmp_path / "out.pkl", "rb") as f:
        decoded, spec, with_content = pickle.load(f)
    assert spec == ("m", 7, "serving_default")
    for key, want in arrays.items():
        assert_same(np.asarray(decoded[key]), want, key)
    # Typed fields by default (as TF Serving writes replies); tensor_content when asked,
    # but for strings (string_val always) and empty tensors.
    assert sorted(with_content) == (sorted(k for k in arrays if k not in ("s", "empty"))
                                    if tensor_content else [])


@pytest.mark.parametrize(("classes", "scores", "message"), [
    (np.full((2, 3), b"a", object), np.zeros((2, 2), np.float32),
     r"Tensors class and score should match in dim_size\(1\)\. Got 3 vs\. 2"),
    (np.zeros((2, 2), np.int64), None, "Expected classes Tensor of DT_STRING. Got: DT_INT64"),
    (None, np.zeros((2, 2), np.float64), "Expected scores Tensor of DT_FLOAT. Got: DT_DOUBLE"),
    (None, np.zeros((3, 2), np.float32), "Expected scores output batch size of 2. Got: 3"),
    (np.full((2,), b"a", object), None, r"Expected Tensor shape: \[batch_size num_classes\]"),
])
def test_classify_outputs_are_checked_alike_by_both_front_ends(
        classes: np.ndarray | None, scores: np.ndarray | None, message: str) -> None:
    # A model's bad classify outputs were IndexError/AttributeError (UNKNOWN) over gRPC.
    from smrt.serving.core.errors import BadRequestError, status_code
    from smrt.serving.grpc.messages import classification_result
    from smrt.serving.rest.replies import _classification_body

    outputs = {k: v for k, v in (("classes", classes), ("scores", scores)) if v is not None}
    for encode in (classification_result, _classification_body):
        with pytest.raises(BadRequestError, match=message) as error:
            encode(outputs, 2)
        assert status_code(error.value) == 3  # INVALID_ARGUMENT


def _tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def test_known_fields_with_another_wire_type_are_skipped() -> None:
    # Protobuf parses a known field that comes with another wire type than its declared type's
    # as an unknown field: skipped, not refused. A map entry's key as a varint, a model_spec
    # name as fixed32, a dtype as fixed64, output_filter as a varint, and a group (wire type
    # 3) where a message is declared, each before the real value.
    group = _tag(5, 3) + _tag(1, 0) + varint(1) + _tag(5, 4)
    entry = (_tag(1, 0) + varint(5) + field(1, b"x") + _tag(2, 0) + varint(1)
             + field(2, _tag(1, 1) + b"\0" * 8 + _tensor(1, 1, _tag(5, 5) + b"\0\0\x80\x3f")))
    spec = _tag(1, 5) + b"abcd" + field(1, b"m") + _tag(3, 0) + varint(9)
    data = (_tag(1, 3) + _tag(1, 4) + field(1, spec) + _tag(2, 1) + b"\0" * 8 + field(2, entry)
            + _tag(3, 0) + varint(1) + field(3, b"y") + group)
    spec_tuple, inputs, output_filter = _core.decode_predict_request(data, LIMIT)
    assert spec_tuple == ("m", None, "", "")
    assert inputs["x"].tolist() == [1.0]
    assert output_filter == ["y"]


@pytest.mark.parametrize("data", [
    field(1, field(1, b"m")) + _tag(7, 6),  # wire types 6 and 7 do not exist
    field(1, field(1, b"m")) + _tag(7, 7) + b"\0",
    field(1, field(1, b"m")) + _tag(3, 4),  # the end of a group never started
    field(1, field(1, b"m")) + _tag(3, 3) + _tag(1, 0) + varint(1),  # a group never ended
    field(1, field(1, b"m")) + field(2, _tag(1, 2) + varint(9) + b"x"),  # a key cut short
    field(1, field(1, b"m")) + _tag(4, 1) + b"\0" * 7,  # a fixed64 cut short
], ids=["wire-type-6", "wire-type-7", "stray-end-group", "open-group", "short-key",
        "short-fixed64"])
def test_malformed_messages_are_still_refused(data: bytes) -> None:
    with pytest.raises(smrt.InvalidArgumentError, match="the PredictRequest could not be parsed"):
        _core.decode_predict_request(data, LIMIT)
