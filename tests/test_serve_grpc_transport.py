"""How smrt serve's gRPC API is reached: a Unix socket (--grpc_socket_path, TF Serving's
testPredictUDS), TLS with client verification (--ssl_config_file), grpc.health.v1
(--enable_grpc_healthcheck_service) and channel arguments (testGoodGrpcChannelArgs), with the
official client in its own process."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Zoo
from .serving import ServerProcess, version_dir
from .tf_serving_client import Client, RpcError

PREDICT = """
request = predict_pb2.PredictRequest()
request.model_spec.name = 'default'
request.inputs['x'].CopyFrom(tf.make_tensor_proto(np.array([2.0], np.float32)))
if credentials is None:
    channel = grpc.insecure_channel(target)
else:
    ca, key, cert = credentials
    channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(
        open(ca, 'rb').read(), open(key, 'rb').read() if key else None,
        open(cert, 'rb').read() if cert else None))
stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
result = list(stub.Predict(request, 10.0).outputs['y'].float_val)
"""


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    client = Client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def base(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("transport") / "hp"
    version_dir(base, 1, zoo.path("half_plus_two"))
    return base


def test_unix_socket_and_channel_arguments(base: Path, client: Client, tmp_path: Path) -> None:
    socket = tmp_path / "s.sock"
    server = ServerProcess(f"--model_base_path={base}", f"--grpc_socket_path={socket}",
                           "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,"
                           "grpc.lb_policy_name=grpclb")
    try:
        assert client.run(PREDICT, target=f"unix:{socket}", credentials=None) == [3.0]
        assert client.run(PREDICT, target=server.grpc_target, credentials=None) == [3.0]
    finally:
        assert server.stop() == 0


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _certificate(directory: Path, name: str, ca: str | None) -> tuple[Path, Path]:
    """An EC key and certificate for CN=localhost, signed by ``ca`` (or self-signed)."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if ca is None:
        _openssl("req", "-x509", *ec, "-keyout", str(key), "-out", str(cert), "-days", "2",
                 "-subj", f"/CN={name}")
        return key, cert
    csr = directory / f"{name}.csr"
    extensions = directory / f"{name}.ext"
    extensions.write_text("subjectAltName=DNS:localhost\n")
    _openssl("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost")
    _openssl("x509", "-req", "-in", str(csr), "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions))
    return key, cert


def test_tls_with_client_verification(base: Path, client: Client, tmp_path: Path) -> None:
    ca_key, ca_cert = _certificate(tmp_path, "ca", None)
    server_key, server_cert = _certificate(tmp_path, "server", str(tmp_path / "ca"))
    client_key, client_cert = _certificate(tmp_path, "client", str(tmp_path / "ca"))
    config = tmp_path / "ssl.config"
    config.write_text(f"server_key: {server_key.read_text()!r}\n"
                      f"server_cert: {server_cert.read_text()!r}\n"
                      f"custom_ca: {ca_cert.read_text()!r}\nclient_verify: true\n")
    server = ServerProcess(f"--model_base_path={base}", f"--ssl_config_file={config}")
    try:
        assert "(TLS)" in server.log
        target = "localhost:" + server.grpc_target.rsplit(":", 1)[1]
        good = [str(ca_cert), str(client_key), str(client_cert)]
        assert client.run(PREDICT, target=target, credentials=good) == [3.0]
        for credentials in ([str(ca_cert), None, None], None):  # no client certificate
            with pytest.raises(RpcError) as error:
                client.run(PREDICT, target=target, credentials=credentials)
            assert error.value.code == "UNAVAILABLE"
    finally:
        assert server.stop() == 0
    del ca_key


HEALTH = """
channel = grpc.insecure_channel(target)
check = channel.unary_unary('/grpc.health.v1.Health/Check')
result = check(request.encode('latin-1'), timeout=10.0).decode('latin-1')
"""


def test_health_check(base: Path, client: Client) -> None:
    server = ServerProcess(f"--model_base_path={base}", "--enable_grpc_healthcheck_service")
    try:
        # HealthCheckRequest{service}: "" (the server) and its services are SERVING (1).
        for service in ("", "tensorflow.serving.PredictionService"):
            request = (b"\n" + bytes([len(service)]) + service.encode()) if service else b""
            assert client.run(HEALTH, target=server.grpc_target,
                              request=request.decode("latin-1")) == "\x08\x01"
        with pytest.raises(RpcError) as error:
            client.run(HEALTH, target=server.grpc_target, request="\n\x04nope")
        assert error.value.code == "NOT_FOUND"
        # The last occurrence of a field wins, as protobuf's rules say; a cut message is refused.
        assert client.run(HEALTH, target=server.grpc_target,
                          request="\n\x04nope\n\x00") == "\x08\x01"
        with pytest.raises(RpcError) as error:
            client.run(HEALTH, target=server.grpc_target, request="\n\x05ab")
        assert error.value.code == "INVALID_ARGUMENT"
        # service (a string) as a varint is an unknown field, skipped as protobuf skips it
        # (it was refused): the server's own status. A wire type that does not exist is not.
        assert client.run(HEALTH, target=server.grpc_target, request="\x08\x05") == "\x08\x01"
        with pytest.raises(RpcError) as error:
            client.run(HEALTH, target=server.grpc_target, request="\x0f")
        assert error.value.code == "INVALID_ARGUMENT"
        assert "field 1: invalid wire type 7" in error.value.details
    finally:
        assert server.stop() == 0
    plain = ServerProcess(f"--model_base_path={base}")  # not asked for: not served
    try:
        with pytest.raises(RpcError) as error:
            client.run(HEALTH, target=plain.grpc_target, request="")
        assert error.value.code == "UNIMPLEMENTED"
    finally:
        assert plain.stop() == 0


RELOAD = """
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.config import model_server_config_pb2
request = model_management_pb2.ReloadConfigRequest()
for name, path, labels in models:
    config = request.config.model_config_list.config.add()
    config.name, config.base_path, config.model_platform = name, path, 'tensorflow'
    config.model_version_policy.all.SetInParent()
    for key, value in labels.items():
        config.version_labels[key] = value
if kind == 'custom':
    request.config.custom_model_config.type_url = 'type.googleapis.com/x'
elif kind == 'list':
    request.config.model_config_list.SetInParent()  # even with no model in it
stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(target))
reply = stub.HandleReloadConfigRequest(request, 30.0)
result = [reply.status.error_code, reply.status.error_message]
"""


def test_reload_config(zoo: Zoo, base: Path, client: Client, tmp_path: Path) -> None:
    """ModelService/HandleReloadConfigRequest: the new model list replaces the old one."""
    other = tmp_path / "h3"
    version_dir(other, 1, zoo.path("half_plus_three"))
    version_dir(other, 2, zoo.path("half_plus_two"))
    server = ServerProcess(f"--model_base_path={base}")
    try:
        assert client.run(RELOAD, target=server.grpc_target, kind="list",
                          models=[["h3", str(other), {"stable": 1}]]) == [0, ""]
        reply = server.post("/v1/models/h3/labels/stable:predict", json={"instances": [2.0]})
        assert reply.json() == {"predictions": [4.0]}  # version 1, by its label
        assert server.get("/v1/models/default").status_code == 404  # dropped
        with pytest.raises(RpcError) as error:  # a bad config changes nothing
            client.run(RELOAD, target=server.grpc_target, kind="list",
                       models=[["x", str(tmp_path / "missing"), {}]])
        assert error.value.code == "INVALID_ARGUMENT"
        assert "is not a directory" in error.value.details
        assert server.get("/v1/models/h3").status_code == 200
        # No config at all, or a custom one: refused as TF Serving does, nothing unloaded.
        for kind in ("none", "custom"):
            with pytest.raises(RpcError) as error:
                client.run(RELOAD, target=server.grpc_target, models=[], kind=kind)
            assert error.value.code == "FAILED_PRECONDITION"
            assert error.value.details == ("Cannot transition to requested config. It is only "
                                           "legal to transition from one ModelConfigList to "
                                           "another.")
        assert server.get("/v1/models/h3").status_code == 200
    finally:
        assert server.stop() == 0


def test_reload_uses_the_saved_model_tags_flag(zoo: Zoo, client: Client, tmp_path: Path) -> None:
    """Models a reload adds load the --saved_model_tags MetaGraph, even once none is served
    (the tags once came from whichever model was loaded, else 'serve')."""
    base = tmp_path / "t"
    version_dir(base, 1, zoo.path("two_tag_sets"))  # 'serve': y = 2x; 'serve, gpu': y = 6x
    server = ServerProcess(f"--model_base_path={base}", "--saved_model_tags=serve,gpu")
    try:
        for models in ([], [["t", str(base), {}]]):
            assert client.run(RELOAD, target=server.grpc_target, kind="list",
                              models=models) == [0, ""]
        reply = server.post("/v1/models/t:predict", json={"instances": [[1.0]]})
        assert reply.json() == {"predictions": [[6.0]]}
    finally:
        assert server.stop() == 0


def test_predict_through_the_batcher(base: Path, client: Client) -> None:
    """With --enable_batching, gRPC predicts go through the signature's batcher, as REST's."""
    server = ServerProcess(f"--model_base_path={base}", "--enable_batching",
                           "--batch_timeout_micros=200000")
    try:
        start = time.perf_counter()
        assert client.run(PREDICT, target=server.grpc_target, credentials=None) == [3.0]
        assert time.perf_counter() - start > 0.15  # a lone request waited for company
        assert 'smrt_batches_total{model="default",version="1",signature="serving_default"}' \
            in server.get("/metrics").text
    finally:
        assert server.stop() == 0
