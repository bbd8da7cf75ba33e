"""TF Serving's REST API on aiohttp, over the models of a :class:`ModelRegistry`.

The event loop only routes, reads bodies and writes replies. Parsing a request, running the
model and encoding the reply happen in a thread pool (the session run releases the GIL, so
requests overlap), or, with batching on, the run happens in the signature's batch thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from smrt import errors as smrt_errors
from smrt.errors import NotFoundError, UnavailableError
from smrt.model import Signature
from smrt.serving.core.admission import BoundedPool, ByteBudget, Reservation
from smrt.serving.core.batching import Batcher
from smrt.serving.core.config import ServerOptions
from smrt.serving.core.errors import (
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
from smrt.serving.core.metrics import Metrics
from smrt.serving.core.registry import ModelRegistry
from smrt.serving.core.tf_metrics import API_NAMES, TFServingMetrics
from smrt.serving.core.versions import Hold, ServedVersion

from . import bodies, replies, tensor_json

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


class RestApi:
    """The REST handlers: routing, bodies within budget, requests run in a bounded pool.
    :meth:`application` is the aiohttp app."""

    def __init__(self, registry: ModelRegistry, metrics: Metrics,
                 tf_metrics: TFServingMetrics) -> None:
        self.registry = registry
        self.options: ServerOptions = registry.options
        self.metrics = metrics
        self.tf_metrics = tf_metrics
        self._pool = BoundedPool(self.options.num_threads, self.options.max_queued_requests,
                                 "smrt-serve")
        self._parsing = ByteBudget(self.options.max_parsing_bytes)
        self.raw_bodies = bodies.server_options()
        """aiohttp hands compressed bodies over as they are: the server inflates them, bounded."""
        self._idle = asyncio.Event()  # set while no /v1/models request is being handled
        self._idle.set()

    @property
    def models(self) -> dict[str, Any]:
        return self.registry.models

    async def drain(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds until no /v1/models request is being handled;
        returns whether none is."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def shutdown(self) -> None:
        """Stops the pool's threads once the handlers are done."""
        self._pool.shutdown()

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.options.max_request_bytes)
        app.router.add_route("*", "/metrics", self._metrics)
        if self.options.prometheus_path not in (None, "", "/metrics"):  # TF Serving's path,
            # only when its monitoring config says so (smrt's own /metrics is always there)
            app.router.add_route("*", self.options.prometheus_path, self._metrics)
        app.router.add_route("*", "/{tail:.*}", self._models)
        return app

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
        self._idle.clear()
        try:
            if self.options.cors and request.method == "OPTIONS":
                response = web.Response()  # a CORS preflight: the headers below answer it
            else:
                response = await self._answer(request, labels)
            if self.options.cors:
                response.headers.update(CORS_HEADERS)
            if self.registry.stopping:  # a kept-alive client reconnects, and finds it closed
                response.force_close()
            seconds = time.perf_counter() - start
            self.metrics.observe(labels[0], labels[1], response.status, seconds)
            if labels[0] and labels[1] in API_NAMES:
                self.tf_metrics.request(labels[0], API_NAMES[labels[1]], "REST", labels[2],
                                        seconds)
            # Written here rather than after the return, so the request is in flight (and
            # the shutdown's drain waits for it) until its answer is sent.
            with contextlib.suppress(ConnectionError):  # gone: aiohttp's own handling follows
                await response.prepare(request)
                await response.write_eof()
                if self.registry.stopping:
                    await _sent(request)
            return response
        finally:  # the gauge comes back down on every path, even a cancelled handler
            self.metrics.in_flight -= 1
            if not self.metrics.in_flight:
                self._idle.set()

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
                body = tensor_json.dumps(replies.status_reply(model.status(route.version,
                                                                       route.label)))
            elif route.api == "metadata":
                with model.acquire(route.version, route.label) as hold:
                    body = tensor_json.dumps(replies.metadata_reply(model.name, hold.served))
            else:
                if self.registry.stopping:
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
                    if self.raw_bodies else None)
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


async def _sent(request: web.Request) -> None:
    """Waits until the answer has left the connection's buffer for the kernel's, which delivers
    it even once the process is gone: write_eof returns when the buffer is below its low-water
    mark, and a server that stops would drop the rest."""
    transport = request.transport
    while (transport is not None and not transport.is_closing()
           and transport.get_write_buffer_size()):
        await asyncio.sleep(0.005)


def _parse_predict(served: ServedVersion, body: bytes, reservation: Reservation,
                   deadline: float, check_method_name: bool = False) -> ParsedPredict:
    """A predict request's signature, input arrays and format; gives the body's bytes back
    to the parsing budget once the JSON is gone."""
    try:
        _check_deadline(deadline)
        with client_input():
            # The parsed JSON (several times the body) is gone before the run.
            signature, inputs, rows = tensor_json.parse_predict(
                body, lambda request: replies.request_signature(served, request,
                                                                check_method_name))
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
            call = replies.examples_call(served, request, api_name, len(body), check_method_name)
            del request
    finally:
        reservation.release()
    return replies.examples_reply(call, _run(call.signature, call.inputs, deadline, record_runtime))


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
