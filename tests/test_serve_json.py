"""smrt serve's JSON <-> tensors: parsing request bodies, predict inputs (row and columnar),
and writing predict replies."""

from __future__ import annotations

import json
import math
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from smrt.saved_model import TensorSpec
from smrt.serving.core.errors import BadRequestError
from smrt.serving.rest.tensor_json import loads, predict_body, predict_inputs, to_array

# --- JSON -> tensors -----------------------------------------------------------------------------


def _spec(dtype: str, shape: tuple[int | None, ...] | None = (None,),
          name: str = "x") -> TensorSpec:
    return TensorSpec(name, dtype, shape, f"{name}:0")


def test_loads_accepts_nan_and_infinity_and_rejects_non_objects() -> None:
    request = loads(b'{"instances": [NaN, Infinity, -Infinity, 1e400]}')
    values = request["instances"]
    assert math.isnan(values[0])
    assert values[1:3] == [math.inf, -math.inf]
    with pytest.raises(BadRequestError, match="not valid JSON"):
        loads(b'{"instances": [1,')
    with pytest.raises(BadRequestError, match="not valid JSON"):
        loads(b"\xff\xfe")
    with pytest.raises(BadRequestError, match="must be a JSON object"):
        loads(b"[1, 2]")
    with pytest.raises(BadRequestError):
        loads(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize(("dtype", "value", "expected"), [
    ("float32", [1, 2.5, -3], np.array([1, 2.5, -3], np.float32)),
    ("float64", [[1e300], [-0.0]], np.array([[1e300], [-0.0]])),
    ("int8", [-128, 127], np.array([-128, 127], np.int8)),
    ("uint64", [2**64 - 1], np.array([2**64 - 1], np.uint64)),
    ("int64", 7, np.array(7, np.int64)),
    ("bool", [True, False], np.array([True, False])),
    ("float16", [0.5], np.array([0.5], np.float16)),
    ("bfloat16", [1.5], np.array([1.5], ml_dtypes.bfloat16)),
    ("float32", [], np.zeros(0, np.float32)),
])
def test_to_array(dtype: str, value: Any, expected: np.ndarray) -> None:
    array = to_array(value, _spec(dtype), "input 'x'")
    assert array.dtype == expected.dtype
    np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize(("dtype", "value", "message"), [
    ("int32", [1.5], "fraction or exponent for a int32 tensor"),
    ("int32", [1.0], "fraction or exponent"),
    ("int8", [128], r"out of range for int8 \[-128, 127\]"),
    ("uint8", [-1], "out of range for uint8"),
    ("int64", [2**70], "too large|out of range|mix of types"),
    ("bool", [1, 0], "numbers for a bool tensor"),
    ("float32", [True], "true/false for a float32 tensor"),
    ("float32", ["1.0"], "strings for a float32 tensor"),
    ("float32", [1, None], "mix of types, null or objects"),
    ("float32", [[1, 2], [3]], "different lengths"),
    ("float32", [{"b64": "AA=="}], "mix of types, null or objects"),
    ("complex64", [1], "complex64 tensors cannot be sent as JSON"),
    ("int32", ["a"], "strings for a int32 tensor"),
    ("float32", [1e39], "out of range for float32"),
    ("float16", [[70000]], "out of range for float16"),
])
def test_to_array_errors_name_the_input(dtype: str, value: Any, message: str) -> None:
    with pytest.raises(BadRequestError, match=f"^input 'x': .*({message})"):
        to_array(value, _spec(dtype), "input 'x'")


def test_string_tensors_take_text_and_b64() -> None:
    array = to_array([["héllo", {"b64": "/wA="}], ["", {"b64": "-_8="}]], _spec("string"), "x")
    assert array.dtype == object
    assert array.shape == (2, 2)
    assert array.tolist() == [[b"h\xc3\xa9llo", b"\xff\x00"], [b"", b"\xfb\xff"]]
    assert to_array("one", _spec("string"), "x").shape == ()
    assert to_array([], _spec("string"), "x").shape == (0,)
    for bad, message in [([["a"], "b"], "different lengths"), (["a", ["b"]], "different lengths"),
                         ([["a", "b"], ["c"]], "different lengths"), ([1], "got int"),
                         ([None], "got null"), ([{"b64": "%%%"}], "invalid base64"),
                         ([{"b64": 1}], "must be a base64 string")]:
        with pytest.raises(BadRequestError, match=message):
            to_array(bad, _spec("string"), "x")


def test_predict_inputs_formats() -> None:
    one = {"x": _spec("float32")}
    two = {"a": _spec("float32", name="a"), "b": _spec("string", name="b")}
    inputs, rows = predict_inputs({"instances": [1, 2]}, one)
    assert rows
    assert inputs["x"].tolist() == [1.0, 2.0]
    inputs, rows = predict_inputs({"instances": [{"x": 1}], "signature_name": "s"}, one)
    assert rows
    assert inputs["x"].tolist() == [1.0]
    inputs, rows = predict_inputs({"inputs": [3]}, one)
    assert not rows
    assert inputs["x"].tolist() == [3.0]
    inputs, rows = predict_inputs(
        {"instances": [{"a": 1, "b": "p"}, {"a": 2, "b": {"b64": "cQ=="}}]}, two)
    assert inputs["a"].tolist() == [1.0, 2.0]
    assert inputs["b"].tolist() == [b"p", b"q"]
    inputs, rows = predict_inputs({"inputs": {"a": [[1, 2]], "b": "s"}}, two)
    assert inputs["a"].shape == (1, 2)
    assert inputs["b"].shape == ()
    # A single string input can be one b64 object, not to be taken for a map of inputs.
    inputs, _ = predict_inputs({"inputs": {"b64": "cQ=="}}, {"s": _spec("string", (), "s")})
    assert inputs["s"].item() == b"q"


@pytest.mark.parametrize(("request_", "message"), [
    ({}, "either 'instances'.*or 'inputs'"),
    ({"instances": [1], "inputs": [1]}, "and not both"),
    ({"instances": [1], "extra": 1}, "unknown field.*extra"),
    ({"instances": 1}, "'instances' must be a list"),
    ({"instances": []}, "'instances' is empty"),
    ({"instances": [1, 2]}, "has 2 inputs .*a, b.*a list of objects"),
    ({"inputs": [1, 2]}, "has 2 inputs .*an object"),
    ({"instances": [{"a": 1, "b": "x"}, 2]}, "mixes objects"),
    ({"instances": [{"a": 1}]}, r"instances\[0\]: missing input\(s\) b"),
    ({"instances": [{"a": 1, "b": "x", "c": 2}]}, r"unknown input\(s\) c"),
    ({"inputs": {"a": 1}}, r"'inputs': missing input\(s\) b"),
    ({"inputs": {"a": 1, "b": 2}}, "input 'b': expected strings"),
])
def test_predict_inputs_errors(request_: dict[str, Any], message: str) -> None:
    two = {"a": _spec("float32", name="a"), "b": _spec("string", name="b")}
    with pytest.raises(BadRequestError, match=message):
        predict_inputs(request_, two)


# --- tensors -> JSON -----------------------------------------------------------------------------


def test_predict_body_row_and_columnar() -> None:
    outputs = {"y": np.array([[0.1, 2.0]], np.float32), "label": np.array([b"cat"], object)}
    assert json.loads(predict_body(outputs, rows=True)) == {
        "predictions": [{"label": "cat", "y": [0.1, 2.0]}]}
    assert json.loads(predict_body(outputs, rows=False)) == {
        "outputs": {"label": ["cat"], "y": [[0.1, 2.0]]}}
    assert json.loads(predict_body({"y": np.float32(0.5) * np.ones(())}, rows=True)) == {
        "predictions": 0.5}
    assert predict_body({"y": np.array([0.1], np.float32)}, rows=True) == b'{"predictions":[0.1]}'


def test_predict_body_writes_special_floats_as_tf_serving_does() -> None:
    outputs = {"y": np.array([np.nan, np.inf, -np.inf, 0.1], np.float32)}
    body = predict_body(outputs, rows=True)
    assert body == b'{"predictions":[NaN,Infinity,-Infinity,0.1]}'


def test_predict_body_dtypes() -> None:
    outputs = {
        "b": np.array([True]), "u64": np.array([2**64 - 1], np.uint64),
        "h": np.array([0.5], np.float16), "bf": np.array([1.5], ml_dtypes.bfloat16),
        "text": np.array([b"\xc3\xa9", b"\xff"], object),
        "raw_bytes": np.array([b"\xff\x00", b"ok"], object),
        "strided": np.arange(4, dtype=np.int32)[::2],
    }
    reply = json.loads(predict_body(outputs, rows=False))["outputs"]
    assert reply == {
        "b": [True], "u64": [2**64 - 1], "h": [0.5], "bf": [1.5],
        "text": ["é", {"b64": "/w=="}],  # not UTF-8: sent as b64 rather than broken JSON
        "raw_bytes": [{"b64": "/wA="}, {"b64": "b2s="}],
        "strided": [0, 2],
    }
    with pytest.raises(BadRequestError, match="complex64 tensors cannot be written"):
        predict_body({"c": np.array([1j], np.complex64)}, rows=False)


def test_predict_body_rows_need_a_shared_batch_dimension() -> None:
    with pytest.raises(BadRequestError, match=r"first \(batch\) dimension.*a: \[2\], b: \[3\]"):
        predict_body({"a": np.zeros(2), "b": np.zeros(3)}, rows=True)
    with pytest.raises(BadRequestError, match="columnar"):
        predict_body({"a": np.zeros(()), "b": np.zeros(())}, rows=True)
