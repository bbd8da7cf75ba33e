"""One Model called from many Python threads at once gives every caller its own right answer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import smrt

from .conftest import Zoo

THREADS = 8
CALLS_PER_THREAD = 300


def test_eight_threads_get_correct_results(zoo: Zoo) -> None:
    with smrt.load(zoo.path("add_one")) as model:
        sig = model.signatures["serving_default"]

        def worker(seed: int) -> int:
            rng = np.random.default_rng(seed)
            for _ in range(CALLS_PER_THREAD):
                x = rng.standard_normal((int(rng.integers(1, 5)), 7)).astype(np.float32)
                np.testing.assert_array_equal(sig(x=x)["y"], x + 1)
            return CALLS_PER_THREAD

        with ThreadPoolExecutor(THREADS) as pool:
            done = sum(pool.map(worker, range(THREADS)))
    assert done == THREADS * CALLS_PER_THREAD


def test_string_signature_from_threads(zoo: Zoo) -> None:
    with smrt.load(zoo.path("multiple_signatures")) as model:
        parse = model.signatures["serving_default"]

        def worker(seed: int) -> None:
            for i in range(100):
                value = float(seed * 1000 + i)
                assert parse(string_input=str(value))["output_0"] == np.float32(value)

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(worker, range(THREADS)))


def test_close_waits_for_calls_in_flight(zoo: Zoo) -> None:
    model = smrt.load(zoo.path("add_one"))
    sig = model.signatures["serving_default"]
    x = np.ones((256, 256), np.float32)

    def worker() -> int:
        ok = 0
        for _ in range(200):
            try:
                np.testing.assert_array_equal(sig(x=x)["y"], x + 1)
                ok += 1
            except smrt.ModelClosedError:
                break
        return ok

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(worker) for _ in range(4)]
        model.close()
        results = [f.result() for f in futures]  # every call either ran fully or was refused
    assert model.closed
    assert all(r >= 0 for r in results)


def test_first_bfloat16_use_from_two_threads_does_not_deadlock(zoo: Zoo, run_python) -> None:
    # ml_dtypes must not be imported before the threads race to the first bfloat16 input.
    out = run_python(f"""
import sys, threading, smrt
assert "ml_dtypes" not in sys.modules
sig = smrt.load({zoo.path("all_dtypes")!r}).signatures["serving_default"]
import numpy as np
inputs = {{k: np.zeros(2, spec.numpy_dtype if k != "bf16" else np.float32)
          for k, spec in sig.inputs.items()}}
inputs["s"] = [b"a", b"b"]
results = []
def call():
    results.append(sig(**{{**inputs, "bf16": [1.5, 2.5]}})["o_bf16"].tolist())
threads = [threading.Thread(target=call) for _ in range(2)]
[t.start() for t in threads]
[t.join(60) for t in threads]
print(sum(not t.is_alive() for t in threads), results[0])
""")
    assert out.strip() == "2 [3.0, 5.0]"


def test_close_finishes_while_threads_keep_calling(zoo: Zoo) -> None:
    model = smrt.load(zoo.path("add_one"))
    sig = model.signatures["serving_default"]
    x = smrt.zeros((256, 1024), np.float32)
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                sig(x=x)
            except smrt.ModelClosedError:
                return

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    closer = threading.Thread(target=model.close)
    closer.start()
    closer.join(10)
    finished = not closer.is_alive()
    stop.set()
    for t in threads:
        t.join()
    closer.join()
    assert finished, "close() was starved by calls in flight"
    assert model.closed
