"""TF Serving's own REST test cases (tensorflow_model_server_test.py: testPredictREST,
testPredictColumnarREST, testClassifyREST, testRegressREST, testGetStatusREST), run against a
real `smrt serve` with TF Serving's half_plus_two (its x declared (-1, 1)), as TF Serving runs
them: `--model_name=default`, version 123, `--rest_api_timeout_in_ms=5000`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import Zoo
from .serving import ServerProcess, version_dir


@pytest.fixture(scope="module")
def server(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("tfs") / "half_plus_two"
    version_dir(base, 123, zoo.path("tf_serving_half_plus_two"))
    process = ServerProcess("--model_name=default", f"--model_base_path={base}",
                            "--rest_api_timeout_in_ms=5000")
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
