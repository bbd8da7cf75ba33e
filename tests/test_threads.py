"""One Model called from many Python threads at once gives every caller its own right answer."""

from __future__ import annotations

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
