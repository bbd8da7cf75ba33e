"""TF Serving's own REST test cases (tensorflow_model_server_test.py: testPredictREST,
testPredictColumnarREST, testClassifyREST, testRegressREST, testGetStatusREST,
testGetModelMetadataREST, testPrometheusEndpoint), run against a real `smrt serve` with TF
Serving's half_plus_two (its x declared (-1, 1)), as TF Serving runs them:
`--model_name=default`, version 123, `--rest_api_timeout_in_ms=5000`, and its
monitoring_config.txt. The rest of that suite is gRPC (or TFLite, which smrt does not run)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Zoo
from .serving import ServerProcess, version_dir


@pytest.fixture(scope="module")
def server(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("tfs") / "half_plus_two"
    version_dir(base, 123, zoo.path("tf_serving_half_plus_two"))
    monitoring = base.parent / "monitoring_config.txt"  # TF Serving's testdata file
    monitoring.write_text('prometheus_config {\n  enable: true,\n  path: '
                          '"/monitoring/prometheus/metrics"\n}\n')
    process = ServerProcess("--model_name=default", f"--model_base_path={base}",
                            "--rest_api_timeout_in_ms=5000",
                            f"--monitoring_config_file={monitoring}")
    yield process
    assert process.stop() == 0


def _post(server: ServerProcess, verb: str, body: dict[str, object]) -> object:
    reply = server.post(f"/v1/models/default:{verb}", json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_predict_rest(server: ServerProcess) -> None:
    # [3] fed to an input declared (-1, 1): TF Serving leaves shapes to TensorFlow.
    assert _post(server, "predict", {"instances": [2.0, 3.0, 4.0]}) == {
        "predictions": [3.0, 3.5, 4.0]}


def test_predict_columnar_rest(server: ServerProcess) -> None:
    assert _post(server, "predict", {"inputs": [2.0, 3.0, 4.0]}) == {"outputs": [3.0, 3.5, 4.0]}


def test_classify_rest(server: ServerProcess) -> None:
    assert _post(server, "classify", {"signature_name": "classify_x_to_y",
                                      "examples": [{"x": 2.0}]}) == {"results": [[["", 3.0]]]}


def test_regress_rest(server: ServerProcess) -> None:
    assert _post(server, "regress", {"signature_name": "regress_x_to_y",
                                     "examples": [{"x": 2.0}]}) == {"results": [3.0]}


def test_get_status_rest(server: ServerProcess) -> None:
    reply = server.get("/v1/models/default")
    assert reply.status_code == 200
    assert reply.json() == {"model_version_status": [{
        "version": "123", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}


def test_declared_shapes_are_left_to_tensorflow(server: ServerProcess) -> None:
    # regress_x2_to_y3's input is declared (-1, 1); TensorFlow computes 0.5 * x2 + 3 for any
    # shape, so a 2x2 input is answered, as TF Serving answers it.
    assert _post(server, "predict", {"signature_name": "regress_x2_to_y3",
                                     "inputs": [[1.0, 2.0], [3.0, 4.0]]}) == {
        "outputs": [[3.5, 4.0], [4.5, 5.0]]}


def _sorted(value: Any) -> Any:
    """TF Serving's SortedObject: the metadata's lists have no order worth comparing."""
    if isinstance(value, dict):
        return sorted((k, _sorted(v)) for k, v in value.items())
    if isinstance(value, list):
        return sorted((_sorted(v) for v in value), key=repr)
    return value


def test_get_model_metadata_rest(server: ServerProcess, zoo: Zoo, tmp_path: Path,
                                 run_python: Any) -> None:
    # The expected reply made as TF Serving makes it: the MetaGraph's SignatureDefMap printed
    # by protobuf's JSON printer with proto field names and default values (TensorFlow's
    # protos, in a subprocess).
    expected = json.loads(run_python(f"""
import json
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
saved = saved_model_pb2.SavedModel.FromString(
    open({zoo.path("tf_serving_half_plus_two") + "/saved_model.pb"!r}, "rb").read())
signatures = get_model_metadata_pb2.SignatureDefMap()
for key, value in saved.meta_graphs[0].signature_def.items():
    signatures.signature_def[key].CopyFrom(value)
print(json.dumps({{
    "model_spec": {{"name": "default", "signature_name": "", "version": "123"}},
    "metadata": {{"signature_def": json_format.MessageToDict(
        signatures, preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True)}},
}}))
""", env={"TF_CPP_MIN_LOG_LEVEL": "3"}))
    reply = server.get("/v1/models/default/metadata")
    assert reply.status_code == 200
    assert _sorted(reply.json()) == _sorted(expected)


def test_prometheus_endpoint(server: ServerProcess) -> None:
    reply = server.get("/monitoring/prometheus/metrics")
    assert reply.status_code == 200
    assert "# TYPE" in reply.text
