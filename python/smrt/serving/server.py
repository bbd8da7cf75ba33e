"""The HTTP server: TF Serving's REST API on aiohttp.

The event loop only routes, reads bodies and writes replies. Parsing a request, running the
model and encoding the reply happen in a thread pool (the session run releases the GIL, so
requests overlap), or, with batching on, the run happens in the signature's batch thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from smrt import errors as smrt_errors
from smrt.errors import NotFoundError, UnavailableError
from smrt.model import Signature

from . import api, bodies, tensor_json
from .admission import BoundedPool, ByteBudget, Reservation
from .batching import Batcher, can_batch
from .config import (
    BATCHING_PARAMS_FILE,
    ModelConfig,
    ServerOptions,
    read_batching_parameters_file,
)
from .errors import (
    CODE_NAMES,
    BadRequestError,
    MethodNotAllowedError,
    OverloadedError,
    RequestTimeoutError,
    RequestTooLargeError,
    client_input,
    http_status,
    safe_text,
    status_code,
)
from .metrics import Metrics
from .tf_metrics import API_NAMES, TFServingMetrics
from .versions import Hold, Loader, ServedModel, ServedVersion, default_loader
from .warmup import warm_up

log = logging.getLogger("smrt.serve")

ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf'

CORS_HEADERS = {  # TF Serving's AddCORSHeaders (http_rest_api_util.cc)
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}

# TF Serving's URL grammar (http_rest_api_handler.cc), case-insensitive.
_PREDICTION_URL = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)",
    re.IGNORECASE | re.ASCII)
_MODEL_URL = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(/metadata)?",
    re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class Route:
    """What a /v1/models URL asks for."""

    model: str
    version: int | None
    label: str | None
    api: str  # predict, classify, regress, metadata or status


def parse_route(method: str, path: str) -> Route:
    """The model, version and API of a request; NotFoundError/MethodNotAllowedError if none."""
    match = _PREDICTION_URL.fullmatch(path)
    if match:
        if method != "POST":
            raise MethodNotAllowedError(f"{match.group(4)} takes POST, not {method}")
        name, version, label, verb = match.groups()
        return Route(name, _version(version), label, verb.lower())
    match = _MODEL_URL.fullmatch(path)
    if match:
        if method != "GET":
            raise MethodNotAllowedError(f"{path} takes GET, not {method}")
        name, version, label, metadata = match.groups()
        return Route(name, _version(version), label, "metadata" if metadata else "status")
    raise NotFoundError(f"Malformed request: {method} {path}")


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    if len(text) > 18:
        raise NotFoundError(f"no version {text}")
    return int(text)


class ModelServer:
    """Serves ``models`` over TF Serving's REST API. Use :meth:`start` and :meth:`stop` from
    a running event loop, or :func:`run_until_signalled` to run one until SIGTERM/SIGINT."""

    def __init__(self, models: list[ModelConfig], options: ServerOptions | None = None,
                 loader: Loader | None = None,
                 read_config: Callable[[], list[ModelConfig]] | None = None) -> None:
        """``read_config`` re-reads the model config (``--model_config_file``) every
        ``options.config_poll_seconds``, if both are set: models added there are served,
        models dropped are retired, and a model's new version policy or labels apply."""
        self.options = options or ServerOptions()
        self.metrics = Metrics()
        self.tf_metrics = TFServingMetrics()
        """TF Serving's metric names (served with smrt's own on the metrics paths)."""
        self._loader = loader or default_loader()
        self._read_config = read_config
        self.models = {c.name: self._served_model(c) for c in models}
        self._configs_read = {c.name: c for c in models}
        """The model configs as last read (applied, but for labels refused)."""
        self._pending_labels: dict[str, ModelConfig] = {}
        """Configs read whose labels name versions not available yet, by model name."""
        self._pool = BoundedPool(self.options.num_threads, self.options.max_queued_requests,
                                 "smrt-serve")
        self._parsing = ByteBudget(self.options.max_parsing_bytes)
        self._raw_bodies = bodies.server_options()
        """aiohttp hands compressed bodies over as they are: the server inflates them, bounded."""
        self._poller = ThreadPoolExecutor(1, thread_name_prefix="smrt-poll")
        self._poll_task: asyncio.Task[None] | None = None
        self._config_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._grpc: Any = None  # grpc.Server, when the gRPC API is on
        self.grpc_ports: list[int] = []
        """The gRPC ports bound (TCP, then 0 for the Unix socket), once started."""
        self._stopping = False

    # --- lifecycle ---------------------------------------------------------------------------

    def load_initial_versions(self) -> None:
        """Loads what each model's policy wants; raises if a model has versions on disk but
        none of them loaded (TF Serving would not start either)."""
        for model in self.models.values():
            model.poll(block=True)  # as TF Serving, start-up waits out a model's retries
            failed = [s for s in model.statuses() if s.state == "END" and s.error_message]
            if not model.serving_versions and failed:
                raise smrt_errors.Error(
                    f"model {model.name}: version {failed[0].version} failed to load: "
                    f"{failed[0].error_message}")
            if not self.options.allow_unavailable_labels:
                for label, version in sorted(model.config.labels.items()):
                    if version not in model.serving_versions:
                        raise smrt_errors.Error(  # TF Serving's words (server_core.cc)
                            f"Request to assign label to version {version} of model "
                            f"{model.name}, which is not currently available for inference "
                            f"(label {label!r}; --allow_version_labels_for_unavailable_models "
                            "allows it)")
            if not model.serving_versions:
                base = model.config.base_path
                if os.path.isfile(os.path.join(base, "saved_model.pb")):
                    # A common slip: the version directory given instead of its parent.
                    parent = os.path.dirname(os.path.normpath(base))
                    raise smrt_errors.Error(
                        f"model {model.name}: the base path {base} is itself a SavedModel; "
                        f"the base path holds numbered version directories (here: {parent})")
                log.warning("model %s: no version under %s yet; waiting for one", model.name,
                            base)

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.options.max_request_bytes)
        app.router.add_route("*", "/metrics", self._metrics)
        if self.options.prometheus_path not in (None, "", "/metrics"):  # TF Serving's path,
            # only when its monitoring config says so (smrt's own /metrics is always there)
            app.router.add_route("*", self.options.prometheus_path, self._metrics)
        app.router.add_route("*", "/{tail:.*}", self._models)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 8501,
                    access_log: logging.Logger | None = None) -> int:
        """Loads the models, listens, starts polling; returns the port (useful with 0)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._poller, self.load_initial_versions)
        self._runner = web.AppRunner(
            self.application(), handle_signals=False, access_log=access_log,
            access_log_format=ACCESS_LOG_FORMAT,
            shutdown_timeout=self.options.shutdown_grace_seconds, **self._raw_bodies)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        if self.options.grpc is not None:
            self._start_grpc(host)
        self._poll_task = asyncio.create_task(self._poll_forever())
        if self._read_config is not None and self.options.config_poll_seconds > 0:
            self._config_task = asyncio.create_task(self._reload_config_forever())
        return int(self._runner.addresses[0][1])

    def _start_grpc(self, host: str) -> None:
        from .grpc import server as grpc_server

        options = self.options.grpc
        assert options is not None
        grpc_api = grpc_server.GrpcApi(
            lambda: self.models, options.tensor_content, self.options.max_request_bytes,
            self.options.check_method_name, self._record_grpc)
        bracketed = f"[{host}]" if ":" in host else host
        addresses = [f"{bracketed}:{options.port}"]
        if options.socket_path:
            addresses.append(f"unix:{options.socket_path}")
        channel_options = [("grpc.max_receive_message_length", self.options.max_request_bytes),
                           ("grpc.max_send_message_length", -1),
                           *options.channel_arguments]
        self._grpc, self.grpc_ports = grpc_server.start(
            grpc_api, addresses, options.max_threads, channel_options,
            grpc_server.credentials(options.ssl), health=options.health_check)

    def _record_grpc(self, model: str, api_name: str, status: str, seconds: float) -> None:
        self.tf_metrics.request(model, api_name, "GRPC", status, seconds)

    def cancel_load_retries(self) -> None:
        """Ends waits to retry failed loads (thread-safe): stopping should not wait for them."""
        for model in self.models.values():
            model.cancel_retries()

    async def stop(self) -> None:
        """Stops listening, lets requests in flight finish, then unloads every model."""
        self._stopping = True
        self.cancel_load_retries()
        for task in (self._poll_task, self._config_task):
            if task is not None:
                task.cancel()
        grpc_stopped = None
        if self._grpc is not None:  # refuses new RPCs now, lets those in flight finish
            grpc_stopped = self._grpc.stop(self.options.shutdown_grace_seconds)
        if self._runner is not None:
            await self._runner.cleanup()  # waits up to shutdown_grace_seconds for handlers
        if grpc_stopped is not None:
            await asyncio.get_running_loop().run_in_executor(None, grpc_stopped.wait)
        loop = asyncio.get_running_loop()
        for model in list(self.models.values()):
            await loop.run_in_executor(self._poller, model.close)
        self._pool.shutdown()
        self._poller.shutdown(wait=True)

    async def _poll_forever(self) -> None:
        """Looks for new versions every ``poll_wait_seconds`` (if > 0), and in between tries
        failed loads again as they fall due, each model's on its own schedule."""
        loop = asyncio.get_running_loop()
        period = self.options.poll_wait_seconds
        next_poll = time.monotonic() + period if period > 0 else float("inf")
        while not self._stopping:
            due = [at for model in self.models.values()
                   if (at := model.next_retry_at()) is not None]
            # At least once a second: a config reload may add models with retries.
            await asyncio.sleep(max(0.0, min(1.0, min([next_poll, *due]) - time.monotonic())))
            now = time.monotonic()
            full = now >= next_poll
            if full:
                next_poll = now + period
            for model in list(self.models.values()):  # a config reload may change the dict
                if self.models.get(model.name) is not model:
                    continue  # dropped or replaced meanwhile
                retry_at = model.next_retry_at()
                if not full and (retry_at is None or retry_at > now):
                    continue
                try:
                    await loop.run_in_executor(self._poller, model.poll)
                except Exception:  # a bug here must not stop polling for good
                    log.exception("model %s: polling failed", model.name)

    def _served_model(self, config: ModelConfig) -> ServedModel:
        return ServedModel(config, self._loader, on_load=self._prepare,
                           on_attempt=self.tf_metrics.load,
                           max_load_retries=self.options.max_load_retries,
                           load_retry_interval=self.options.load_retry_interval_seconds)

    async def _reload_config_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await asyncio.sleep(self.options.config_poll_seconds)
            try:
                await self._reload_config(loop)
            except Exception as e:  # a bad file keeps the models as they are, as TF Serving
                log.error("model config not reloaded: %s", e,
                          exc_info=not isinstance(e, smrt_errors.Error))

    async def _reload_config(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reads the model config again and applies what changed. The dict of models is
        changed on the event loop only; loads and unloads run in the polling thread."""
        assert self._read_config is not None
        configs = {c.name: c for c in await loop.run_in_executor(self._poller,
                                                                  self._read_config)}
        for name in sorted(self.models.keys() - configs.keys()):
            dropped = self.models.pop(name)
            self._configs_read.pop(name, None)
            self._pending_labels.pop(name, None)
            log.info("model %s: dropped from the model config; retiring it", name)
            await loop.run_in_executor(self._poller, dropped.close)
        for name, config in configs.items():
            model = self.models.get(name)
            if model is not None and self._configs_read.get(name) == config:
                self._assign_pending_labels(model)
                continue  # unchanged since last read
            self._configs_read[name] = config
            if model is None or (model.config.base_path, model.config.tags) != (
                    config.base_path, config.tags):
                log.info("model %s: %s in the model config", name,
                         "added" if model is None else "new base path")
                fresh = self._served_model(config)
                try:
                    await loop.run_in_executor(self._poller, fresh.poll)
                except BaseException:  # cancelled (stopping) or failed: it never serves
                    self._poller.submit(fresh.close)  # after its poll, in the same thread
                    raise
                # Swapped once the new one has loaded what it could, then the old one retires.
                old, self.models[name], model = model, fresh, fresh
                if old is not None:
                    await loop.run_in_executor(self._poller, old.close)
            else:
                log.info("model %s: new version policy or labels in the model config", name)
                model.reconfigure(config)
                await loop.run_in_executor(self._poller, model.poll)
            if not self.options.allow_unavailable_labels:
                serving = model.serving_versions
                bad = {k: v for k, v in model.config.labels.items() if v not in serving}
                for label, version in sorted(bad.items()):
                    log.error("model %s: label %r not assigned: Request to assign label to "
                              "version %d of model %s, which is not currently available for "
                              "inference", name, label, version, name)
                if bad:
                    model.reconfigure(replace(config, labels={
                        k: v for k, v in config.labels.items() if k not in bad}))
                    self._pending_labels[name] = config
                else:
                    self._pending_labels.pop(name, None)

    def _assign_pending_labels(self, model: ServedModel) -> None:
        """Assigns the labels a re-read refused (their versions were not available) whose
        versions are available now; the rest wait for the next re-read."""
        config = self._pending_labels.get(model.name)
        if config is None:
            return
        serving = model.serving_versions
        ready = {k: v for k, v in config.labels.items() if v in serving}
        if ready != model.config.labels:
            for label in sorted(ready.keys() - model.config.labels.keys()):
                log.info("model %s: label %r assigned to version %d, now available",
                         model.name, label, ready[label])
            model.reconfigure(replace(model.config, labels=ready))
        if len(ready) == len(config.labels):
            del self._pending_labels[model.name]

    def _prepare(self, served: ServedVersion) -> None:
        """Called once per loaded version, before it serves: replays its warmup requests,
        then sets up its batchers. An error fails the load."""
        if self.options.warmup:
            start = time.perf_counter()
            status = "OK"
            try:
                warm_up(served, self.options.warmup_iterations)
            except BaseException as e:
                status = CODE_NAMES.get(status_code(e), "UNKNOWN")
                raise
            finally:
                self.tf_metrics.warmup(served.model.path, status, time.perf_counter() - start)
        batching = self.options.batching
        if batching is not None and self.options.per_model_batching:
            # As TF Serving's GetPerModelBatchingParams: the version's own file, or no
            # batching for a version without one.
            own = os.path.join(served.model.path, BATCHING_PARAMS_FILE)
            batching = read_batching_parameters_file(own) if os.path.isfile(own) else None
        if batching is None:
            return
        for key, signature in served.model.signatures.items():
            if can_batch(signature):
                served.batchers[key] = Batcher(signature, batching,
                                               f"{served.model.path}:{key}")

    # --- handlers ----------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            return _error_response(MethodNotAllowedError("GET /metrics only"))
        serving = {name: model.serving_versions for name, model in self.models.items()}
        batches = {
            (name, served.version, key): (batcher.batches, batcher.batched_requests)
            for name, model in self.models.items() for served in model.serving()
            for key, batcher in served.batchers.items()
        }
        load = (self._parsing.used, self._pool.pending)
        text = self.metrics.render(serving, batches, load) + "".join(
            line + "\n" for line in self.tf_metrics.render())
        return web.Response(text=text,
                            content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def _models(self, request: web.Request) -> web.Response:
        start = time.perf_counter()
        labels = ["", "other", "OK"]  # model, API, status: filled in as the request goes
        self.metrics.in_flight += 1
        try:
            if self.options.cors and request.method == "OPTIONS":
                response = web.Response()  # a CORS preflight: the headers below answer it
            else:
                response = await self._answer(request, labels)
        finally:  # the gauge comes back down on every path, even a cancelled handler
            self.metrics.in_flight -= 1
        if self.options.cors:
            response.headers.update(CORS_HEADERS)
        seconds = time.perf_counter() - start
        self.metrics.observe(labels[0], labels[1], response.status, seconds)
        if labels[0] and labels[1] in API_NAMES:
            self.tf_metrics.request(labels[0], API_NAMES[labels[1]], "REST", labels[2], seconds)
        return response

    async def _answer(self, request: web.Request, labels: list[str]) -> web.Response:
        """The reply to a /v1/models request; every failure becomes an error reply."""
        try:
            route = parse_route(request.method, request.path)
            labels[1] = route.api
            model = self.models.get(route.model)
            if model is None:
                raise NotFoundError(f"Servable not found for request: Latest({route.model})")
            labels[0] = model.name
            if route.api == "status":
                body = tensor_json.dumps(api.status_reply(model.status(route.version,
                                                                       route.label)))
            elif route.api == "metadata":
                with model.acquire(route.version, route.label) as hold:
                    body = tensor_json.dumps(api.metadata_reply(model.name, hold.served))
            else:
                if self._stopping:
                    raise UnavailableError("the server is shutting down")
                # A client that sends its body slowly holds its reserved bytes: bound that too.
                payload, reservation = await asyncio.wait_for(
                    self._read_body(request), self.options.timeout_seconds)
                # TensorFlow's deadline comes a little before the reply's: the cancelled run
                # has ended (and freed its thread) by the time the client reads the 504.
                timeout = self.options.timeout_seconds
                deadline = time.monotonic() + timeout - min(0.05, timeout / 10)
                # Both claims are given back here unless _infer hands them to its work.
                with reservation, model.acquire(route.version, route.label) as hold:
                    body = await asyncio.wait_for(
                        self._infer(route, hold, payload, reservation, deadline), timeout)
            return _json_response(body)
        except (asyncio.TimeoutError, smrt_errors.DeadlineExceededError):
            labels[2] = "DEADLINE_EXCEEDED"
            return _error_response(RequestTimeoutError(
                f"the request took longer than {self.options.timeout_seconds:g} s"))
        except (smrt_errors.Error, web.HTTPException) as e:
            labels[2] = CODE_NAMES.get(status_code(e), "UNKNOWN")
            return _error_response(e)
        except Exception as e:  # a bug: answer 500 rather than drop the connection
            log.exception("internal error serving %s %s", request.method, request.path)
            labels[2] = "INTERNAL"
            return _error_response(e)

    def _runtime_recorder(self, model: str, api_name: str) -> Callable[[float], None]:
        def record(seconds: float) -> None:
            self.tf_metrics.runtime(model, API_NAMES[api_name], seconds)

        return record

    async def _read_body(self, request: web.Request) -> tuple[bytes, Reservation]:
        """The body, with its bytes reserved in the parsing budget (the caller releases
        them). A declared length is reserved before reading; a chunked body as it comes."""
        limit = self.options.max_request_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise RequestTooLargeError(
                f"the request body ({length} bytes) is larger than the limit of {limit} bytes")
        encoding = (bodies.encoding_of(request.headers.get("Content-Encoding"))
                    if self._raw_bodies else None)
        with self._parsing.reserve(length or 0) as reservation:
            try:
                if length is not None:
                    body = await request.read()
                else:
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in request.content.iter_any():
                        size += len(chunk)
                        if size > limit:
                            raise RequestTooLargeError(
                                f"the request body is larger than the limit of {limit} bytes")
                        reservation.grow(len(chunk))
                        chunks.append(chunk)
                    body = b"".join(chunks)
            except web.HTTPRequestEntityTooLarge:
                raise RequestTooLargeError(
                    f"the request body is larger than the limit of {limit} bytes") from None
            except (ClientPayloadError, HttpProcessingError, ConnectionResetError) as e:
                # Cut short or badly chunked: the client's doing, not a server error.
                raise BadRequestError(f"the request body could not be read: {e}") from None
            if encoding is not None:  # inflated in a thread, each megabyte reserved as made
                body = await asyncio.wrap_future(self._pool.submit(
                    bodies.decode, body, encoding, limit, reservation.grow))
            reservation.hand_off()  # to the caller
            return body, reservation

    async def _infer(self, route: Route, hold: Hold, body: bytes, reservation: Reservation,
                     deadline: float) -> bytes:
        """Runs one predict/classify/regress request. The caller owns ``hold`` (the version)
        and ``reservation`` (the body's bytes); this hands each to the work that uses it, which
        gives it back when done, even if the client's wait was cut short."""
        served = hold.served
        check = self.options.check_method_name
        parsed: ParsedPredict | None = None
        if route.api == "predict" and served.batchers:
            if len(body) <= self.options.inline_bytes:
                parsed = _parse_predict(served, body, reservation, deadline, check)
            else:
                parse = self._pool.submit(_parse_predict, served, body, reservation, deadline,
                                          check)
                reservation.hand_off()
                parse.add_done_callback(reservation.release)
                parsed = await asyncio.shield(asyncio.wrap_future(parse))
            signature, inputs, rows = parsed
            batcher = served.batchers.get(signature.key)
            if batcher is not None:
                # Admitted already if its parsing went through the pool.
                submit = self._pool.submit(_submit_holding, batcher, inputs, hold, deadline,
                                           admit=len(body) <= self.options.inline_bytes)
                hold.hand_off()  # the batch gives it back when its run is done
                future = await asyncio.shield(asyncio.wrap_future(submit))
                outputs = await asyncio.wrap_future(future)
                return await asyncio.wrap_future(
                    self._pool.submit(tensor_json.predict_body, outputs, rows, admit=False))
        job: Future[bytes] = self._pool.submit(
            _run_job, route.api, served, body, reservation, deadline, parsed, check,
            self._runtime_recorder(route.model, route.api))
        hold.hand_off()
        reservation.hand_off()
        job.add_done_callback(hold.release)
        job.add_done_callback(reservation.release)
        return await asyncio.wrap_future(job)


ParsedPredict = tuple[Signature, dict[str, Any], bool]


def _parse_predict(served: ServedVersion, body: bytes, reservation: Reservation,
                   deadline: float, check_method_name: bool = False) -> ParsedPredict:
    """A predict request's signature, input arrays and format; gives the body's bytes back
    to the parsing budget once the JSON is gone."""
    try:
        _check_deadline(deadline)
        with client_input():
            request = tensor_json.loads(body)
            signature = api.signature_for(served, request, check_method_name)
            inputs, rows = tensor_json.predict_inputs(request, signature.inputs)
            del request  # the parsed JSON (several times the body) goes before the run
        return signature, inputs, rows
    finally:
        reservation.release()


def _run_job(api_name: str, served: ServedVersion, body: bytes, reservation: Reservation,
             deadline: float, parsed: ParsedPredict | None = None,
             check_method_name: bool = False,
             record_runtime: Callable[[float], None] | None = None) -> bytes:
    """A whole request in a pool thread: parse (unless ``parsed``), run, encode. TensorFlow
    gets the time left before ``deadline`` and cancels the run when it passes;
    ``record_runtime`` gets the run's seconds."""
    if api_name == "predict":
        signature, inputs, rows = parsed or _parse_predict(served, body, reservation, deadline,
                                                           check_method_name)
        return tensor_json.predict_body(_run(signature, inputs, deadline, record_runtime), rows)
    try:
        _check_deadline(deadline)
        with client_input():
            request = tensor_json.loads(body)
            call = api.examples_call(served, request, api_name, len(body), check_method_name)
            del request
    finally:
        reservation.release()
    return api.examples_reply(call, _run(call.signature, call.inputs, deadline, record_runtime))


def _run(signature: Signature, inputs: dict[str, Any], deadline: float,
         record_runtime: Callable[[float], None] | None) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        return signature.run(inputs, timeout=_remaining(deadline))
    finally:
        if record_runtime is not None:
            record_runtime(time.perf_counter() - start)


def _remaining(deadline: float) -> float:
    return deadline - time.monotonic()


def _check_deadline(deadline: float) -> None:
    """A job that waited for a thread past its request's deadline is not started at all."""
    if time.monotonic() >= deadline:
        raise RequestTimeoutError("the request timed out before a thread could take it")


def _submit_holding(batcher: Batcher, inputs: dict[str, Any], hold: Hold,
                    deadline: float) -> Future[dict[str, Any]]:
    """Queues a request in a batcher; ``hold`` is given back when its batch is done."""
    try:
        future = batcher.submit(inputs, deadline)
    except BaseException:
        hold.release()
        raise
    future.add_done_callback(hold.release)
    return future


def _json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _error_response(error: BaseException) -> web.Response:
    if isinstance(error, web.HTTPException):
        status, message = error.status, error.reason
    else:
        status, message = http_status(error), str(error)
    response = _json_response(tensor_json.dumps({"error": safe_text(message)}), status)
    if isinstance(error, OverloadedError):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


async def run_until_signalled(server: ModelServer, host: str, port: int,
                              access_log: logging.Logger | None,
                              on_ready: Callable[[int], None]) -> None:
    """Runs ``server`` until SIGTERM or SIGINT, then shuts it down gracefully."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def signalled() -> None:
        stop.set()
        server.cancel_load_retries()  # a start-up waiting to retry a load ends now

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled)
    try:
        bound = await server.start(host, port, access_log)
        on_ready(bound)
        await stop.wait()
        log.info("shutting down: finishing requests in flight")
    finally:
        await server.stop()
