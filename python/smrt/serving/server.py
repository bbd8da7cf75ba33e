"""``smrt serve``'s server: one protocol-neutral core (:mod:`smrt.serving.core`: the model
registry, version holds, batching, warmup, metrics, request -> signature run) under two thin
front ends, TF Serving's REST API (:mod:`smrt.serving.rest`, aiohttp) and its gRPC API
(:mod:`smrt.serving.grpc`, grpcio). :class:`ModelServer` starts and stops them together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .core.config import ModelConfig, ServerOptions
from .core.metrics import Metrics
from .core.registry import ModelRegistry
from .core.tf_metrics import TFServingMetrics
from .core.versions import Loader, ServedModel
from .rest.app import ACCESS_LOG_FORMAT, RestApi

log = logging.getLogger("smrt.serve")

_CLOSE_SECONDS = 1.0
"""How long aiohttp's cleanup waits for handlers, after the drain: past the grace period, or
a request that came on a kept-alive connection since (refused at once, as the server stops)."""


class ModelServer:
    """Serves ``models`` over TF Serving's REST API, and its gRPC API when
    ``options.grpc`` says so. Use :meth:`start` and :meth:`stop` from a running event loop, or
    :func:`run_until_signalled` to run one until SIGTERM/SIGINT."""

    def __init__(self, models: list[ModelConfig], options: ServerOptions | None = None,
                 loader: Loader | None = None,
                 read_config: Callable[[], list[ModelConfig]] | None = None) -> None:
        """``read_config`` re-reads the model config (``--model_config_file``) every
        ``options.config_poll_seconds``, if both are set (see :class:`ModelRegistry`)."""
        self.options = options or ServerOptions()
        self.metrics = Metrics()
        self.tf_metrics = TFServingMetrics()
        """TF Serving's metric names (served with smrt's own on the metrics paths)."""
        self.registry = ModelRegistry(models, self.options, self.tf_metrics, loader,
                                      read_config)
        self.rest = RestApi(self.registry, self.metrics, self.tf_metrics)
        self._runner: web.AppRunner | None = None
        self._grpc: Any = None  # grpc.Server, when the gRPC API is on
        self.grpc_ports: list[int] = []
        """The gRPC ports bound (TCP, then 0 for the Unix socket), once started."""

    @property
    def models(self) -> dict[str, ServedModel]:
        """The served models by name."""
        return self.registry.models

    async def start(self, host: str = "127.0.0.1", port: int = 8501,
                    access_log: logging.Logger | None = None) -> int:
        """Loads the models, listens, starts polling; returns the REST port (useful with 0)."""
        await self.registry.load()
        self._runner = web.AppRunner(
            self.rest.application(), handle_signals=False, access_log=access_log,
            access_log_format=ACCESS_LOG_FORMAT,
            shutdown_timeout=_CLOSE_SECONDS, **self.rest.raw_bodies)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        if self.options.grpc is not None:
            self._start_grpc(host)
        self.registry.start_polling()
        return int(self._runner.addresses[0][1])

    def _start_grpc(self, host: str) -> None:
        from .grpc import server as grpc_server

        options = self.options.grpc
        assert options is not None
        grpc_api = grpc_server.GrpcApi(
            lambda: self.registry.models, options.tensor_content,
            self.options.max_request_bytes, self.options.check_method_name, self._record_grpc,
            self._reload_from_grpc)
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

    def _reload_from_grpc(self, config: bytes, timeout: float | None) -> None:
        from .core.config_wire import read_model_server_config

        configs = read_model_server_config(config, self.options.saved_model_tags)
        self.registry.apply_config_from_thread(configs, timeout)

    def _record_grpc(self, model: str, api_name: str, status: str, seconds: float) -> None:
        self.tf_metrics.request(model, api_name, "GRPC", status, seconds)

    def cancel_load_retries(self) -> None:
        """Ends waits to retry failed loads (thread-safe): stopping should not wait for them."""
        self.registry.cancel_load_retries()

    async def stop(self) -> None:
        """Stops listening, lets requests in flight finish, then unloads every model."""
        await self.registry.stop()
        grpc_stopped = None
        if self._grpc is not None:  # refuses new RPCs now, lets those in flight finish
            grpc_stopped = self._grpc.stop(self.options.shutdown_grace_seconds)
        if self._runner is not None:
            for site in self._runner.sites:
                await site.stop()  # no new connections
            # aiohttp's cleanup closes every connection and then drops what one receives, so
            # a request still sending its body would wait for it until its timeout: requests
            # in flight finish first, up to the grace period.
            grace = self.options.shutdown_grace_seconds
            if not await self.rest.drain(grace):
                log.warning("REST requests still in flight after %g s are cut", grace)
            await self._runner.cleanup()  # cuts what is left after _CLOSE_SECONDS
        if grpc_stopped is not None:
            await asyncio.get_running_loop().run_in_executor(None, grpc_stopped.wait)
        await self.registry.close()
        self.rest.shutdown()


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
