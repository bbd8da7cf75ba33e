"""``Signature.run(inputs, timeout=...)``: TensorFlow cancels a step that overruns its deadline."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

import numpy as np
import pytest

import smrt
from smrt.errors import DeadlineExceededError, InvalidInputError

FOREVER = np.int32(2**31 - 1)  # control_flow's "loop" signature: hours of while_loop


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_a_deadline_cancels_the_step(loaded: Callable[[str], smrt.Model]) -> None:
    sig = loaded("control_flow").signatures["loop"]
    start = time.monotonic()
    with pytest.raises(DeadlineExceededError, match="running signature 'loop'"):
        sig.run({"n": FOREVER}, timeout=0.2)
    assert time.monotonic() - start < 5  # TensorFlow stopped the while loop
    cpu = _cpu_seconds()
    time.sleep(0.5)
    assert _cpu_seconds() - cpu < 0.25  # nothing keeps computing in the background
    assert sig.run({"n": np.int32(10)}, timeout=5)["y"] == 45  # the session is fine


def test_run_takes_a_dict_and_no_timeout_means_none(loaded: Callable[[str], smrt.Model]) -> None:
    sig = loaded("control_flow").signatures["loop"]
    assert sig.run({"n": 4})["y"] == sig(n=4)["y"] == 6
    with pytest.raises(DeadlineExceededError, match="deadline passed before the run"):
        sig.run({"n": 4}, timeout=0)
    with pytest.raises(InvalidInputError, match="timeout"):
        sig.run({"n": 4}, timeout=float("nan"))
    with pytest.raises(InvalidInputError, match="missing input 'n'"):
        sig.run({}, timeout=1)
