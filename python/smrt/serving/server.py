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
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from smrt import errors as smrt_errors
from smrt.model import Signature

from . import api, tensor_json
from .batching import Batcher, can_batch
from .config import BatchingOptions, ModelConfig
from .errors import (
    MethodNotAllowedError,
    NotFoundError,
    RequestTimeoutError,
    RequestTooLargeError,
    UnavailableError,
    http_status,
)
from .metrics import Metrics
from .versions import Loader, ServedModel, ServedVersion, default_loader

log = logging.getLogger("smrt.serve")

ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf'

# TF Serving's URL grammar (http_rest_api_handler.cc), case-insensitive.
_PREDICTION_URL = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)",
    re.IGNORECASE)
_MODEL_URL = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(/metadata)?", re.IGNORECASE)


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


@dataclass(frozen=True)
class ServerOptions:
    """How the server runs; the defaults are TF Serving's where it has one."""

    num_threads: int = 4 * (os.cpu_count() or 1)
    """Threads that parse requests, run models and encode replies."""
    timeout_seconds: float = 30.0
    """A request that has not been answered after this long gets HTTP 504."""
    max_request_bytes: int = 64 << 20
    """Larger bodies get HTTP 413 without being read."""
    poll_wait_seconds: float = 1.0
    """Seconds between looks for new versions; 0 looks once (at start), never again."""
    batching: BatchingOptions | None = None
    """Server-side batching for signatures with a leading batch dimension, if set."""
    shutdown_grace_seconds: float = 30.0
    """On SIGTERM, how long requests in flight may take to finish."""
    inline_bytes: int = 4096
    """With batching (the run happens in a batch thread), bodies up to this size are parsed
    on the event loop: a thread hop would cost more than the parsing."""


