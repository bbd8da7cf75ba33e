"""The served models: loading them at start, polling their base paths for new versions,
retrying failed loads, re-reading the model config, and preparing each loaded version (warmup,
batchers) before it serves. Protocol-neutral: the REST and gRPC front ends look models up in
:attr:`ModelRegistry.models` and take holds on versions (:meth:`ServedModel.acquire`).

The dict of models changes on the event loop only; loads and unloads run in one polling thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from smrt import errors as smrt_errors

from .batching import Batcher, can_batch
from .config import (
    BATCHING_PARAMS_FILE,
    ModelConfig,
    ServerOptions,
    read_batching_parameters_file,
)
from .errors import CODE_NAMES, status_code
from .tf_metrics import TFServingMetrics
from .versions import Loader, ServedModel, ServedVersion, default_loader
from .warmup import warm_up

log = logging.getLogger("smrt.serve")


class ModelRegistry:
    """The models ``smrt serve`` serves, kept in line with the disk and the model config."""

    def __init__(self, models: list[ModelConfig], options: ServerOptions,
                 tf_metrics: TFServingMetrics, loader: Loader | None = None,
                 read_config: Callable[[], list[ModelConfig]] | None = None) -> None:
        """``read_config`` re-reads the model config (``--model_config_file``) every
        ``options.config_poll_seconds``, if both are set: models added there are served,
        models dropped are retired, and a model's new version policy or labels apply."""
        self.options = options
        self.tf_metrics = tf_metrics
        self._loader = loader or default_loader()
        self._read_config = read_config
        self.models = {c.name: self._served_model(c) for c in models}
        """The served models by name (changed on the event loop only)."""
        self._configs_read = {c.name: c for c in models}
        """The model configs as last read (applied, but for labels refused)."""
        self._pending_labels: dict[str, ModelConfig] = {}
        """Configs read whose labels name versions not available yet, by model name."""
        self._poller = ThreadPoolExecutor(1, thread_name_prefix="smrt-poll")
        self._poll_task: asyncio.Task[None] | None = None
        self._config_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._applying = asyncio.Lock()
        self.stopping = False
        """Set when the server starts shutting down: new inference requests are refused."""

    async def load(self) -> None:
        """Loads what each model's policy wants, in the polling thread (see
        :meth:`load_initial_versions`)."""
        await asyncio.get_running_loop().run_in_executor(self._poller,
                                                         self.load_initial_versions)

    def start_polling(self) -> None:
        """Starts looking for new versions, retrying failed loads and re-reading the model
        config (from a running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._poll_task = asyncio.create_task(self._poll_forever())
        if self._read_config is not None and self.options.config_poll_seconds > 0:
            self._config_task = asyncio.create_task(self._reload_config_forever())

    async def stop(self) -> None:
        """Stops polling and retires every model (each version closes when its last request
        is done)."""
        self.stopping = True
        self.cancel_load_retries()
        for task in (self._poll_task, self._config_task):
            if task is not None:
                task.cancel()

    async def close(self) -> None:
        """Unloads every model; call after the front ends have stopped."""
        loop = asyncio.get_running_loop()
        async with self._applying:  # a config being applied finishes first; none starts after
            for model in list(self.models.values()):
                await loop.run_in_executor(self._poller, model.close)
            self._poller.shutdown(wait=True)

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

    def cancel_load_retries(self) -> None:
        """Ends waits to retry failed loads (thread-safe): stopping should not wait for them."""
        for model in self.models.values():
            model.cancel_retries()

    async def _poll_forever(self) -> None:
        """Looks for new versions every ``poll_wait_seconds`` (if > 0), and in between tries
        failed loads again as they fall due, each model's on its own schedule."""
        loop = asyncio.get_running_loop()
        period = self.options.poll_wait_seconds
        next_poll = time.monotonic() + period if period > 0 else float("inf")
        while not self.stopping:
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
        while not self.stopping:
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
        await self.apply_config(await loop.run_in_executor(self._poller, self._read_config))

    def apply_config_from_thread(self, configs: list[ModelConfig],
                                 timeout: float | None) -> None:
        """:meth:`apply_config` from another thread (gRPC's HandleReloadConfigRequest);
        returns once applied; TimeoutError after ``timeout`` seconds (None: no limit)."""
        assert self._loop is not None, "the registry is not running"
        asyncio.run_coroutine_threadsafe(self.apply_config(configs), self._loop).result(timeout)

    async def apply_config(self, config_list: list[ModelConfig]) -> None:
        """Serves exactly ``config_list``: models added are loaded, models dropped retired,
        new policies and labels applied. One application at a time; UnavailableError once
        the server is stopping (its models are being unloaded)."""
        async with self._applying:
            if self.stopping:
                raise smrt_errors.UnavailableError(
                    "the server is shutting down: the model config was not applied")
            await self._apply_config(config_list)

    async def _apply_config(self, config_list: list[ModelConfig]) -> None:
        loop = asyncio.get_running_loop()
        configs = {c.name: c for c in config_list}
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
