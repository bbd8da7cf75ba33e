"""TF Serving's gRPC API against a real `smrt serve`, called by the official client
(tensorflow-serving-api, in its own process: tests/tf_serving_client.py). The cases follow TF
Serving's own tensorflow_model_server_test.py (VerifyPredictRequest, testClassify,
testRegress, testMultiInference, testGetModelStatus, testGetModelMetadata) on TF Serving's
half_plus_two as version 123, with TF2 exports beside it (predict, and classify/regress), and
its error codes; output_filter on a model whose unfiltered output fails the run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Zoo
from .protowire import field, varint
from .serving import ServerProcess, version_dir
from .tf_serving_client import Client, RpcError


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    client = Client()
    yield client
    client.close()


@pytest.fixture(scope="module")
def server(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("grpc")
    models = {"default": (123, "tf_serving_half_plus_two"), "tf2": (1, "add_one"),
              "guarded": (1, "guarded_outputs"), "tf2_examples": (2, "tf2_classify_regress")}
    for name, (version, source) in models.items():
        version_dir(root / name, version, zoo.path(source))
    config = root / "models.config"
    config.write_text("model_config_list { " + " ".join(
        f'config {{ name: "{name}" base_path: "{root / name}" }}' for name in models) + " }")
    process = ServerProcess(f"--model_config_file={config}", "--rest_api_timeout_in_ms=5000")
    yield process
    assert process.stop() == 0


PREDICT = """
request = predict_pb2.PredictRequest()
request.model_spec.name = name
request.inputs['x'].dtype = tf.float32.as_datatype_enum
request.inputs['x'].float_val.append(2.0)
request.inputs['x'].tensor_shape.dim.add().size = 1
if specify_output:
    request.output_filter.append('y')
stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
reply = stub.Predict(request, 5.0)
result = {"keys": sorted(reply.outputs), "dtype": reply.outputs['y'].dtype,
          "y": list(reply.outputs['y'].float_val),
          "spec": [reply.model_spec.name, reply.model_spec.signature_name,
                   reply.model_spec.version.value]}
"""


@pytest.mark.parametrize("specify_output", [True, False])
def test_predict(server: ServerProcess, client: Client, specify_output: bool) -> None:
    # TF Serving's VerifyPredictRequest: float_val [2.0] of shape [1] to x, declared (-1, 1).
    result = client.run(PREDICT, target=server.grpc_target, name="default",
                        specify_output=specify_output)
    assert result == {"keys": ["y"], "dtype": 1, "y": [3.0],
                      "spec": ["default", "serving_default", 123]}


def test_predict_tensor_content_in_every_direction(server: ServerProcess,
                                                   client: Client) -> None:
    # tf.make_tensor_proto writes tensor_content; the reply's typed fields read back exactly.
    result = client.run("""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tf2"
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    request.inputs['x'].CopyFrom(tf.make_tensor_proto(x))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    reply = stub.Predict(request, 5.0)
    y = tf.make_ndarray(reply.outputs['y'])
    result = {"y": y.tolist(), "content": bool(reply.outputs['y'].tensor_content),
              "version": reply.model_spec.version.value}
    """, target=server.grpc_target)
    assert result == {"y": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "content": False, "version": 1}


def test_get_model_status(server: ServerProcess, client: Client) -> None:
    result = client.run("""
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = 'default'
    stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(target))
    reply = stub.GetModelStatus(request, 5.0)
    result = [[s.version, s.state, s.status.error_code, s.status.error_message]
              for s in reply.model_version_status]
    """, target=server.grpc_target)
    assert result == [[123, 30, 0, ""]]  # AVAILABLE, OK


METADATA_AND_SAVED_MODEL = """
from tensorflow.core.protobuf import saved_model_pb2
request = get_model_metadata_pb2.GetModelMetadataRequest()
request.model_spec.name = name
request.metadata_field.append('signature_def')
stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
reply = stub.GetModelMetadata(request, 10.0)
signatures = get_model_metadata_pb2.SignatureDefMap()
assert reply.metadata['signature_def'].Unpack(signatures)
saved = saved_model_pb2.SavedModel.FromString(open(path, 'rb').read())
expected = get_model_metadata_pb2.SignatureDefMap()
for key, value in saved.meta_graphs[0].signature_def.items():
    expected.signature_def[key].CopyFrom(value)
