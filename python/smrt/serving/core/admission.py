"""Admission control: what the server takes on at once, so hostile or bursty traffic gets a
quick 503 (with ``Retry-After``) instead of growing memory or queues without limit.

* :class:`ByteBudget`: request bodies being read or parsed at once, in bytes. Parsing JSON
  costs a bounded multiple of the body (Python objects per JSON value), so bounding the bodies
  bounds the parsing memory of the whole server.
* :class:`BoundedPool`: a thread pool whose queue of waiting jobs is bounded.
* :class:`Claim`: what a request holds and gives back exactly once (its bytes here, its
  model version in :mod:`.versions`), with one owner at a time.

Both are thread-safe: bytes are given back from pool threads, jobs end in pool threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from .errors import OverloadedError

T = TypeVar("T")


class ByteBudget:
    """At most ``limit`` bytes reserved at once; one reservation larger than the whole budget
    is still let through when nothing else is reserved, so any body the size limit allows can
    be served on an idle server."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    def reserve(self, size: int) -> Reservation:
        """Reserves ``size`` bytes; OverloadedError (503) if they do not fit now."""
        reservation = Reservation(self)
        reservation.grow(size)
        return reservation

    def _take(self, size: int, held: int) -> None:
        """Takes ``size`` more bytes for a reservation already holding ``held``."""
        with self._lock:
            if self._used > held and self._used + size > self.limit:
                raise OverloadedError(
                    f"the server is parsing {self._used} bytes of requests, its limit is "
                    f"{self.limit} (--max_parsing_bytes); retry shortly")
            self._used += size

    def _give(self, size: int) -> None:
        with self._lock:
            self._used -= size


C = TypeVar("C", bound="Claim")


class Claim:
    """Something a request holds and must give back exactly once, from whichever thread its
    work ends on: :meth:`release` is idempotent and thread-safe.

    One owner at a time: the ``with`` block that entered it last gives it back when the block
    ends, unless the block handed it (:meth:`hand_off`) to work that gives it back itself, e.g.
    a pool job with ``future.add_done_callback(claim.release)``, or to a caller, whose own
    ``with`` owns it from then on. So a claim is never given back while work still uses it,
    nor kept when nothing does.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._released = False
        self._handed_off = False

    def release(self, _: object = None) -> None:
        """Gives the claim back; later calls do nothing. (The ignored argument lets it be a
        future's done-callback.)"""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._give_back()

    def hand_off(self) -> None:
        """The block owning the claim passes it on: leaving the block no longer releases it."""
        with self._lock:
            self._handed_off = True

    def __enter__(self: C) -> C:
        with self._lock:
            self._handed_off = False  # this block owns it now
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            handed_off = self._handed_off
        if not handed_off:
            self.release()

    def _give_back(self) -> None:
        raise NotImplementedError


class Reservation(Claim):
    """Bytes held in a :class:`ByteBudget`; :meth:`release` gives them back."""

    def __init__(self, budget: ByteBudget) -> None:
        super().__init__()
        self._budget = budget
        self._size = 0

    def grow(self, size: int) -> None:
        """Reserves ``size`` more bytes (a body arriving in chunks); may raise OverloadedError."""
        with self._lock:
            if self._released:
                return
            self._budget._take(size, self._size)
            self._size += size

    def _give_back(self) -> None:
        with self._lock:
            size, self._size = self._size, 0
        self._budget._give(size)


class BoundedPool:
    """A ThreadPoolExecutor that refuses work (OverloadedError, 503) once ``max_queued`` jobs
    already wait for one of its ``threads``."""

    def __init__(self, threads: int, max_queued: int, name: str) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=name)
        self._limit = threads + max_queued
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished (running or waiting)."""
        with self._lock:
            return self._pending

    def submit(self, fn: Callable[..., T], *args: Any, admit: bool = True) -> Future[T]:
        """Runs ``fn(*args)`` in a thread. ``admit=False`` skips the limit, for a request's
        later steps (it was admitted already; refusing it now would waste its work)."""
        with self._lock:
            if admit and self._pending >= self._limit:
                raise OverloadedError(
                    f"the server has {self._pending} requests in progress or waiting for a "
                    f"thread, its limit (--rest_api_num_threads + --max_queued_requests); "
                    "retry shortly")
            self._pending += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._done()
            raise
        future.add_done_callback(lambda _: self._done())
        return future

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
