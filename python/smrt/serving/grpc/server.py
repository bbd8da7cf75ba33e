"""TF Serving's gRPC API (``tensorflow.serving.PredictionService`` and ``ModelService``) on
grpcio, over the same models, versions, batching and metrics as the REST API.

Messages are raw bytes both ways: grpcio's generic handlers with no (de)serializers hand each
request's bytes to smrt's own wire layer (``smrt._core.decode_*`` / ``encode_*``, in C++),
which decodes tensors straight into aligned NumPy arrays and encodes outputs straight into the
reply's bytes. No protobuf runtime is involved, for two reasons: the process holds
libtensorflow, which carries its own C++ protobuf (a second one in the process clashes, and
TensorFlow's Python protos would import TensorFlow), and a generated Python message would copy
every tensor into Python objects on the way in and out, where the wire layer copies a
``tensor_content`` once, into the array TensorFlow reads in place.

Handlers run in grpcio's thread pool (``--grpc_max_threads``); the session run releases the GIL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np

from smrt import _core
from smrt import errors as smrt_errors
from smrt.model import Signature
from smrt.serving.core import inference as api
from smrt.serving.core.config import SSLConfig
from smrt.serving.core.config_wire import message_fields
from smrt.serving.core.errors import CODE_NAMES, status_code
from smrt.serving.core.versions import ServedModel, ServedVersion
from smrt.serving.core.wire import bytes_field, varint_field

from . import messages

log = logging.getLogger("smrt.serve")

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"

_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
_CODE_NUMBERS = {name: number for number, name in CODE_NAMES.items()}

Models = Callable[[], dict[str, ServedModel]]


class _Abort(Exception):
    """Ends an RPC with a status code (TF Serving's) and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class GrpcApi:
    """The RPCs, on raw request bytes; :func:`start` serves them."""

    def __init__(self, models: Models, tensor_content: bool, max_request_bytes: int,
                 check_method_name: bool = False,
                 record: Callable[[str, str, str, float], None] | None = None,
                 reload_config: Callable[[bytes, float | None], None] | None = None) -> None:
        """``models`` gives the served models by name (the REST server's, live);
        ``tensor_content``: write replies' tensors as ``tensor_content``
        (``--enable_serialization_as_tensor_content``); ``record(model, api, status,
        seconds)`` hears of each request (TF Serving's metrics); ``reload_config(config,
        timeout)`` applies a serialized ModelServerConfig (HandleReloadConfigRequest) within
        the client's deadline (None: none)."""
        self._models = models
        self._tensor_content = tensor_content
        self._max_decoded = 2 * max_request_bytes  # typed fields may expand a little
        self._check_method_name = check_method_name
        self._record = record
        self._reload_config = reload_config

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """grpcio's generic handlers: request and reply stay bytes (no serializers)."""

        def unary(method: Callable[[bytes, grpc.ServicerContext], bytes]) -> Any:
            return grpc.unary_unary_rpc_method_handler(self._wrap(method))

        return [
            grpc.method_handlers_generic_handler(PREDICTION_SERVICE, {
                "Predict": unary(self.predict),
                "Classify": unary(self.classify),
                "Regress": unary(self.regress),
                "MultiInference": unary(self.multi_inference),
                "GetModelMetadata": unary(self.get_model_metadata),
            }),
            grpc.method_handlers_generic_handler(MODEL_SERVICE, {
                "GetModelStatus": unary(self.get_model_status),
                "HandleReloadConfigRequest": unary(self.handle_reload_config_request),
            }),
        ]

    def _wrap(self, method: Callable[[bytes, grpc.ServicerContext], bytes],
              ) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                return method(request, context)
            except _Abort as e:
                context.abort(_GRPC_CODES[e.code], str(e))
            except smrt_errors.Error as e:
                context.abort(_GRPC_CODES.get(status_code(e), grpc.StatusCode.UNKNOWN), str(e))
            except MemoryError:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "out of memory")
            except Exception as e:
                if context.code() is not None:  # the method aborted the RPC itself
                    raise
                # A bug of ours: logged here, and INTERNAL (never a traceback as UNKNOWN).
                log.exception("gRPC %s failed", getattr(method, "__name__", "call"))
                context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(e).__name__}")
            raise AssertionError("unreachable")  # context.abort raises

        return handle

    # --- PredictionService ------------------------------------------------------------------

    def predict(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        spec, inputs, output_filter = _core.decode_predict_request(request, self._max_decoded)
        with self._served(spec, "Predict") as (name, served, measure):
            signature = self._signature(served, spec[3], predict=True)
            _check_inputs(signature, inputs)
            fetch = api.output_fetch(signature, output_filter)
            outputs = self._run(served, signature, inputs, context, batch=True, fetch=fetch)
            measure.ok()
            return _core.encode_predict_response(outputs, name, served.version, signature.key,
                                                 self._tensor_content)

    def classify(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        return self._examples(request, context, "classify")

    def regress(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        return self._examples(request, context, "regress")

    def _examples(self, request: bytes, context: grpc.ServicerContext, api_name: str) -> bytes:
        tasks, examples = _core.decode_examples_request(request, False, self._max_decoded)
        spec = tasks[0][0]
        with self._served(spec, api_name.capitalize()) as (name, served, measure):
            signature, result = self._examples_task(served, spec[3], api_name, examples, context)
            measure.ok()
            # ClassificationResponse / RegressionResponse{result = 1, model_spec = 2}.
            return (bytes_field(1, result)
                    + bytes_field(2, messages.model_spec(name, served.version, signature.key)))

    def multi_inference(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        tasks, examples = _core.decode_examples_request(request, True, self._max_decoded)
        if not tasks:
            raise _Abort(3, "MultiInferenceRequest must have at least one task")
        names = {spec[0] for spec, _ in tasks}
        if len(names) != 1:
            raise _Abort(3, "All ModelSpecs in a MultiInferenceRequest must access the same "
                            "model name")
        signatures = [spec[3] or api.DEFAULT_SIGNATURE for spec, _ in tasks]
        if len(set(signatures)) != len(signatures):
            raise _Abort(3, "Duplicate evaluation of signature: "
                            f"{next(s for s in signatures if signatures.count(s) > 1)}")
        with self._served(tasks[0][0], "MultiInference") as (name, served, measure):
            results = b""
            for spec, method in tasks:
                kind = {api.CLASSIFY_METHOD: "classify", api.REGRESS_METHOD: "regress"}.get(method)
                if kind is None:
                    raise _Abort(12, f"Unsupported signature method_name: {method}")
                signature, result = self._examples_task(served, spec[3], kind, examples, context)
                # InferenceResult{model_spec = 1, classification_result = 2 |
                # regression_result = 3}.
                spec_bytes = messages.model_spec(name, served.version, signature.key)
                results += bytes_field(1, bytes_field(1, spec_bytes)
                                       + bytes_field(2 if kind == "classify" else 3, result))
            measure.ok()
            return results  # MultiInferenceResponse{results = 1}

    def _examples_task(self, served: ServedVersion, signature_name: str, api_name: str,
                       examples: np.ndarray, context: grpc.ServicerContext,
                       ) -> tuple[Signature, bytes]:
        signature = self._signature(served, signature_name, predict=False)
        if self._check_method_name:
            api.check_examples_method(signature, api_name)
        key = api.check_examples_signature(signature, api_name)
        outputs = self._run(served, signature, {key: examples}, context, batch=False)
        if api_name == "classify":
            return signature, messages.classification_result(outputs, len(examples))
        values = outputs["outputs"]
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.shape != (len(examples),):
            raise _Abort(3, f"Expected output Tensor shape to be either [{len(examples)}] or "
                            f"[{len(examples)}, 1] but got {list(outputs['outputs'].shape)}")
        return signature, messages.regression_result(values)

    def get_model_metadata(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        spec, fields = _core.decode_spec_request(request)
        if not fields:
            raise _Abort(3, "GetModelMetadataRequest must specify at least one metadata_field")
        for field_name in fields:
            if field_name != "signature_def":
                raise _Abort(3, f"Metadata field {field_name} is not supported")
        model = self._model(spec)
        with model.acquire(*_version(spec)) as hold:
            return messages.metadata_response(model.name, hold.served.version,
                                              hold.served.model.meta_graph.signatures)

    # --- ModelService -----------------------------------------------------------------------

    def get_model_status(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        spec, _ = _core.decode_spec_request(request)
        model = self._model(spec)
        statuses = model.status(*_version(spec))
        return messages.status_response([
            (s.version, s.state, _CODE_NUMBERS.get(s.error_code, 2), s.error_message)
            for s in statuses])

    def handle_reload_config_request(self, request: bytes,
                                     context: grpc.ServicerContext) -> bytes:
        """ReloadConfigRequest{config = 1 (ModelServerConfig)} -> ReloadConfigResponse{status
        = 1 {error_code = 1, error_message = 2}}: the server then serves exactly the config's
        models. A bad config changes nothing and is the RPC's error (as TF Serving)."""
        if self._reload_config is None:
            raise _Abort(12, "HandleReloadConfigRequest is not served here")
        config = b"".join(_config_field(request))
        remaining = context.time_remaining()  # no deadline: grpcio says a huge number
        self._reload_config(config, None if remaining is None or remaining > 1e8 else remaining)
        return bytes_field(1, b"")  # status OK: no fields set

    # --- shared -----------------------------------------------------------------------------

    def _model(self, spec: _core.ModelSpecTuple) -> ServedModel:
        if not spec[0]:
            raise _Abort(3, "Missing ModelSpec")
        model = self._models().get(spec[0])
        if model is None:
            raise smrt_errors.NotFoundError(f"Servable not found for request: Latest({spec[0]})")
        return model

    def _served(self, spec: _core.ModelSpecTuple, api_name: str) -> _Request:
        return _Request(self, spec, api_name)

    def _signature(self, served: ServedVersion, name: str, predict: bool) -> Signature:
        name = name or api.DEFAULT_SIGNATURE
        signature = served.model.signatures.get(name)
        if signature is None:
            if predict:  # TF Serving's codes and words (predict_util.cc, util.cc)
                raise _Abort(9, f'Serving signature key "{name}" not found.')
            raise _Abort(3, f"No signature was found with the name: {name}")
        if predict and self._check_method_name and signature.method_name not in (
                api.PREDICT_METHOD, api.CLASSIFY_METHOD, api.REGRESS_METHOD):
            raise _Abort(13, f"Expected prediction signature method_name to be one of "
                             f"{{{api.PREDICT_METHOD}, {api.CLASSIFY_METHOD}, "
                             f"{api.REGRESS_METHOD}}}. Was: {signature.method_name}")
        return signature

    @staticmethod
    def _run(served: ServedVersion, signature: Signature, inputs: dict[str, np.ndarray],
             context: grpc.ServicerContext, batch: bool, fetch: list[str] | None = None,
             ) -> dict[str, np.ndarray]:
        """Runs the signature, computing only the outputs in ``fetch`` (None: all)."""
        remaining = context.time_remaining()  # the client's deadline reaches TensorFlow
        timeout = None if remaining is None or remaining > 1e8 else max(remaining, 1e-3)
        batcher = served.batchers.get(signature.key) if batch else None
        if batcher is not None:
            deadline = None if timeout is None else time.monotonic() + timeout
            return batcher.submit(inputs, deadline, fetch).result()
        return signature.run(inputs, timeout=timeout, fetch=fetch)


class _Request:
    """One request's model, version hold and metrics: ``with api._served(spec, "Predict") as
    (name, served, measure)``; the hold is given back on exit."""

    def __init__(self, owner: GrpcApi, spec: _core.ModelSpecTuple, api_name: str) -> None:
        self._owner, self._spec, self._api = owner, spec, api_name
        self._start = time.perf_counter()
        self._status = "UNKNOWN"

    def __enter__(self) -> tuple[str, ServedVersion, _Request]:
        model = self._owner._model(self._spec)
        self._name = model.name
        self._hold = model.acquire(*_version(self._spec))
        return model.name, self._hold.served, self

    def ok(self) -> None:
        self._status = "OK"

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: object) -> None:
        self._hold.release()
        if error is not None:
            code = error.code if isinstance(error, _Abort) else status_code(error)
            self._status = CODE_NAMES.get(code, "UNKNOWN")
        if self._owner._record is not None:
            self._owner._record(self._name, self._api, self._status,
                                time.perf_counter() - self._start)


def _version(spec: _core.ModelSpecTuple) -> tuple[int | None, str | None]:
    """The (version, label) a ModelSpec asks for."""
    _, version, label, _ = spec  # one oneof: the decoder keeps only the last member set
    return version, (label or None)


def _check_inputs(signature: Signature, inputs: dict[str, np.ndarray]) -> None:
    """TF Serving's checks and words (predict_util.cc) before the run."""
    for key in inputs:
        if key not in signature.inputs:
            raise _Abort(3, f"input tensor alias not found in signature: {key}. Inputs "
                            f"expected to be in the set {api.key_set(signature.inputs)}.")
    missing = sorted(signature.inputs.keys() - inputs.keys())
    if missing:
        raise _Abort(3, f"input size does not match signature: {len(inputs)}!="
                        f"{len(signature.inputs)} len({api.key_set(inputs)}) != "
                        f"len({api.key_set(signature.inputs)}). Sent extra: {{}}. Missing but "
                        f"required: {api.key_set(missing)}.")


def _config_field(request: bytes) -> list[bytes]:
    """ReloadConfigRequest's config (field 1) occurrences, merged by concatenation."""
    return message_fields(request, "ReloadConfigRequest").payloads(1)


HEALTH_SERVICE = "grpc.health.v1.Health"


def health_handler() -> grpc.GenericRpcHandler:
    """grpc.health.v1.Health/Check (``--enable_grpc_healthcheck_service``): SERVING for the
    server ("") and its two services, NOT_FOUND for any other, as gRPC's health protocol says.
    HealthCheckRequest{service = 1}, HealthCheckResponse{status = 1 (SERVING = 1)}."""
    known = {"", PREDICTION_SERVICE, MODEL_SERVICE}

    def check(request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            service = _health_service(request)
        except (smrt_errors.Error, UnicodeDecodeError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad HealthCheckRequest: {e}")
        if service not in known:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        return varint_field(1, 1)

    return grpc.method_handlers_generic_handler(
        HEALTH_SERVICE, {"Check": grpc.unary_unary_rpc_method_handler(check)})


def _health_service(request: bytes) -> str:
    """HealthCheckRequest's service (field 1, a string), the last occurrence winning; one
    with another wire type is an unknown field, skipped."""
    values = message_fields(request, "HealthCheckRequest").payloads(1)
    return values[-1].decode("utf-8") if values else ""


def credentials(ssl: SSLConfig | None) -> grpc.ServerCredentials | None:
    """TLS credentials from TF Serving's SSLConfig (None: plaintext): the server's key and
    certificate, and with client_verify, client certificates signed by custom_ca required."""
    if ssl is None:
        return None
    return grpc.ssl_server_credentials(
        [(ssl.server_key.encode(), ssl.server_cert.encode())],
        root_certificates=ssl.custom_ca.encode() if ssl.custom_ca else None,
        require_client_auth=ssl.client_verify)


def start(api_impl: GrpcApi, addresses: list[str], max_threads: int,
          options: list[tuple[str, Any]] | None = None,
          credentials: grpc.ServerCredentials | None = None,
          health: bool = False) -> tuple[grpc.Server, list[int]]:
    """Starts a grpcio server for ``api_impl`` on ``addresses`` (``host:port``, port 0 for a
    free one, or ``unix:/path``); returns it and the ports bound (0 for Unix sockets)."""
    handlers = api_impl.handlers() + ([health_handler()] if health else [])
    server = grpc.server(ThreadPoolExecutor(max_threads, thread_name_prefix="smrt-grpc"),
                         handlers=handlers, options=options or [])
    ports = []
    for address in addresses:
        port = (server.add_secure_port(address, credentials) if credentials is not None
                else server.add_insecure_port(address))
        if port == 0 and not address.startswith("unix:"):
            raise OSError(f"gRPC could not listen on {address}")
        ports.append(port)
    server.start()
    return server, ports
