"""Units of smrt serve's hardening: admission limits, a retired version's batchers, the
batch deadline and the parse-error mapping (no TensorFlow, no server process)."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from smrt.serving.core.admission import BoundedPool, ByteBudget
from smrt.serving.core.batching import Batcher
from smrt.serving.core.config import BatchingOptions
from smrt.serving.core.errors import (
    BadRequestError,
    OverloadedError,
    RequestTooLargeError,
    client_input,
    safe_text,
)
from smrt.serving.core.versions import Hold, ServedVersion

from .fakes import FakeSignature


def test_byte_budget_lets_one_big_body_through_and_refuses_past_the_limit() -> None:
    budget = ByteBudget(100)
    big = budget.reserve(500)  # alone: fine, whatever its size
    with pytest.raises(OverloadedError, match="max_parsing_bytes"):
        budget.reserve(1)
    big.release()
    big.release()  # twice: no effect
    assert budget.used == 0
    alone = budget.reserve(80)
    alone.grow(80)  # a body arriving in chunks (or inflated), alone: still let through
    assert budget.used == 160
    alone.release()
    a, b = budget.reserve(60), budget.reserve(40)
    with pytest.raises(OverloadedError):
        a.grow(1)
    a.release()
    b.grow(50)
    assert budget.used == 90
    b.release()
    assert budget.used == 0


def test_a_claim_has_one_owner_and_is_given_back_once() -> None:
    budget = ByteBudget(100)
    with budget.reserve(60) as kept:  # the block owns it: given back when the block ends
        assert budget.used == 60
    assert budget.used == 0
    with pytest.raises(RuntimeError), budget.reserve(60):  # also when the block fails
        raise RuntimeError
    assert budget.used == 0
    with budget.reserve(60) as handed:
        handed.hand_off()  # to work that gives it back when it is done
    assert budget.used == 60
    handed.release()
    handed.release()  # once only
    kept.release()
    assert budget.used == 0
    with budget.reserve(30) as passed:
        passed.hand_off()  # to a caller, whose own block owns it from then on
    with passed:
        assert budget.used == 30
    assert budget.used == 0


def test_a_hold_keeps_a_retired_version_open() -> None:
    model = FakeModel()
    served = ServedVersion(1, model)  # type: ignore[arg-type]
    served._acquire()
    with Hold(served) as hold:
        hold.hand_off()
    served.retire()
    assert not model.closed  # the work it was handed to is still running
    hold.release()
    assert model.closed


def test_bounded_pool_refuses_jobs_past_its_queue() -> None:
    pool = BoundedPool(1, 1, "test")
    gate = threading.Event()
    try:
        first = pool.submit(gate.wait)
        second = pool.submit(lambda: 2)
        with pytest.raises(OverloadedError, match="max_queued_requests"):
            pool.submit(lambda: 3)
        forced = pool.submit(lambda: 4, admit=False)  # a later step of an admitted request
        gate.set()
        assert [first.result(), second.result(), forced.result()] == [True, 2, 4]
        deadline = time.monotonic() + 5
        while pool.pending:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert pool.submit(lambda: 5).result() == 5
    finally:
        gate.set()
        pool.shutdown()


class FakeModel:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_retired_version_keeps_its_batchers_until_its_last_request_is_done() -> None:
    """A request that acquired the version before the hot swap and is still parsing must
    still be able to submit to the batcher (it got 503 'being unloaded' before)."""
    model = FakeModel()
    served = ServedVersion(1, model)  # type: ignore[arg-type]
    signature = FakeSignature()
    batcher = Batcher(signature, BatchingOptions(batch_timeout_micros=0), "m:1")  # type: ignore[arg-type]
    served.batchers["serving_default"] = batcher
    served._acquire()  # a request holds it (ServedModel.acquire)
    served.retire()  # the hot swap
    assert not model.closed
    future = batcher.submit({"x": np.ones((1, 2), np.float32)})  # the request, parsed late
    assert future.result(5)["y"].tolist() == [[2.0, 2.0]]
    served._release()
    assert model.closed
    with pytest.raises(Exception, match="being unloaded"):
        batcher.submit({"x": np.ones((1, 2), np.float32)})


def test_a_batch_runs_until_the_latest_deadline_of_its_requests() -> None:
    signature = FakeSignature()
    batcher = Batcher(signature, BatchingOptions(batch_timeout_micros=200_000), "m:1")  # type: ignore[arg-type]
    try:
        now = time.monotonic()
        futures = [batcher.submit({"x": np.ones((1, 2), np.float32)}, deadline)
                   for deadline in (now + 5, now + 30)]
        for future in futures:
            future.result(5)
        (timeout,) = signature.timeouts
        assert timeout is not None
        assert 25 < timeout <= 30
        batcher.submit({"x": np.ones((1, 2), np.float32)}).result(5)
        assert signature.timeouts[-1] is None  # no deadline, no limit
    finally:
        batcher.stop()


@pytest.mark.parametrize(("error", "status", "message"), [
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), 400,
     "the request cannot be read: UnicodeEncodeError"),
    (RecursionError(), 400, "the request nests too deeply"),
    (MemoryError(), 413, "needs more memory"),
    (OverflowError("int too large"), 400, "OverflowError: int too large"),
    (KeyError("x"), 400, "KeyError"),
])
def test_any_failure_on_client_data_is_a_4xx(error: Exception, status: int,
                                             message: str) -> None:
    with (pytest.raises((BadRequestError, RequestTooLargeError), match=message) as caught,
          client_input()):
        raise error
    assert caught.value.status == status


def test_smrt_errors_pass_through_client_input_unchanged() -> None:
    error: Any = OverloadedError("busy")
    with pytest.raises(OverloadedError), client_input():
        raise error


def test_safe_text_escapes_lone_surrogates() -> None:
    assert safe_text("a\ud800b") == "a\\ud800b"
    assert safe_text("héllo") == "héllo"


def test_flatten_json_checks_shape_and_reports_leaf_kinds() -> None:
    from smrt import _core

    assert _core.flatten_json([[1.5, 2], [True, None]], 32) == ((2, 2), [1.5, 2, True, None],
                                                                1 | 2 | 4 | 32)
    assert _core.flatten_json("s", 32) == ((), ["s"], 8)
    assert _core.flatten_json([[], []], 32) == ((2, 0), [], 0)
    assert _core.flatten_json([{"b64": "AA=="}, (1,)], 32)[2] == 16 | 64
    for ragged in ([[1], 2], [[1], [1, 2]], [[[]], []], [1, [2]]):
        with pytest.raises(ValueError, match="different lengths"):
            _core.flatten_json(ragged, 32)
    deep: Any = 1
    for _ in range(33):
        deep = [deep]
    with pytest.raises(ValueError, match="at most 32 dimensions"):
        _core.flatten_json(deep, 32)