class ModelServer:
    """Serves ``models`` over TF Serving's REST API. Use :meth:`start` and :meth:`stop` from
    a running event loop, or :func:`run_until_signalled` to run one until SIGTERM/SIGINT."""

    def __init__(self, models: list[ModelConfig], options: ServerOptions | None = None,
                 loader: Loader | None = None) -> None:
        self.options = options or ServerOptions()
        self.metrics = Metrics()
        self.models = {
            c.name: ServedModel(c, loader or default_loader(), on_load=self._prepare)
            for c in models
        }
        self._pool = ThreadPoolExecutor(self.options.num_threads,
                                        thread_name_prefix="smrt-serve")
        self._poller = ThreadPoolExecutor(1, thread_name_prefix="smrt-poll")
        self._poll_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = False

    # --- lifecycle ---------------------------------------------------------------------------

    def load_initial_versions(self) -> None:
        """Loads what each model's policy wants; raises if a model has versions on disk but
        none of them loaded (TF Serving would not start either)."""
        for model in self.models.values():
            model.poll()
            failed = [s for s in model.statuses() if s.state == "END" and s.error_message]
            if not model.serving_versions and failed:
                raise smrt_errors.Error(
                    f"model {model.name}: version {failed[0].version} failed to load: "
                    f"{failed[0].error_message}")
            if not model.serving_versions:
                log.warning("model %s: no version under %s yet; waiting for one", model.name,
                            model.config.base_path)

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.options.max_request_bytes)
        app.router.add_route("*", "/metrics", self._metrics)
        app.router.add_route("*", "/monitoring/prometheus/metrics", self._metrics)
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
            shutdown_timeout=self.options.shutdown_grace_seconds)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        if self.options.poll_wait_seconds > 0:
            self._poll_task = asyncio.create_task(self._poll_forever())
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stops listening, lets requests in flight finish, then unloads every model."""
        self._stopping = True
        if self._poll_task is not None:
            self._poll_task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()  # waits up to shutdown_grace_seconds for handlers
        loop = asyncio.get_running_loop()
        for model in self.models.values():
            await loop.run_in_executor(self._poller, model.close)
        self._pool.shutdown(wait=True)
        self._poller.shutdown(wait=True)

    async def _poll_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await asyncio.sleep(self.options.poll_wait_seconds)
            for model in self.models.values():
                try:
                    await loop.run_in_executor(self._poller, model.poll)
                except Exception:  # a bug here must not stop polling for good
                    log.exception("model %s: polling failed", model.name)

    def _prepare(self, served: ServedVersion) -> None:
        """Called once per loaded version: sets up its batchers."""
        batching = self.options.batching
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
        return web.Response(text=self.metrics.render(serving, batches),
                            content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def _models(self, request: web.Request) -> web.Response:
        start = time.perf_counter()
        model_label, api_label = "", "other"
        self.metrics.in_flight += 1
        try:
            route = parse_route(request.method, request.path)
            api_label = route.api
            model = self.models.get(route.model)
            if model is None:
                raise NotFoundError(f"Servable not found for request: Latest({route.model})")
            model_label = model.name
            if route.api == "status":
                body = tensor_json.dumps(api.status_reply(model.status(route.version,
                                                                       route.label)))
            elif route.api == "metadata":
                served = model.acquire(route.version, route.label)
                try:
                    body = tensor_json.dumps(api.metadata_reply(model.name, served))
                finally:
                    served.release()
            else:
                if self._stopping:
                    raise UnavailableError("the server is shutting down")
                payload = await self._read_body(request)
                served = model.acquire(route.version, route.label)
                body = await asyncio.wait_for(self._infer(route, served, payload),
                                              self.options.timeout_seconds)
            response = _json_response(body)
        # smrt's errors first: TF's DEADLINE_EXCEEDED is a TimeoutError too.
        except (smrt_errors.Error, web.HTTPException) as e:
            response = _error_response(e)
        except asyncio.TimeoutError:
            response = _error_response(RequestTimeoutError(
                f"the request took longer than {self.options.timeout_seconds:g} s"))
        except Exception as e:  # a bug: answer 500 rather than drop the connection
            log.exception("internal error serving %s %s", request.method, request.path)
            response = _error_response(e)
        self.metrics.in_flight -= 1
        self.metrics.observe(model_label, api_label, response.status,
                             time.perf_counter() - start)
        return response

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.options.max_request_bytes
        if request.content_length is not None and request.content_length > limit:
            raise RequestTooLargeError(
                f"the request body ({request.content_length} bytes) is larger than the "
                f"limit of {limit} bytes")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise RequestTooLargeError(
                f"the request body is larger than the limit of {limit} bytes") from None

    async def _infer(self, route: Route, served: ServedVersion, body: bytes) -> bytes:
        """Runs one predict/classify/regress request. Owns ``served``'s hold: releases it
        when the work is done, even if the client's wait was cut short (timeout)."""
        loop = asyncio.get_running_loop()
        released = False

        def release(_: object = None) -> None:
            served.release()

        try:
            if route.api == "predict" and served.batchers:
                if len(body) <= self.options.inline_bytes:
                    parsed = self._parse_predict(served, body)
                else:
                    parsed = await asyncio.shield(loop.run_in_executor(
                        self._pool, self._parse_predict, served, body))
                signature, inputs, rows = parsed
                batcher = served.batchers.get(signature.key)
                if batcher is not None:
                    released = True  # from here on the batch task owns the hold
                    future = await asyncio.shield(loop.run_in_executor(
                        self._pool, _submit_holding, batcher, inputs, served))
                    outputs = await asyncio.wrap_future(future)
                    return await loop.run_in_executor(
                        self._pool, _encode_predict, outputs, rows)
            job: Future[bytes] = self._pool.submit(_run_job, route.api, served, body)
            released = True
            job.add_done_callback(release)
            return await asyncio.wrap_future(job)
        finally:
            if not released:
                served.release()

    @staticmethod
    def _parse_predict(served: ServedVersion, body: bytes,
                       ) -> tuple[Signature, dict[str, Any], bool]:
        request = tensor_json.loads(body)
        signature = api.signature_for(served, request)
        inputs, rows = tensor_json.predict_inputs(request, signature.inputs)
        return signature, inputs, rows


def _run_job(api_name: str, served: ServedVersion, body: bytes) -> bytes:
    """A whole request in a pool thread: parse, run, encode."""
    request = tensor_json.loads(body)
    if api_name == "predict":
        signature = api.signature_for(served, request)
        inputs, rows = tensor_json.predict_inputs(request, signature.inputs)
        return _encode_predict(signature(**inputs), rows)
    return api.classify_or_regress(served, request, api_name)


def _submit_holding(batcher: Batcher, inputs: dict[str, Any],
                    served: ServedVersion) -> Future[dict[str, Any]]:
    """Queues a request in a batcher; ``served`` is released when its batch is done."""
    try:
        future = batcher.submit(inputs)
    except BaseException:
        served.release()
        raise
    future.add_done_callback(lambda _: served.release())
    return future


def _encode_predict(outputs: dict[str, Any], rows: bool) -> bytes:
    return tensor_json.predict_body(outputs, rows)


def _json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _error_response(error: BaseException) -> web.Response:
    if isinstance(error, web.HTTPException):
        status, message = error.status, error.reason
    else:
        status, message = http_status(error), str(error)
    return _json_response(tensor_json.dumps({"error": message}), status)


async def run_until_signalled(server: ModelServer, host: str, port: int,
                              access_log: logging.Logger | None,
                              on_ready: Callable[[int], None]) -> None:
    """Runs ``server`` until SIGTERM or SIGINT, then shuts it down gracefully."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        bound = await server.start(host, port, access_log)
        on_ready(bound)
        await stop.wait()
        log.info("shutting down: finishing requests in flight")
    finally:
        await server.stop()