result = {"equal": signatures == expected, "keys": sorted(signatures.signature_def),
          "methods": {k: v.method_name for k, v in signatures.signature_def.items()},
          "spec": [reply.model_spec.name, reply.model_spec.version.value]}
"""
"""GetModelMetadata of model `name`, and the SignatureDefs of its saved_model.pb at `path`."""


def test_get_model_metadata(server: ServerProcess, client: Client, zoo: Zoo) -> None:
    # The signature defs, packed in Any(SignatureDefMap), equal the SavedModel's own.
    result = client.run(METADATA_AND_SAVED_MODEL, target=server.grpc_target, name="default",
                        path=zoo.path("tf_serving_half_plus_two") + "/saved_model.pb")
    assert result["equal"], result
    assert result["spec"] == ["default", 123]
    assert "serving_default" in result["keys"]


EXAMPLES = """
request = {kind}()
request.model_spec.name = 'default'
request.model_spec.signature_name = signature
request.input.example_list.examples.add().features.feature['x'].float_list.value.extend([2.0])
stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
reply = stub.{method}(request, 5.0)
spec = [reply.model_spec.name, reply.model_spec.signature_name, reply.model_spec.version.value]
"""


def test_classify(server: ServerProcess, client: Client) -> None:
    result = client.run(EXAMPLES.format(kind="classification_pb2.ClassificationRequest",
                                        method="Classify") + """
result = [[[c.label, c.score] for c in cl.classes] for cl in reply.result.classifications], spec
""", target=server.grpc_target, signature="classify_x_to_y")
    assert result == [[[["", 3.0]]], ["default", "classify_x_to_y", 123]]


def test_regress(server: ServerProcess, client: Client) -> None:
    result = client.run(EXAMPLES.format(kind="regression_pb2.RegressionRequest",
                                        method="Regress") + """
