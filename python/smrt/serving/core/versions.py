"""Served models and their versions: discovery on disk, loading, hot swap, retirement.

A model's base path holds numbered version directories (``base/1``, ``base/2``...). Each poll
lists them, applies the version policy (default: the highest one), loads what is new in the
background and only then swaps it in; a version that is no longer wanted is retired: it stops
taking new requests at once and is closed when its last in-flight request finishes, so no
request is dropped. A version that fails to load is tried again up to ``max_load_retries``
times, ``load_retry_interval`` seconds apart (TF Serving's ``--max_num_load_retries`` and
``--load_retry_interval_micros``; its status says LOADING with the last error meanwhile), then
reported in the model's status (END with the error) while the versions already serving keep
serving; after that it is tried again when its files change. Waiting to retry never blocks
the polling thread (but at start, when the server waits for its models as TF Serving does).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smrt import errors
from smrt.errors import NotFoundError
from smrt.model import Model, load

from .admission import Claim
from .batching import Batcher
from .config import ModelConfig

log = logging.getLogger("smrt.serve")

Loader = Callable[[str, tuple[str, ...]], Model]
"""Loads one version directory with a tag-set (default: :func:`smrt.load` with the server's
session options)."""


@dataclass
class VersionStatus:
    """One version's entry in the model status reply (TF Serving's ModelVersionStatus)."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""


