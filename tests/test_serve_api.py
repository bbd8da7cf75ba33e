"""smrt serve's REST API against a real server process, with TF Serving's clients and JSON.

One server (started once for the module from a model config file) serves several zoo models;
replies are checked against TensorFlow's own outputs (the zoo's cases) or smrt's direct call.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import requests

import smrt

from .conftest import Zoo
from .serving import ServerProcess, version_dir

MAX_REQUEST_BYTES = 16 << 20


@pytest.fixture(scope="module")
def server(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("models")
    version_dir(root / "hp", 1, zoo.path("half_plus_two"))
    version_dir(root / "hp", 2, zoo.path("half_plus_three"))
    for name, source in [("mobilenet", "keras_mobilenet"), ("parse", "parse_example"),
                         ("echo", "bytes_echo"), ("dtypes", "all_dtypes"),
                         ("multi", "multiple_signatures"), ("dynamic", "dynamic_shapes")]:
        version_dir(root / name, 1, zoo.path(source))
    configs = "\n".join(f'config {{ name: "{n}" base_path: "{root / n}" }}' for n in (
        "mobilenet", "parse", "echo", "dtypes", "multi", "dynamic"))
    config = root / "models.config"
    config.write_text(f"""
model_config_list {{
  config {{
    name: "hp" base_path: "{root / 'hp'}" model_platform: "tensorflow"
    model_version_policy {{ all {{ }} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
  {configs}
}}""")
    server = ServerProcess("--model_config_file", str(config),
                           "--max_request_bytes", str(MAX_REQUEST_BYTES))
    yield server
    assert server.stop() == 0, server.log


def _error(response: requests.Response, status: int, pattern: str) -> None:
    """The reply is TF Serving's error JSON with this status and a matching message."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"], body
    assert re.search(pattern, body["error"]), body["error"]


# --- the guide's client -----------------------------------------------------------------------


def test_seed_guide_client_gets_tensorflows_predictions(server: ServerProcess, zoo: Zoo) -> None:
    (case,) = zoo.cases("keras_mobilenet")
    (x,) = case.inputs.values()
    # As in the SavedModel guide, word for word but the URL.
    data = json.dumps({"signature_name": "serving_default", "instances": x.tolist()})
    headers = {"content-type": "application/json"}
    json_response = requests.post(f"{server.url}/v1/models/mobilenet:predict",
                                  data=data, headers=headers, timeout=60)
    predictions = np.array(json.loads(json_response.text)["predictions"])
    (expected,) = case.outputs.values()
    assert predictions.shape == expected.shape
    np.testing.assert_allclose(predictions, expected, rtol=1e-5, atol=1e-6)


# --- model status and metadata --------------------------------------------------------------------


def _status(version: int) -> dict[str, Any]:
    return {"version": str(version), "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}


def test_model_status(server: ServerProcess) -> None:
    reply = server.get("/v1/models/hp")
    assert reply.status_code == 200
    assert reply.json() == {"model_version_status": [_status(2), _status(1)]}
    assert server.get("/v1/models/hp/versions/1").json() == {
        "model_version_status": [_status(1)]}
    assert server.get("/v1/models/hp/labels/canary").json() == {
        "model_version_status": [_status(2)]}
    _error(server.get("/v1/models/hp/versions/3"), 404, "Could not find version 3 of model hp")
    _error(server.get("/v1/models/hp/labels/beta"), 404, "Unrecognized servable version label")
    _error(server.get("/v1/models/nope"), 404, r"Servable not found .*Latest\(nope\)")


def test_model_metadata_as_tf_serving_prints_it(server: ServerProcess) -> None:
    reply = server.get("/v1/models/hp/metadata")
    assert reply.status_code == 200
    body = reply.json()
    assert body["model_spec"] == {"name": "hp", "signature_name": "", "version": "2"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "regress_x_to_y", "classify_x_to_y",
                               "classify_scores_only"}
    assert signatures["serving_default"] == {
        "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}], "unknown_rank": False}, "name": "x:0"}},
        "outputs": {"y": {"dtype": "DT_FLOAT", "tensor_shape": {
            "dim": [{"size": "-1", "name": ""}], "unknown_rank": False}, "name": "y:0"}},
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }
    assert signatures["classify_x_to_y"]["method_name"] == "tensorflow/serving/classify"
    assert server.get("/v1/models/hp/versions/1/metadata").json()["model_spec"]["version"] == "1"
    assert server.get("/v1/models/hp/labels/stable/metadata").json()["model_spec"][
        "version"] == "1"
    multi = server.get("/v1/models/multi/metadata").json()["metadata"]["signature_def"]
    x = multi["signature_def"]["from_float"]["inputs"]["x"]
    assert x["tensor_shape"] == {"dim": [], "unknown_rank": True}  # unknown rank
    scalar = multi["signature_def"]["serving_default"]["inputs"]["string_input"]
    assert scalar["dtype"] == "DT_STRING"
    assert scalar["tensor_shape"] == {"dim": [], "unknown_rank": False}
    _error(server.get("/v1/models/hp/versions/9/metadata"), 404, r"Specific\(hp, 9\)")


# --- predict --------------------------------------------------------------------------------------


def test_predict_row_and_columnar_formats(server: ServerProcess) -> None:
    def predict(path: str, request: dict[str, Any]) -> Any:
        reply = server.post(f"/v1/models/hp{path}:predict", json=request)
        assert reply.status_code == 200, reply.text
        return reply.json()

    # TF Serving's REST example: half_plus_three (version 2, the latest) answers 0.5 x + 3.
    assert predict("", {"instances": [1.0, 2.0, 5.0]}) == {"predictions": [3.5, 4.0, 5.5]}
    assert predict("/versions/1", {"instances": [1.0, 2.0, 5.0]}) == {
        "predictions": [2.5, 3.0, 4.5]}
    assert predict("/labels/stable", {"instances": [{"x": 1}]}) == {"predictions": [2.5]}
    assert predict("", {"inputs": [1, 2]}) == {"outputs": [3.5, 4.0]}
    assert predict("", {"inputs": {"x": [1]}, "signature_name": "serving_default"}) == {
        "outputs": [3.5]}


def test_predict_several_outputs_with_b64_examples(server: ServerProcess, zoo: Zoo) -> None:
    (case,) = zoo.cases("parse_example")
    examples = [{"b64": base64.b64encode(e).decode()} for e in case.inputs["examples"]]
    rows = server.post("/v1/models/parse:predict", json={"instances": examples}).json()
    columns = server.post("/v1/models/parse:predict",
                          json={"inputs": {"examples": examples}}).json()
    names = sorted(case.outputs)
    assert [sorted(row) for row in rows["predictions"]] == [names] * len(examples)
    for name, expected in case.outputs.items():
        column = columns["outputs"][name]
        by_rows = [row[name] for row in rows["predictions"]]
        assert column == by_rows
        if expected.dtype == object:
            assert column == [v.decode() for v in expected]
        else:
            np.testing.assert_allclose(np.array(column), expected, rtol=1e-6)


def test_binary_strings_in_and_out(server: ServerProcess) -> None:
    data = [b"\xff\x00\xd8\xff", b"plain text", "é".encode()]
    request = {"instances": [{"b64": base64.b64encode(d).decode()} for d in data]}
    rows = server.post("/v1/models/echo:predict", json=request).json()["predictions"]
    # "_bytes" outputs always come back as b64; others as text when they are UTF-8.
    assert [base64.b64decode(r["echo_bytes"]["b64"]) for r in rows] == data
    assert [r["echo"] for r in rows] == [{"b64": "/wDY/w=="}, "plain text", "é"]
    assert [r["size"] for r in rows] == [4, 10, 2]
    text = server.post("/v1/models/echo:predict", json={"instances": ["a", "bc"]}).json()
    assert [r["size"] for r in text["predictions"]] == [1, 2]


def test_nan_and_infinity_in_and_out(server: ServerProcess) -> None:
    body = b'{"instances": [NaN, Infinity, -Infinity, 1]}'
    reply = server.post("/v1/models/hp:predict", data=body)
    assert reply.status_code == 200
    assert reply.content == b'{"predictions":[NaN,Infinity,-Infinity,3.5]}'
    values = json.loads(reply.content)["predictions"]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf, 3.5]


def test_scalars_and_signature_choice(server: ServerProcess,
                                      loaded: Callable[[str], smrt.Model], zoo: Zoo) -> None:
    request = {"signature_name": "scalars", "inputs": {"a": 1.5, "b": 7, "c": "text"}}
    reply = server.post("/v1/models/dtypes:predict", json=request)
    assert reply.status_code == 200, reply.text
    expected = loaded("all_dtypes").signatures["scalars"](
        a=np.float32(1.5), b=np.int64(7), c=np.array(b"text", object))
    outputs = reply.json()["outputs"]
    assert outputs["o_a"] == pytest.approx(float(expected["o_a"]))
    assert outputs["o_b"] == int(expected["o_b"])
    assert outputs["o_c"] == expected["o_c"].item().decode()
    multi = server.post("/v1/models/multi:predict", json={"inputs": "3."}).json()
    assert multi == {"outputs": pytest.approx(float(
        loaded("multiple_signatures").signatures["serving_default"](
            string_input=np.array(b"3.", object))["output_0"]))}


def test_dynamic_shapes(server: ServerProcess, loaded: Callable[[str], smrt.Model]) -> None:
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    z = np.arange(5, dtype=np.float32)
    reply = server.post("/v1/models/dynamic:predict",
                        json={"inputs": {"x": x.tolist(), "z": z.tolist()}})
    assert reply.status_code == 200, reply.text
    expected = loaded("dynamic_shapes")(x=x, z=z)
    for name, value in reply.json()["outputs"].items():
        np.testing.assert_allclose(np.array(value, np.float32), expected[name])


def test_concurrent_requests_all_answered_correctly(server: ServerProcess) -> None:
    def call(i: int) -> list[float]:
        with requests.Session() as session:
            reply = session.post(f"{server.url}/v1/models/hp/versions/1:predict",
                                 json={"instances": [float(i)]}, timeout=60)
            return list(reply.json()["predictions"])

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, range(200)))
    assert results == [[0.5 * i + 2] for i in range(200)]


# --- classify and regress -------------------------------------------------------------------------

EXAMPLES = [{"x": 1.0}, {"x": -4.0, "bias": 0.25}]  # the zoo's half_plus cases


def test_regress_matches_tensorflow(server: ServerProcess, zoo: Zoo) -> None:
    reply = server.post("/v1/models/hp/versions/1:regress",
                        json={"signature_name": "regress_x_to_y", "examples": EXAMPLES})
    assert reply.status_code == 200, reply.text
    (case,) = [c for c in zoo.cases("half_plus_two") if c.signature == "regress_x_to_y"]
    np.testing.assert_allclose(reply.json()["results"], case.outputs["outputs"][:, 0])


def test_classify_matches_tensorflow(server: ServerProcess, zoo: Zoo) -> None:
    for signature in ("classify_x_to_y", "classify_scores_only"):
        reply = server.post("/v1/models/hp/versions/1:classify",
                            json={"signature_name": signature, "examples": EXAMPLES})
        assert reply.status_code == 200, reply.text
        (case,) = [c for c in zoo.cases("half_plus_two") if c.signature == signature]
        scores = case.outputs["scores"]
        classes = case.outputs.get("classes", np.full(scores.shape, b"", object))
        expected = [[[label.decode(), pytest.approx(float(score))]
                     for label, score in zip(label_row, score_row, strict=True)]
                    for label_row, score_row in zip(classes, scores, strict=True)]
        assert reply.json() == {"results": expected}


def test_classify_context_is_shared_by_every_example(server: ServerProcess) -> None:
    request = {"signature_name": "regress_x_to_y", "context": {"bias": 10.0},
               "examples": [{"x": 2.0}, {"x": 4.0, "bias": 1.0}]}  # its own bias wins
    reply = server.post("/v1/models/hp/versions/1:regress", json=request)
    assert reply.json() == {"results": [13.0, 5.0]}


def test_classify_and_regress_errors(server: ServerProcess) -> None:
    url = "/v1/models/hp:regress"
    _error(server.post(url, json={"examples": EXAMPLES}), 400,
           "signature 'serving_default' cannot regress: it must take one input named 'inputs'")
    _error(server.post("/v1/models/hp:classify",
                       json={"signature_name": "regress_x_to_y", "examples": EXAMPLES}),
           400, "cannot classify: its outputs must be 'classes' and/or 'scores'")
    _error(server.post(url, json={"signature_name": "regress_x_to_y"}), 400, "needs 'examples'")
    _error(server.post(url, json={"signature_name": "regress_x_to_y", "examples": []}), 400,
           "non-empty list")
    _error(server.post(url, json={"signature_name": "regress_x_to_y", "examples": [1]}), 400,
           r"examples\[0\] must be an object")
    _error(server.post(url, json={"signature_name": "regress_x_to_y",
                                  "examples": [{"x": [1, "a"]}]}), 400, r"examples\[0\]")
    _error(server.post(url, json={"signature_name": "regress_x_to_y",
                                  "examples": [{"x": None}]}), 400, "feature 'x'")
    _error(server.post(url, json={"signature_name": "regress_x_to_y", "examples": EXAMPLES,
                                  "context": [1]}), 400, "'context' must be an object")
    _error(server.post(url, json={"signature_name": "nope", "examples": EXAMPLES}), 404,
           'signature name: "nope" not found')
    # A feature the model cannot parse is TensorFlow's INVALID_ARGUMENT: 400.
    _error(server.post(url, json={"signature_name": "regress_x_to_y",
                                  "examples": [{"x": "text"}]}), 400, "x")


def test_sizes_are_left_to_tensorflow_as_tf_serving_does(server: ServerProcess) -> None:
    # x is declared (None,); TF Serving feeds [[1, 2]] as it comes and TensorFlow computes it.
    reply = server.post("/v1/models/hp:predict", json={"instances": [[1.0, 2.0]]})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"predictions": [[3.5, 4.0]]}


# --- bad requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "status", "pattern"), [
    ("/v1/models/hp:predict", b"{not json", 400, "not valid JSON"),
    ("/v1/models/hp:predict", b"", 400, "not valid JSON"),
    ("/v1/models/hp:predict", b"[1, 2]", 400, "must be a JSON object"),
    ("/v1/models/hp:predict", b'{"instances": [1], "inputs": [1]}', 400, "not both"),
    ("/v1/models/hp:predict", b'{"signature_name": "serving_default"}', 400, "either"),
    ("/v1/models/hp:predict", b'{"instances": [[1, 2], [3]]}', 400, "different lengths"),
    ("/v1/models/hp:predict", b'{"instances": ["a"]}', 400, "input 'x': got strings"),
    ("/v1/models/hp:predict", b'{"instances": [[[1, 2]]]}', 400,
     r"input 'x' of signature 'serving_default' expects shape \(None,\), got \(1, 1, 2\): "
     r"a tensor of another rank is refused"),
    ("/v1/models/hp:predict", b'{"instances": [{"y": 1}]}', 400, r"missing input\(s\) x"),
    ("/v1/models/hp:predict", b'{"instances": [1], "signature_name": "nope"}', 404,
     'Serving signature name: "nope" not found'),
    ("/v1/models/hp:predict", b'{"instances": [1], "signature_name": 3}', 400, "must be a string"),
    ("/v1/models/hp/versions/7:predict", b'{"instances": [1]}', 404, r"Specific\(hp, 7\)"),
    ("/v1/models/hp/labels/beta:predict", b'{"instances": [1]}', 404, "label: beta"),
    ("/v1/models/nope:predict", b'{"instances": [1]}', 404, r"Latest\(nope\)"),
    ("/v1/models/mobilenet:predict", b'{"instances": [[1.0, 2.0]]}', 400, "keras_tensor"),
    ("/v1/models/dtypes:predict", b'{"instances": [{"b": true}]}', 400, "missing input"),
    ("/v1/models/hp:explain", b"{}", 404, "Malformed request"),
    ("/v2/models/hp:predict", b"{}", 404, "Malformed request"),
    ("/", b"", 404, "Malformed request"),
])
def test_bad_requests_get_tf_serving_error_json(server: ServerProcess, path: str, body: bytes,
                                                 status: int, pattern: str) -> None:
    _error(server.post(path, data=body), status, pattern)