result = [r.value for r in reply.result.regressions], spec
""", target=server.grpc_target, signature="regress_x_to_y")
    assert result == [[3.0], ["default", "regress_x_to_y", 123]]


def test_multi_inference(server: ServerProcess, client: Client) -> None:
    result = client.run("""
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (('regress_x_to_y', 'tensorflow/serving/regress'),
                              ('classify_x_to_y', 'tensorflow/serving/classify')):
        task = request.tasks.add()
        task.model_spec.name = 'default'
        task.model_spec.signature_name = signature
        task.method_name = method
    example = request.input.example_list.examples.add()
    example.features.feature['x'].float_list.value.extend([2.0])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    reply = stub.MultiInference(request, 5.0)
    result = [reply.results[0].regression_result.regressions[0].value,
              reply.results[1].classification_result.classifications[0].classes[0].score,
              [[r.model_spec.name, r.model_spec.signature_name, r.model_spec.version.value]
               for r in reply.results]]
    """, target=server.grpc_target)
    assert result == [3.0, 3.0, [["default", "regress_x_to_y", 123],
                                 ["default", "classify_x_to_y", 123]]]


FILTERED = """
request = predict_pb2.PredictRequest()
request.model_spec.name = 'guarded'
request.inputs['x'].CopyFrom(tf.make_tensor_proto(np.array(x, np.float32)))
request.output_filter.extend(output_filter)
stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
reply = stub.Predict(request, 10.0)
result = {key: tf.make_ndarray(value).tolist() for key, value in reply.outputs.items()}
"""


def test_output_filter_computes_only_the_outputs_asked_for(server: ServerProcess,
                                                         client: Client) -> None:
    # guarded_outputs: `checked` fails the run unless every x is positive (an Assert), `y`
    # never does. Filtering after a full run would fail the first request too.
    assert client.run(FILTERED, target=server.grpc_target, x=[-1.0, 3.0],
                      output_filter=["y"]) == {"y": [-2.0, 6.0]}
    for output_filter in ([], ["checked"], ["y", "checked"]):
        with pytest.raises(RpcError) as error:
            client.run(FILTERED, target=server.grpc_target, x=[-1.0, 3.0],
                       output_filter=output_filter)
        assert error.value.code == "INVALID_ARGUMENT", error.value.details
        assert "checked needs a positive x" in error.value.details
    assert client.run(FILTERED, target=server.grpc_target, x=[1.0],
                      output_filter=["checked", "y"]) == {"checked": [1.0], "y": [2.0]}


def test_output_filter_through_the_batching_queue(zoo: Zoo, tmp_path: Path,
                                                  client: Client) -> None:
    """Batched requests fetch what each asked for: requests with the same filter share a run,
    and one that filters out `checked` never shares a run that computes it."""
    version_dir(tmp_path / "guarded", 1, zoo.path("guarded_outputs"))
    params = tmp_path / "batching.config"
    params.write_text("max_batch_size { value: 8 } batch_timeout_micros { value: 300000 }")
    server = ServerProcess(f"--model_base_path={tmp_path / 'guarded'}", "--model_name=guarded",
                           "--enable_batching", f"--batching_parameters_file={params}")
    try:
        result = client.run("""
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
        futures = []
        for x, output_filter in cases:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = 'guarded'
            request.inputs['x'].CopyFrom(tf.make_tensor_proto(np.array(x, np.float32)))
            request.output_filter.extend(output_filter)
            futures.append(stub.Predict.future(request, 20.0))
        result = [{k: tf.make_ndarray(v).tolist() for k, v in f.result().outputs.items()}
                  for f in futures]
        """, target=server.grpc_target, cases=[
            ([-1.0], ["y"]), ([2.0], []), ([-3.0], ["y"]), ([4.0], [])])
        assert result == [{"y": [-2.0]}, {"y": [4.0], "checked": [2.0]}, {"y": [-6.0]},
                          {"y": [8.0], "checked": [4.0]}]
        metrics = server.get("/metrics").text
        batched = re.search(r'smrt_batched_requests_total\{model="guarded",version="1",'
                            r'signature="serving_default"\} (\d+)', metrics)
        assert batched is not None, metrics
        assert int(batched.group(1)) >= 2, metrics  # a run shared by two requests or more
    finally:
        assert server.stop() == 0


def _examples(*xs: float) -> str:
    """Client code adding a tf.Example with float feature x per value to request.input."""
    return "".join(f"request.input.example_list.examples.add().features.feature['x']"
                   f".float_list.value.append({x})\n" for x in xs)


TF2_EXAMPLES = """
request = {kind}()
request.model_spec.name = 'tf2_examples'
request.model_spec.signature_name = signature
{examples}stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
reply = stub.{method}(request, 10.0)
spec = [reply.model_spec.name, reply.model_spec.signature_name, reply.model_spec.version.value]
"""


def _tf_answer(zoo: Zoo, signature: str) -> dict[str, list[object]]:
    """What TensorFlow's own loaded model returned for the zoo's case of ``signature``, the
    examples x = 1 and x = -4 (tests/model_zoo.py)."""
    case = next(c for c in zoo.cases("tf2_classify_regress") if c.signature == signature)
    return {key: value.tolist() for key, value in case.outputs.items()}


def test_classify_a_tf2_export(server: ServerProcess, client: Client, zoo: Zoo) -> None:
    result = client.run(TF2_EXAMPLES.format(
        kind="classification_pb2.ClassificationRequest", method="Classify",
        examples=_examples(1.0, -4.0)) + """