class ServedVersion:
    """A loaded version. Requests hold it (:meth:`ServedModel.acquire` gives a :class:`Hold`),
    so that a retired version is closed only after the last request using it is done."""

    def __init__(self, version: int, model: Model) -> None:
        self.version = version
        self.model = model
        self._lock = threading.Lock()
        self._in_flight = 0
        self._retired = False
        self.batchers: dict[str, Batcher] = {}
        """Server-side batchers by signature key (set up by the server when batching is on)."""

    def _acquire(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _release(self) -> None:
        """Ends one request's hold (:meth:`Hold.release`); thread-safe."""
        with self._lock:
            self._in_flight -= 1
            close = self._retired and self._in_flight == 0
        if close:
            self._close()

    def retire(self) -> None:
        """No new requests reach it any more; close it once idle."""
        with self._lock:
            self._retired = True
            close = self._in_flight == 0
        if close:
            self._close()

    def _close(self) -> None:
        """Runs once, when the version is retired and its last request is done: only then
        do its batchers stop (a request still parsing will yet submit to one) and its
        session close."""
        for batcher in self.batchers.values():
            batcher.stop()
        self.model.close()


class Hold(Claim):
    """One request's hold on a served version (:attr:`served`): the version is not closed
    while any hold on it is kept. A :class:`~.admission.Claim`: given back exactly once, by
    its one owner."""

    def __init__(self, served: ServedVersion) -> None:
        super().__init__()
        self.served = served

    def _give_back(self) -> None:
        self.served._release()


def _version_dirs(base_path: str) -> dict[int, str]:
    """Numbered subdirectories that hold a SavedModel, by version number."""
    found: dict[int, str] = {}
    try:
        entries = list(os.scandir(base_path))
    except OSError as e:
        log.warning("cannot list %s: %s", base_path, e)
        return found
    for entry in entries:
        # ASCII digits only: "²" or "٣" pass isdigit() but are not version numbers.
        if not (entry.name.isascii() and entry.name.isdigit()) or not entry.is_dir():
            continue
        if any(os.path.isfile(os.path.join(entry.path, f))
               for f in ("saved_model.pb", "saved_model.pbtxt")):
            found[int(entry.name)] = entry.path
    return found


def _fingerprint(path: str) -> tuple[float, ...]:
    """Changes when a version directory's files change, to retry a version that failed."""
    stamps: list[float] = []
    for root, _dirs, files in os.walk(path):
        for name in sorted(files):
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            stamps += [st.st_mtime_ns, st.st_size]
    return tuple(stamps)


class ServedModel:
    """One model name: the versions it serves and the status of every version it tried."""

    def __init__(self, config: ModelConfig, loader: Loader,
                 on_load: Callable[[ServedVersion], None] = lambda v: None,
                 max_load_retries: int = 0, load_retry_interval: float = 0.0,
                 on_attempt: Callable[[str, bool, float], None] = lambda p, ok, s: None,
                 ) -> None:
        """``on_load`` sets up each loaded version (its error fails the load);
        ``on_attempt(path, ok, seconds)`` hears of every attempt to load one."""
        self.config = config
        self._on_attempt = on_attempt
        self._retries = max(0, max_load_retries)
        self._retry_interval = max(0.0, load_retry_interval)
        self._cancelled = threading.Event()
        self.name = config.name
        self._loader = loader
        self._on_load = on_load
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._closed = False
        self._serving: dict[int, ServedVersion] = {}
        self._status: dict[int, VersionStatus] = {}
        self._failed: dict[int, tuple[float, ...]] = {}  # version -> files when it failed
        self._retry_at: dict[int, tuple[float, int]] = {}
        """Versions waiting to be tried again: (time.monotonic() when, attempts so far)."""

    # --- requests ---------------------------------------------------------------------------

    def acquire(self, version: int | None = None, label: str | None = None) -> Hold:
        """A hold on the version a request asked for (default: the highest serving), for
        ``with model.acquire(...) as hold:`` (see :class:`~.admission.Claim` to hand it on).

        Raises NotFoundError (HTTP 404) for a version or label that is not being served.
        """
        with self._lock:
            served = self._lookup(version, label)
            served._acquire()
        return Hold(served)

    def _lookup(self, version: int | None, label: str | None) -> ServedVersion:
        if label is not None:
            if label not in self.config.labels:
                raise NotFoundError(f"Unrecognized servable version label: {label}")
            version = self.config.labels[label]
        if version is None:
            if not self._serving:
                raise NotFoundError(f"Servable not found for request: Latest({self.name})")
            return self._serving[max(self._serving)]
        served = self._serving.get(version)
        if served is None:
            raise NotFoundError(
                f"Servable not found for request: Specific({self.name}, {version})")
        return served

    def status(self, version: int | None = None, label: str | None = None,
               ) -> list[VersionStatus]:
        """The status of every version tried (or of one), highest version first."""
        with self._lock:
            if label is not None:
                if label not in self.config.labels:
                    raise NotFoundError(f"Unrecognized servable version label: {label}")
                version = self.config.labels[label]
            if version is not None:
                if version not in self._status:
                    raise NotFoundError(
                        f"Could not find version {version} of model {self.name}")
                return [self._status[version]]
            if not self._status:
                raise NotFoundError(f"Could not find any versions of model {self.name}")
            return [self._status[v] for v in sorted(self._status, reverse=True)]

    def statuses(self) -> list[VersionStatus]:
        """The status of every version tried, highest first (empty if none yet)."""
        with self._lock:
            return [self._status[v] for v in sorted(self._status, reverse=True)]

    def serving(self) -> list[ServedVersion]:
        """The versions being served, lowest first."""
        with self._lock:
            return [self._serving[v] for v in sorted(self._serving)]

    @property
    def serving_versions(self) -> list[int]:
        with self._lock:
            return sorted(self._serving)

    # --- the file system --------------------------------------------------------------------

    def poll(self, block: bool = False) -> None:
        """Brings the served versions in line with the disk; blocking (loads run here). A
        failed load is tried again later, at a later poll (:meth:`next_retry_at` says when),
        so one model's retries never hold up another's; with ``block`` (at start, as TF
        Serving waits for its models) the retries happen here."""
        with self._poll_lock:  # one poll at a time per model
            if self._closed:  # a poll that raced a config reload must not load into it
                return
            on_disk = _version_dirs(self.config.base_path)
            wanted = self.config.policy.select(list(on_disk))
            if not wanted and not on_disk:
                log.debug("model %s: no versions under %s", self.name, self.config.base_path)
            for version in set(self._retry_at) - set(wanted):
                self._give_up(version)  # gone, or no longer wanted: no more tries
            for version in wanted:
                if version in self._serving:
                    continue
                if version in self._retry_at and self._retry_at[version][0] > time.monotonic():
                    continue  # not yet time to try again
                if version in self._failed and self._failed[version] == _fingerprint(
                        on_disk[version]):
                    continue  # failed before and unchanged since
                self._load(version, on_disk[version], block)
            # Unwanted versions go only once something else serves, unless they vanished.
            keep = {v for v in wanted if v in self._serving}
            for version in sorted(set(self._serving) - keep):
                if keep or version not in on_disk:
                    self._unload(version)

    def next_retry_at(self) -> float | None:
        """When (``time.monotonic()``) a failed load is due to be tried again, if any is."""
        with self._lock:
            return min((at for at, _ in self._retry_at.values()), default=None)

    def reconfigure(self, config: ModelConfig) -> None:
        """A new version policy or labels (same name, base path and tags); the next
        :meth:`poll` applies the policy."""
        with self._lock:
            self.config = config

    def cancel_retries(self) -> None:
        """Stops waiting to retry failed loads, for good (the server is stopping)."""
        self._cancelled.set()

    def _load(self, version: int, path: str, block: bool) -> None:
        with self._lock:
            attempt = self._retry_at.pop(version, (0.0, 0))[1]
        if attempt == 0:
            with self._lock:
                self._status[version] = VersionStatus(version, "LOADING")
            log.info("model %s: loading version %d from %s", self.name, version, path)
        while True:
            fingerprint = _fingerprint(path)
            error = self._try_load(version, path)
            if error is None:
                break
            code, message = _status_name(error), str(error)
            attempt += 1
            if attempt > self._retries:
                with self._lock:
                    self._status[version] = VersionStatus(version, "END", code, message)
                self._failed[version] = fingerprint
                return
            with self._lock:  # still loading; the status says why it is taking a while
                self._status[version] = VersionStatus(version, "LOADING", code, message)
            log.info("model %s: version %d: retry %d of %d in %g s", self.name, version,
                     attempt, self._retries, self._retry_interval)
            if not block:  # a later poll tries again; the polling thread goes on meanwhile
                with self._lock:
                    self._retry_at[version] = (time.monotonic() + self._retry_interval, attempt)
                return
            if self._cancelled.wait(self._retry_interval):  # stopping: no more tries
                with self._lock:
                    self._status[version] = VersionStatus(version, "END", code, message)
                return
        self._failed.pop(version, None)

    def _give_up(self, version: int) -> None:
        """Stops retrying a version; its status keeps the last error."""
        with self._lock:
            self._retry_at.pop(version, None)
            status = self._status.get(version)
            if status is not None and status.state == "LOADING":
                self._status[version] = VersionStatus(version, "END", status.error_code,
                                                      status.error_message)

    def _try_load(self, version: int, path: str) -> Exception | None:
        """Loads a version and serves it; returns the error if that failed."""
        model: Model | None = None
        try:
            start = time.perf_counter()
            try:
                model = self._loader(path, self.config.tags)
            finally:
                self._on_attempt(path, model is not None, time.perf_counter() - start)
            served = ServedVersion(version, model)
            self._on_load(served)
            runtimes = _runtimes(served.model)
        except Exception as e:  # any failure is reported; serving goes on
            log.error("model %s: version %d failed to load: %s", self.name, version, e,
                      exc_info=not isinstance(e, (errors.Error, OSError)))
            if model is not None:  # loaded, but setting it up failed
                model.close()
            return e
        with self._lock:
            self._serving[version] = served
            self._status[version] = VersionStatus(version, "AVAILABLE")
        log.info("model %s: serving version %d (%s)", self.name, version, runtimes)
        return None

    def _unload(self, version: int) -> None:
        with self._lock:
            served = self._serving.pop(version)
            self._status[version] = VersionStatus(version, "END")
        served.retire()
        log.info("model %s: version %d unloaded", self.name, version)

    def close(self) -> None:
        """Retires every version (each closes once its requests are done); later polls load
        nothing."""
        with self._poll_lock:
            self._closed = True
            for version in sorted(self._serving):
                self._unload(version)


def _status_name(error: BaseException) -> str:
    """TF Serving's error_code name for a load failure: DataLossError -> "DATA_LOSS"."""
    for cls in type(error).__mro__:  # a subclass of smrt's own (MissingOpError) counts as its base
        if cls in errors.STATUS_ERRORS.values():
            words = re.findall("[A-Z][a-z]+", cls.__name__)
            return "_".join(words[:-1]).upper()  # without the trailing "Error"
    if isinstance(error, FileNotFoundError):
        return "NOT_FOUND"
    return "UNKNOWN"


def _runtimes(model: Model) -> str:
    """Which runtime runs each signature, for the log: ``--backend openvino`` leaves to
    TensorFlow what OpenVINO cannot run, and the note says why ("serving_default on
    openvino", "f on tensorflow (...)")."""
    return ", ".join(f"{key} on {sig.backend}" + (f" ({sig.backend_note})" if sig.backend_note
                                                  else "")
                     for key, sig in model.signatures.items()) or "no callable signature"


def default_loader(**load_options: object) -> Loader:
    """A loader that calls :func:`smrt.load` with the server's session options. Shapes are
    left to TensorFlow (``check_shapes=False``) unless the options say otherwise: TF Serving
    feeds a request's tensors as they come, so ``[2.0, 3.0, 4.0]`` reaches an input declared
    ``(-1, 1)``, and a shape the graph rejects is TensorFlow's InvalidArgument (400)."""
    options = {"check_shapes": False, **load_options}

    def loader(path: str, tags: tuple[str, ...]) -> Model:
        return load(Path(path), tags, **options)  # type: ignore[arg-type]

    return loader
