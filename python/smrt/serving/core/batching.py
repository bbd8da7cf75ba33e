"""Server-side batching: concurrent requests to one signature run as one session call.

Requests queue up; a batch thread takes the oldest, waits up to ``batch_timeout_micros`` for
more (until ``max_batch_size`` rows), concatenates the inputs along the first dimension, runs
the signature once and hands each request its rows of the outputs. Only requests whose
inputs agree on every dimension but the first, and that fetch the same outputs, share a batch.
A request with more rows than ``max_batch_size`` runs alone. Signatures qualify when every
input and output has a leading unknown (batch) dimension; if a batch's outputs turn out not to
follow the batch size, its requests are rerun one by one and batching is switched off for that
signature.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from smrt.errors import UnavailableError
from smrt.model import Signature

from .config import BatchingOptions
from .errors import OverloadedError

log = logging.getLogger("smrt.serve")

Arrays = dict[str, np.ndarray]


def can_batch(signature: Signature) -> bool:
    """Every input and output has a known rank >= 1 and an unknown first dimension."""
    specs = [*signature.inputs.values(), *signature.outputs.values()]
    return bool(signature.inputs) and all(
        spec.shape is not None and len(spec.shape) >= 1 and spec.shape[0] is None
        for spec in specs)


def _timeout(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


@dataclass
class _Task:
    inputs: Arrays
    rows: int
    key: tuple[object, ...]  # inputs' dtypes and trailing shapes, outputs fetched: who may share
    deadline: float | None  # time.monotonic() by which TensorFlow must be done, if any
    fetch: list[str] | None  # the outputs to compute (None: all)
    future: Future[Arrays] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


class Batcher:
    """Merges calls to one signature; :meth:`submit` returns a future of the outputs."""

    def __init__(self, signature: Signature, options: BatchingOptions, name: str) -> None:
        self.signature = signature
        self.options = options
        self.name = name
        self.enabled = True
        self.batches = 0
        """Session runs made for batches of two or more requests."""
        self.batched_requests = 0
        """Requests those runs answered."""
        self._queue: deque[_Task] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._max_queued = options.max_batch_size * options.max_enqueued_batches
        self._threads = [
            threading.Thread(target=self._loop, name=f"smrt-batch-{name}-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: Arrays, deadline: float | None = None,
               fetch: list[str] | None = None) -> Future[Arrays]:
        """Queues one request's inputs (each with the batch as first dimension); its run
        computes only the outputs in ``fetch`` (None: all). TensorFlow cancels a run still
        going at ``deadline`` (``time.monotonic()``); a batch runs until the latest deadline
        of its requests."""
        rows = {a.shape[0] if a.ndim else -1 for a in inputs.values()}
        if len(rows) != 1 or -1 in rows or not self.enabled:
            return self._run_alone(inputs, deadline, fetch)
        key = (*((k, a.dtype.str, a.shape[1:]) for k, a in sorted(inputs.items())),
               None if fetch is None else tuple(fetch))
        task = _Task(inputs, rows.pop(), key, deadline, fetch)
        with self._cond:
            if self._stopping:  # its version has no request left: a caller's bug
                raise UnavailableError(f"model {self.name} is being unloaded")
            if len(self._queue) >= self._max_queued:
                raise OverloadedError(
                    f"the batch queue of {self.name} is full ({self._max_queued} requests)")
            self._queue.append(task)
            self._cond.notify()
        return task.future

    def _run_alone(self, inputs: Arrays, deadline: float | None,
                   fetch: list[str] | None) -> Future[Arrays]:
        future: Future[Arrays] = Future()
        self._deliver(future, inputs, deadline, fetch)
        return future

    def _deliver(self, future: Future[Arrays], inputs: Arrays, deadline: float | None,
                 fetch: list[str] | None) -> None:
        """Runs one request's inputs alone; the outputs or the error go to its future."""
        try:
            future.set_result(self.signature.run(inputs, timeout=_timeout(deadline),
                                                 fetch=fetch))
        except Exception as e:  # delivered to the request
            future.set_exception(e)

    def stop(self) -> None:
        """Runs what is queued, then ends the batch threads (does not wait for them)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    # --- the batch threads ------------------------------------------------------------------

    def _loop(self) -> None:
        timeout = self.options.batch_timeout_micros / 1e6
        limit = self.options.max_batch_size
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                first = self._queue[0]
                deadline = first.enqueued + timeout
                while not self._stopping and self._rows_like(first) < limit:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._cond.wait(remaining):
                        break
                batch = self._take(first, limit)
            self._run(batch)

    def _rows_like(self, first: _Task) -> int:
        return sum(t.rows for t in self._queue if t.key == first.key)

    def _take(self, first: _Task, limit: int) -> list[_Task]:
        batch: list[_Task] = []
        rest: deque[_Task] = deque()
        rows = 0
        while self._queue:
            task = self._queue.popleft()
            if task.key == first.key and (not batch or rows + task.rows <= limit):
                batch.append(task)
                rows += task.rows
            else:
                rest.append(task)
        self._queue.extendleft(reversed(rest))
        return batch

    def _run(self, batch: list[_Task]) -> None:
        live = [t for t in batch if t.future.set_running_or_notify_cancel()]
        if not live:
            return
        if len(live) == 1:
            self._deliver(live[0].future, live[0].inputs, live[0].deadline, live[0].fetch)
            return
        deadlines = [t.deadline for t in live]
        deadline = None if None in deadlines else max(d for d in deadlines if d is not None)
        try:
            inputs = {k: np.concatenate([t.inputs[k] for t in live]) for k in live[0].inputs}
            outputs = self.signature.run(inputs, timeout=_timeout(deadline),
                                         fetch=live[0].fetch)  # the same for the batch
        except Exception as e:  # a failing batch fails its requests
            for task in live:
                task.future.set_exception(e)
            return
        total = sum(t.rows for t in live)
        if any(a.ndim == 0 or a.shape[0] != total for a in outputs.values()):
            log.warning("%s: outputs do not follow the batch size; batching switched off",
                        self.name)
            self.enabled = False
            for task in live:
                self._deliver(task.future, task.inputs, task.deadline, task.fetch)
            return
        self.batches += 1
        self.batched_requests += len(live)
        start = 0
        for task in live:
            end = start + task.rows
            task.future.set_result({k: a[start:end] for k, a in outputs.items()})
            start = end