result = [[[c.label, c.score] for c in cl.classes] for cl in reply.result.classifications], spec
""", target=server.grpc_target, signature="classify_x")
    tf_answer = _tf_answer(zoo, "classify_x")
    expected = [[[label.decode(), score] for label, score in zip(labels, scores, strict=True)]
                for labels, scores in zip(tf_answer["classes"], tf_answer["scores"],
                                          strict=True)]
    assert result == [expected, ["tf2_examples", "classify_x", 2]]
    assert expected[0] == [["low", 2.5], ["high", -1.5]]  # y = 0.5 * 1 + 2


@pytest.mark.parametrize("signature", ["regress_x", "regress_as_saved"])
def test_regress_a_tf2_export(server: ServerProcess, client: Client, zoo: Zoo,
                              signature: str) -> None:
    # regress_as_saved keeps the predict method name tf.saved_model.save writes: TF Serving
    # regresses with it too unless --enable_signature_method_name_check.
    result = client.run(TF2_EXAMPLES.format(
        kind="regression_pb2.RegressionRequest", method="Regress",
        examples=_examples(1.0, -4.0)) + """
result = [r.value for r in reply.result.regressions], spec
""", target=server.grpc_target, signature=signature)
    outputs = _tf_answer(zoo, signature)["outputs"]
    assert result == [[row[0] for row in outputs], ["tf2_examples", signature, 2]]
    assert result[0] == [2.5, 0.0]


def test_multi_inference_on_a_tf2_export(server: ServerProcess, client: Client,
                                         zoo: Zoo) -> None:
    result = client.run("""
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in tasks:
        task = request.tasks.add()
        task.model_spec.name = 'tf2_examples'
        task.model_spec.signature_name = signature
        task.method_name = method
    for x in (1.0, -4.0):
        request.input.example_list.examples.add().features.feature['x'].float_list.value.append(x)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    reply = stub.MultiInference(request, 10.0)
    first, second = reply.results
    result = [[[c.score for c in cl.classes] for cl in first.classification_result.classifications],
              [r.value for r in second.regression_result.regressions],
              [[r.model_spec.name, r.model_spec.signature_name, r.model_spec.version.value]
               for r in reply.results]]
    """, target=server.grpc_target, tasks=[["classify_x", "tensorflow/serving/classify"],
                                           ["regress_x", "tensorflow/serving/regress"]])
    assert result == [_tf_answer(zoo, "classify_x")["scores"],
                      [row[0] for row in _tf_answer(zoo, "regress_x")["outputs"]],
                      [["tf2_examples", "classify_x", 2], ["tf2_examples", "regress_x", 2]]]


def test_get_model_metadata_of_a_tf2_export(server: ServerProcess, client: Client,
                                            zoo: Zoo) -> None:
    # The SignatureDefs of a tf.saved_model.save export (StatefulPartitionedCall outputs),
    # method names included, as saved_model.pb holds them.
    result = client.run(METADATA_AND_SAVED_MODEL, target=server.grpc_target, name="tf2_examples",
                        path=zoo.path("tf2_classify_regress") + "/saved_model.pb")
    assert result["equal"], result
    assert result["spec"] == ["tf2_examples", 2]
    assert {k: v for k, v in result["methods"].items() if not k.startswith("__")} == {
        "serving_default": "tensorflow/serving/predict",
        "classify_x": "tensorflow/serving/classify",
        "regress_x": "tensorflow/serving/regress",
        "regress_as_saved": "tensorflow/serving/predict"}


def test_method_name_check_on_a_tf2_export(zoo: Zoo, tmp_path: Path, client: Client) -> None:
    """--enable_signature_method_name_check: a TF2 signature with TF Serving's method name
    regresses; one with the predict name tf.saved_model.save writes is refused, as TF Serving
    refuses it (INVALID_ARGUMENT, in its words: gRPC said 'regress signature' before)."""
    version_dir(tmp_path / "m", 1, zoo.path("tf2_classify_regress"))
    server = ServerProcess(f"--model_base_path={tmp_path / 'm'}", "--model_name=tf2_examples",
                           "--enable_signature_method_name_check")
    try:
        code = TF2_EXAMPLES.format(kind="regression_pb2.RegressionRequest", method="Regress",
                                   examples=_examples(1.0)) + "result = spec"
        assert client.run(code, target=server.grpc_target, signature="regress_x") == [
            "tf2_examples", "regress_x", 1]
        with pytest.raises(RpcError) as error:
            client.run(code, target=server.grpc_target, signature="regress_as_saved")
        assert error.value.code == "INVALID_ARGUMENT"
        assert error.value.details == ("Expected regression signature method_name to be "
                                       "tensorflow/serving/regress. Was: "
                                       "tensorflow/serving/predict")
    finally:
        assert server.stop() == 0


BAD_PREDICT = """
request = predict_pb2.PredictRequest()
request.model_spec.name = name
if version:
    request.model_spec.version.value = version