def test_wrong_methods(server: ServerProcess) -> None:
    _error(server.get("/v1/models/hp:predict"), 405, "predict takes POST")
    _error(server.post("/v1/models/hp", data=b"{}"), 405, "takes GET")
    _error(server.session.delete(f"{server.url}/v1/models/hp/metadata", timeout=60), 405, "GET")
    _error(server.post("/metrics"), 405, "GET")


def test_complex_inputs_cannot_be_json(server: ServerProcess) -> None:
    names = ["b", "bf16", "c128", "c64", "f16", "f32", "f64", "i16", "i32", "i64", "i8", "s",
             "u16", "u32", "u64", "u8"]
    values = {n: ([True] if n == "b" else ["s"] if n == "s" else [1]) for n in names}
    _error(server.post("/v1/models/dtypes:predict", json={"inputs": values}), 400,
           "input 'c128': complex128 tensors cannot be sent as JSON")


def test_huge_bodies_are_refused_unread(server: ServerProcess) -> None:
    huge = b'{"instances": [' + b"1.0," * (MAX_REQUEST_BYTES // 4) + b"1.0]}"
    _error(server.post("/v1/models/hp:predict", data=huge), 413,
           f"larger than the limit of {MAX_REQUEST_BYTES} bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"instances": ['
        for _ in range(MAX_REQUEST_BYTES // (1 << 16)):
            yield b"1.0," * (1 << 14)
        yield b"1.0]}"

    _error(server.post("/v1/models/hp:predict", data=chunks()), 413, "larger than the limit")
    assert server.post("/v1/models/hp:predict", json={"instances": [1]}).status_code == 200


def test_deeply_nested_json_is_a_clean_400(server: ServerProcess) -> None:
    body = b'{"instances": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    _error(server.post("/v1/models/hp:predict", data=body), 400, "JSON|nest")


# --- operations -----------------------------------------------------------------------------------


def test_binds_to_loopback_by_default(server: ServerProcess) -> None:
    assert server.url.startswith("http://127.0.0.1:")


def test_metrics_count_requests_by_model_and_status(server: ServerProcess) -> None:
    server.post("/v1/models/hp:predict", json={"instances": [1]})
    server.post("/v1/models/hp:predict", json={"instances": ["bad"]})
    server.post("/v1/models/unknown-model:predict", json={"instances": [1]})
    reply = server.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    text = reply.text
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^smrt_requests_total\{(model="hp",api="predict",status="\d+")\} (\d+)$', text, re.M)}
    assert counts['model="hp",api="predict",status="200"'] >= 1
    assert counts['model="hp",api="predict",status="400"'] >= 1
    assert 'model="unknown-model"' not in text  # unknown names are not labels (cardinality)
    assert re.search(r'^smrt_requests_total\{model="",api="predict",status="404"\} \d+$', text,
                     re.M)
    assert re.search(r'^smrt_request_errors_total\{model="hp",api="predict"\} [1-9]', text, re.M)
    assert re.search(r'^smrt_request_latency_seconds_count\{model="hp",api="predict"\} [1-9]',
                     text, re.M)
    assert 'smrt_model_versions_serving{model="hp"} 2' in text
    # TF Serving's Prometheus path only with a --monitoring_config_file enabling it
    # (test_serve_flags.py).
    assert server.get("/monitoring/prometheus/metrics").status_code == 404


def test_access_log_has_a_line_per_request(server: ServerProcess) -> None:
    server.post("/v1/models/hp/versions/1:predict", json={"instances": [3]})
    server.wait_for_log(r'smrt\.serve\.access: 127\.0\.0\.1 "POST /v1/models/hp/versions/1:predict'
                        r' HTTP/1\.1" 200 \d+ [\d.]+')
