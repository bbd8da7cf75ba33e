"""smrt serve's Batcher, without a server: merging and splitting requests, its limits,
errors and stopping."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest

from smrt.serving.core.batching import Batcher
from smrt.serving.core.config import BatchingOptions
from smrt.serving.core.errors import BadRequestError

from .fakes import FakeSignature


def _submit_together(batcher: Batcher, arrays: list[np.ndarray]) -> list[Future[Any]]:
    return [batcher.submit({"x": a}) for a in arrays]


def test_batcher_merges_and_splits() -> None:
    signature = FakeSignature()
    batcher = Batcher(signature, BatchingOptions(max_batch_size=8, batch_timeout_micros=200_000),
                      "m")  # type: ignore[arg-type]
    try:
        arrays = [np.full((n, 2), n, np.float32) for n in (1, 2, 3)]
        futures = _submit_together(batcher, arrays)
        for array, future in zip(arrays, futures, strict=True):
            np.testing.assert_array_equal(future.result(5)["y"], 2 * array)
        assert signature.calls == [6]
        assert (batcher.batches, batcher.batched_requests) == (1, 3)
    finally:
        batcher.stop()


def test_batcher_respects_max_batch_size_and_shapes() -> None:
    signature = FakeSignature()
    batcher = Batcher(signature, BatchingOptions(max_batch_size=4, batch_timeout_micros=100_000),
                      "m")  # type: ignore[arg-type]
    try:
        futures = _submit_together(batcher, [np.ones((3, 2), np.float32)] * 3)
        odd = batcher.submit({"x": np.ones((1, 3), np.float32)})  # other shape: not merged
        big = batcher.submit({"x": np.ones((9, 2), np.float32)})  # over the max: runs alone
        for future in [*futures, odd, big]:
            future.result(5)
        assert sorted(signature.calls) == [1, 3, 3, 3, 9]
    finally:
        batcher.stop()


def test_batcher_errors_reach_every_request_of_the_batch() -> None:
    batcher = Batcher(FakeSignature(), BatchingOptions(batch_timeout_micros=100_000),
                      "m")  # type: ignore[arg-type]
    try:
        good, bad = _submit_together(batcher, [np.ones((1, 2)), -np.ones((1, 2))])
        for future in (good, bad):
            with pytest.raises(BadRequestError, match="negative"):
                future.result(5)
    finally:
        batcher.stop()


def test_batcher_runs_requests_with_the_outputs_they_fetch() -> None:
    """Only requests that fetch the same outputs share a run, and it fetches those."""
    signature = FakeSignature()
    batcher = Batcher(signature, BatchingOptions(max_batch_size=8, batch_timeout_micros=200_000),
                      "m")  # type: ignore[arg-type]
    try:
        futures = [batcher.submit({"x": np.ones((n, 2), np.float32)}, None, fetch)
                   for n, fetch in ((1, ["y"]), (2, None), (3, ["y"]), (4, None))]
        for future in futures:
            future.result(5)
        runs = sorted(zip(signature.calls, signature.fetches, strict=True),
                      key=lambda run: run[0])
        assert runs == [(4, ["y"]), (6, None)]
    finally:
        batcher.stop()


def test_batcher_switches_off_when_outputs_do_not_follow_the_batch() -> None:
    signature = FakeSignature(batch_outputs=False)
    batcher = Batcher(signature, BatchingOptions(batch_timeout_micros=100_000),
                      "m")  # type: ignore[arg-type]
    try:
        a, b = _submit_together(batcher, [np.ones((1, 2)), np.ones((2, 2))])
        assert a.result(5)["y"].tolist() == [2.0]
        assert b.result(5)["y"].tolist() == [4.0]
        assert not batcher.enabled
        assert batcher.submit({"x": np.ones((1, 2))}).result(5)["y"].tolist() == [2.0]
    finally:
        batcher.stop()


def test_batcher_queue_limit_and_stop() -> None:
    release = threading.Event()

    class Slow(FakeSignature):
        def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
            release.wait(5)
            return super().__call__(**inputs)

    options = BatchingOptions(max_batch_size=1, max_enqueued_batches=2, batch_timeout_micros=0)
    batcher = Batcher(Slow(), options, "m")  # type: ignore[arg-type]
    first = batcher.submit({"x": np.ones((1, 2))})
    time.sleep(0.2)  # the batch thread is now inside the slow call
    queued = [batcher.submit({"x": np.ones((1, 2))}) for _ in range(2)]
    from smrt.errors import UnavailableError

    with pytest.raises(UnavailableError, match=r"queue .* is full"):
        batcher.submit({"x": np.ones((1, 2))})
    batcher.stop()
    with pytest.raises(UnavailableError, match="being unloaded"):
        batcher.submit({"x": np.ones((1, 2))})
    release.set()
    for future in (first, *queued):  # stopping runs what was queued
        assert future.result(5)["y"].tolist() == [[2.0, 2.0]]