request.model_spec.signature_name = signature
request.inputs[key].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
request.output_filter.extend(output_filter)
stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
stub.Predict(request, 5.0)
"""


@pytest.mark.parametrize(("case", "code", "details"), [
    ({"name": "nope"}, "NOT_FOUND", "Servable not found for request: Latest(nope)"),
    ({"version": 7}, "NOT_FOUND", "Servable not found for request: Specific(default, 7)"),
    ({"signature": "nope"}, "FAILED_PRECONDITION", 'Serving signature key "nope" not found.'),
    ({"key": "z"}, "INVALID_ARGUMENT", "input tensor alias not found in signature: z."),
    ({"output_filter": ["q"]}, "INVALID_ARGUMENT",
     "output tensor alias not found in signature: q Outputs expected to be in the set {y}."),
    ({"output_filter": ["y", "y"]}, "INVALID_ARGUMENT", "duplicate output tensor alias: y"),
    ({"name": ""}, "INVALID_ARGUMENT", "Missing ModelSpec"),
])
def test_errors_carry_tf_servings_codes(server: ServerProcess, client: Client,
                                        case: dict[str, object], code: str,
                                        details: str) -> None:
    scope = {"name": "default", "version": 0, "signature": "", "key": "x", "output_filter": [],
             **case}
    with pytest.raises(RpcError) as error:
        client.run(BAD_PREDICT, target=server.grpc_target, **scope)
    assert error.value.code == code
    assert details in error.value.details


RAW_PREDICT = """
call = grpc.insecure_channel(target).unary_unary('/tensorflow.serving.PredictionService/Predict')
call(request.encode('latin-1'), timeout=10.0)
"""


def _raw_predict(dtype: int, size: int, values: bytes) -> str:
    """PredictRequest{model_spec {name: "default"}, inputs {"x": TensorProto{dtype,
    tensor_shape {dim {size}}, values}}} as bytes, carried as latin-1 text to the client."""
    tensor = (varint(1 << 3) + varint(dtype) + field(2, field(2, varint(1 << 3) + varint(size)))
              + values)
    data = field(1, field(1, b"default")) + field(2, field(1, b"x") + field(2, tensor))
    return data.decode("latin-1")


@pytest.mark.parametrize(("dtype", "size", "values", "code"), [
    (1, 2**62, b"", "INVALID_ARGUMENT"),  # DT_FLOAT: 2**64 bytes wrapped to 0
    (7, 2**61 - 1, field(8, b"s"), "RESOURCE_EXHAUSTED"),  # DT_STRING: pointers + string wrap
    (3, 1, field(7, b"\x80" * 10 + b"\x01"), "INVALID_ARGUMENT"),  # int_val: 11-byte varint
])
def test_hostile_tensors_are_the_clients_error(server: ServerProcess, client: Client, dtype: int,
                                               size: int, values: bytes, code: str) -> None:
    # Each once passed the decoder's checks and failed later: UNKNOWN with a traceback.
    with pytest.raises(RpcError) as error:
        client.run(RAW_PREDICT, target=server.grpc_target,
                   request=_raw_predict(dtype, size, values))
    assert error.value.code == code, error.value.details
    assert "input 'x'" in error.value.details


def test_metadata_needs_the_signature_def_field(server: ServerProcess, client: Client) -> None:
    with pytest.raises(RpcError) as error:
        client.run("""
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = 'default'
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
        stub.GetModelMetadata(request, 5.0)
        """, target=server.grpc_target)
    assert error.value.code == "INVALID_ARGUMENT"
    assert "at least one metadata_field" in error.value.details


def test_tensor_content_replies(zoo: Zoo, tmp_path: Path, client: Client) -> None:
    """--enable_serialization_as_tensor_content: the reply's tensors in tensor_content."""
    version_dir(tmp_path / "m", 1, zoo.path("add_one"))
    server = ServerProcess(f"--model_base_path={tmp_path / 'm'}",
                           "--enable_serialization_as_tensor_content")
    try:
        result = client.run("""
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "default"
        request.inputs['x'].CopyFrom(tf.make_tensor_proto(np.ones((1, 2), np.float32)))
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
        y = stub.Predict(request, 5.0).outputs['y']
        result = [len(y.tensor_content), len(y.float_val), tf.make_ndarray(y).tolist()]
        """, target=server.grpc_target)
        assert result == [8, 0, [[2.0, 2.0]]]
    finally:
        assert server.stop() == 0


