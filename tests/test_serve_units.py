"""smrt.serving's parts without a server: config files, JSON <-> tensors, batching, metrics,
URL routing. The REST tests against a real server are in test_serve_api.py and
test_serve_lifecycle.py."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from smrt.errors import NotFoundError
from smrt.saved_model import TensorSpec
from smrt.serving import textproto
from smrt.serving.batching import Batcher
from smrt.serving.config import (
    BatchingOptions,
    ConfigError,
    VersionPolicy,
    read_batching_parameters_file,
    read_model_config_file,
)
from smrt.serving.errors import BadRequestError, MethodNotAllowedError
from smrt.serving.metrics import Metrics
from smrt.serving.server import Route, parse_route
from smrt.serving.tensor_json import loads, predict_body, predict_inputs, to_array

# --- text protos and config files -----------------------------------------------------------------


def test_textproto_parses_tf_serving_config_syntax() -> None:
    text = """
    # a comment
    model_config_list {
      config {
        name: 'a' "b"   # adjacent strings concatenate
        base_path: "/m/\\x41\\n"
        model_version_policy: { specific { versions: [1, 0x2, 3] } }
        version_labels < key: "stable" value: -1 >;
        ratio: 1.5e3 flag: true enum_value: LATEST
      }
      config { name: "c" }
    }
    """
    root = textproto.parse(text)
    (config_list,) = root["model_config_list"]
    first, second = config_list["config"]
    assert first["name"] == ["ab"]
    assert first["base_path"] == ["/m/A\n"]
    assert first["model_version_policy"] == [{"specific": [{"versions": [1, 2, 3]}]}]
    assert first["version_labels"] == [{"key": ["stable"], "value": [-1]}]
    assert first["ratio"] == [1500.0]
    assert first["flag"] == [True]
    assert first["enum_value"] == ["LATEST"]
    assert second == {"name": ["c"]}


@pytest.mark.parametrize(("text", "message"), [
    ("config {", r"missing '\}'"),
    ("name \"x\"", "expected ':'"),
    ("name: }", "expected a value"),
    ("name: @", r"cfg: unexpected character '@' \(line 1\)"),
    ("a: 1\n\nb: ?", r"unexpected character '\?' \(line 3\)"),
    ("{ }", "expected a field name"),
])
def test_textproto_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(textproto.TextProtoError, match=message):
        textproto.parse(text, "cfg")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.config"
    path.write_text(text)
    return path


def test_model_config_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    path = _write(tmp_path, f"""
    model_config_list {{
      config {{ name: "a" base_path: "{tmp_path / 'a'}" model_platform: "tensorflow" }}
      config {{
        name: "b" base_path: "{tmp_path / 'b'}"
        model_version_policy {{ latest {{ num_versions: 2 }} }}
        version_labels {{ key: "stable" value: 4 }}
        version_labels {{ key: "canary" value: 5 }}
      }}
    }}""")
    a, b = read_model_config_file(path, ("serve", "gpu"))
    assert (a.name, a.base_path, a.policy, a.tags) == (
        "a", str(tmp_path / "a"), VersionPolicy(), ("serve", "gpu"))
    assert b.policy == VersionPolicy("latest", num_versions=2)
    assert b.labels == {"stable": 4, "canary": 5}


@pytest.mark.parametrize(("body", "message"), [
    ("", "no models"),
    ("model_config_list { }", "no models"),
    ("model_config_list { config { base_path: 'BASE' } }", "missing name"),
    ("model_config_list { config { name: 'a' } }", "missing base_path"),
    ("model_config_list { config { name: 'a' base_path: 'BASE/nope' } }", "is not a directory"),
    ("model_config_list { config { name: 'a/b' base_path: 'BASE' } }", "not a model name"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' model_platform: 'pytorch' } }",
     "model_platform 'pytorch' is not served"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' colour: 1 } }",
     "unknown field.*colour"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' } config { name: 'a' "
     "base_path: 'BASE' } }", "configured twice: a"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' "
     "model_version_policy { latest { num_versions: 0 } } } }", "positive integer"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' "
     "model_version_policy { specific { } } } }", "one or more versions"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' "
     "model_version_policy { all { } latest { } } } }", "one of latest, all, specific"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' "
     "version_labels { key: 'x' } } }", "version_labels needs"),
    ("model_config_list { config { name: 1 base_path: 'BASE' } }", "name must be a string"),
    ("custom_model_config { }", "unknown field.*custom_model_config"),
])
def test_model_config_file_errors(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body.replace("BASE", str(tmp_path)))
    with pytest.raises(ConfigError, match=message):
        read_model_config_file(path)


def test_model_config_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_model_config_file(tmp_path / "nope.config")


def test_version_policies() -> None:
    found = [3, 1, 10, 2]
    assert VersionPolicy().select(found) == [10]
    assert VersionPolicy("latest", num_versions=2).select(found) == [3, 10]
    assert VersionPolicy("all").select(found) == [1, 2, 3, 10]
    assert VersionPolicy("specific", versions=(2, 7)).select(found) == [2]
    assert VersionPolicy().select([]) == []


def test_batching_parameters_file(tmp_path: Path) -> None:
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 128 }\nbatch_timeout_micros { value: 0 }\n"
                    "num_batch_threads { value: 4 }\npad_variable_length_inputs: true\n")
    assert read_batching_parameters_file(path) == BatchingOptions(
        max_batch_size=128, batch_timeout_micros=0, num_batch_threads=4)
    path.write_text("max_batch_size { value: 0 }")
    with pytest.raises(ConfigError, match="max_batch_size must be at least 1"):
        read_batching_parameters_file(path)
    path.write_text("max_batch_size { value: 'big' }")
    with pytest.raises(ConfigError, match="must be an integer"):
        read_batching_parameters_file(path)
    path.write_text("max_batch_sizes { value: 1 }")
    with pytest.raises(ConfigError, match="unknown field"):
        read_batching_parameters_file(path)


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


# --- batching -------------------------------------------------------------------------------------


class FakeSignature:
    """Stands in for smrt.Signature: y = 2 * x, counting calls."""

    def __init__(self, batch_outputs: bool = True) -> None:
        self.inputs = {"x": _spec("float32", (None, 2))}
        self.outputs = {"y": _spec("float32", (None, 2), "y")}
        self.calls: list[int] = []
        self.timeouts: list[float | None] = []
        self.batch_outputs = batch_outputs
        self.key = "serving_default"

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        x = inputs["x"]
        if np.any(x < 0):
            raise BadRequestError("negative")
        self.calls.append(len(x))
        if not self.batch_outputs:
            return {"y": x.sum().reshape(1)}  # one value whatever the batch
        return {"y": 2 * x}

    def run(self, inputs: dict[str, np.ndarray],
            timeout: float | None = None) -> dict[str, np.ndarray]:
        self.timeouts.append(timeout)
        return self(**inputs)


def _submit_together(batcher: Batcher, arrays: list[np.ndarray]) -> list[Future[Any]]:
    return [batcher.submit({"x": a}) for a in arrays]


def test_batcher_merges_and_splits() -> None:
    signature = FakeSignature()
    batcher = Batcher(signature, BatchingOptions(max_batch_size=8, batch_timeout_micros=200_000),
                      "m")  # type: ignore[arg-type]
    try:
        arrays = [np.full((n, 2), n, np.float32) for n in (1, 2, 3)]
        futures = _submit_together(batcher, arrays)
        for array, future in zip(arrays, futures, strict=True):
            np.testing.assert_array_equal(future.result(5)["y"], 2 * array)
        assert signature.calls == [6]
        assert (batcher.batches, batcher.batched_requests) == (1, 3)
    finally:
        batcher.stop()


def test_batcher_respects_max_batch_size_and_shapes() -> None:
    signature = FakeSignature()
    batcher = Batcher(signature, BatchingOptions(max_batch_size=4, batch_timeout_micros=100_000),
                      "m")  # type: ignore[arg-type]
    try:
        futures = _submit_together(batcher, [np.ones((3, 2), np.float32)] * 3)
        odd = batcher.submit({"x": np.ones((1, 3), np.float32)})  # other shape: not merged
        big = batcher.submit({"x": np.ones((9, 2), np.float32)})  # over the max: runs alone
        for future in [*futures, odd, big]:
            future.result(5)
        assert sorted(signature.calls) == [1, 3, 3, 3, 9]
    finally:
        batcher.stop()


def test_batcher_errors_reach_every_request_of_the_batch() -> None:
    batcher = Batcher(FakeSignature(), BatchingOptions(batch_timeout_micros=100_000),
                      "m")  # type: ignore[arg-type]
    try:
        good, bad = _submit_together(batcher, [np.ones((1, 2)), -np.ones((1, 2))])
        for future in (good, bad):
            with pytest.raises(BadRequestError, match="negative"):
                future.result(5)
    finally:
        batcher.stop()


def test_batcher_switches_off_when_outputs_do_not_follow_the_batch() -> None:
    signature = FakeSignature(batch_outputs=False)
    batcher = Batcher(signature, BatchingOptions(batch_timeout_micros=100_000),
                      "m")  # type: ignore[arg-type]
    try:
        a, b = _submit_together(batcher, [np.ones((1, 2)), np.ones((2, 2))])
        assert a.result(5)["y"].tolist() == [2.0]
        assert b.result(5)["y"].tolist() == [4.0]
        assert not batcher.enabled
        assert batcher.submit({"x": np.ones((1, 2))}).result(5)["y"].tolist() == [2.0]
    finally:
        batcher.stop()


def test_batcher_queue_limit_and_stop() -> None:
    release = threading.Event()

    class Slow(FakeSignature):
        def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
            release.wait(5)
            return super().__call__(**inputs)

    options = BatchingOptions(max_batch_size=1, max_enqueued_batches=2, batch_timeout_micros=0)
    batcher = Batcher(Slow(), options, "m")  # type: ignore[arg-type]
    first = batcher.submit({"x": np.ones((1, 2))})
    time.sleep(0.2)  # the batch thread is now inside the slow call
    queued = [batcher.submit({"x": np.ones((1, 2))}) for _ in range(2)]
    from smrt.errors import UnavailableError

    with pytest.raises(UnavailableError, match=r"queue .* is full"):
        batcher.submit({"x": np.ones((1, 2))})
    batcher.stop()
    with pytest.raises(UnavailableError, match="being unloaded"):
        batcher.submit({"x": np.ones((1, 2))})
    release.set()
    for future in (first, *queued):  # stopping runs what was queued
        assert future.result(5)["y"].tolist() == [[2.0, 2.0]]


# --- metrics and routes ---------------------------------------------------------------------------

_SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="(?:[^"\\]|\\.)*",?)*\})? [0-9.e+-]+$')


def test_metrics_render_prometheus_text() -> None:
    metrics = Metrics()
    metrics.observe("m", "predict", 200, 0.003)
    metrics.observe("m", "predict", 400, 0.0001)
    metrics.observe('we"ird', "status", 404, 100.0)
    text = metrics.render({"m": [1, 2]}, {("m", 2, "serving_default"): (3, 7)})
    for line in text.splitlines():
        assert line.startswith("# ") or _SAMPLE.match(line), line
    assert 'smrt_requests_total{model="m",api="predict",status="200"} 1' in text
    assert 'smrt_request_errors_total{model="m",api="predict"} 1' in text
    assert 'smrt_request_latency_seconds_bucket{model="m",api="predict",le="0.0025"} 1' in text
    assert 'smrt_request_latency_seconds_bucket{model="m",api="predict",le="0.005"} 2' in text
    assert 'smrt_request_latency_seconds_count{model="m",api="predict"} 2' in text
    assert 'le="+Inf"} 1' in text
    assert 'model="we\\"ird"' in text
    assert 'smrt_model_versions_serving{model="m"} 2' in text
    assert 'smrt_batched_requests_total{model="m",version="2",signature="serving_default"} 7' \
        in text


def test_routes() -> None:
    assert parse_route("POST", "/v1/models/m:predict") == Route("m", None, None, "predict")
    assert parse_route("POST", "/v1/models/m/versions/7:classify") == Route(
        "m", 7, None, "classify")
    assert parse_route("POST", "/v1/models/m/labels/stable:regress") == Route(
        "m", None, "stable", "regress")
    assert parse_route("GET", "/v1/models/m") == Route("m", None, None, "status")
    assert parse_route("GET", "/V1/MODELS/m/versions/2/metadata") == Route(
        "m", 2, None, "metadata")
    for method, path, error in [
        ("GET", "/v1/models/m:predict", MethodNotAllowedError),
        ("POST", "/v1/models/m", MethodNotAllowedError),
        ("GET", "/v1/models", NotFoundError),
        ("GET", "/v1/models/m/versions/x", NotFoundError),
        ("POST", "/v1/models/m:explain", NotFoundError),
        ("GET", "/v2/models/m", NotFoundError),
        ("GET", "/v1/models/m/versions/99999999999999999999", NotFoundError),
    ]:
        with pytest.raises(error):
            parse_route(method, path)