def test_grpc_requests_in_tf_servings_metrics(server: ServerProcess, client: Client) -> None:
    client.run(PREDICT, target=server.grpc_target, name="default", specify_output=True)
    text = server.get("/metrics").text
    assert re.search(r':tensorflow:serving:request_latency_count\{model_name="default",'
                     r'API="Predict",entrypoint="GRPC"\} [1-9]', text), text
    assert re.search(r':tensorflow:serving:request_count\{model_name="default",'
                     r'status="OK"\} [1-9]', text)


def test_a_bug_is_internal_not_unknown() -> None:
    """A handler's unexpected exception (here: the model table itself failing) is logged and
    answered INTERNAL, without a traceback as UNKNOWN."""
    import grpc

    from smrt.serving.grpc import server as grpc_server

    def broken() -> dict[str, object]:
        raise RuntimeError("the model table broke")

    api = grpc_server.GrpcApi(broken, tensor_content=False,  # type: ignore[arg-type]
                              max_request_bytes=1 << 20)
    server, (port,) = grpc_server.start(api, ["127.0.0.1:0"], max_threads=2)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/tensorflow.serving.ModelService/GetModelStatus")
            with pytest.raises(grpc.RpcError) as error:
                call(field(1, field(1, b"m")), timeout=10.0)  # model_spec {name: "m"}
        assert error.value.code() == grpc.StatusCode.INTERNAL
        assert error.value.details() == "internal error: RuntimeError"
    finally:
        server.stop(None)


def test_reload_waits_at_most_the_clients_deadline() -> None:
    """HandleReloadConfigRequest applies the config within the client's remaining deadline
    (it waited up to an hour, whatever the client's deadline); no deadline: no limit."""
    import grpc

    from smrt.serving.grpc import server as grpc_server

    timeouts: list[float | None] = []
    api = grpc_server.GrpcApi(dict, tensor_content=False, max_request_bytes=1 << 20,
                              reload_config=lambda config, timeout: timeouts.append(timeout))
    server, (port,) = grpc_server.start(api, ["127.0.0.1:0"], max_threads=2)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                "/tensorflow.serving.ModelService/HandleReloadConfigRequest")
            request = field(1, field(1, b""))  # config {model_config_list {}}
            call(request, timeout=7.0)
            call(request)
    finally:
        server.stop(None)
    first, second = timeouts
    assert first is not None
    assert 0 < first <= 7.0 + 0.05  # measured from receipt; grpc-timeout rounds up
    assert second is None
