"""A bounded soak of ``smrt serve`` (about a minute): good, bad and hostile requests at once
while new versions are hot-swapped in every few seconds, with batching on. No good request
may fail, no reply may be a 5xx, and the server's memory must stay flat."""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from .conftest import Zoo
from .serving import ServerProcess, gauge, rss

DURATION = 60.0  # seconds of traffic
WARM_UP = 15.0  # seconds before memory is measured
SWAP_EVERY = 3.0

BAD = [b"{not json", b"", b"[1, 2]", b'{"instances": [[1, 2], [3]]}', b'{"instances": ["a"]}',
       b'{"instances": [1], "inputs": [1]}', b'{"instances": [{"y": 1}]}',
       b'{"instances": [1], "signature_name": "nope"}', b'{"instances": [true]}',
       b'{"instances": [1e39]}', b'{"instances": [null]}']
HOSTILE = [
    ("predict", json.dumps({"instances": ["A" * 5000] + [""] * 100_000}).encode()),
    ("regress", json.dumps({"signature_name": "regress_x_to_y", "context": {"pad": "c" * 2**20},
                            "examples": [{"x": 1.0}] * 200}).encode()),
    ("predict", b'{"instances":[1],"\\ud800":0}'),
    ("predict", b'{"instances":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("predict", b'{"instances":[NaN,' + b"[" * 5000 + b"]" * 5000 + b"]}"),
    ("regress", b'{"signature_name":"regress_x_to_y","examples":[{"\\ud800":1.0}]}'),
    ("predict", b'{"instances":[' + b"9" * 5000 + b"]}"),
]


def _publish(base: Path, version: int, source: str) -> None:
    """A new version appears at once: copied under a temporary name, then renamed."""
    staging = base.parent / f".staging-{version}"
    shutil.copytree(source, staging)
    os.rename(staging, base / str(version))


Sender = Callable[[requests.Session, random.Random], None]


def _loop(stop: threading.Event, send: Sender, seed: int) -> None:
    """Calls ``send`` over one connection until ``stop``."""
    session, rng = requests.Session(), random.Random(seed)
    while not stop.is_set():
        send(session, rng)


def _batching_server(zoo: Zoo, tmp_path: Path, *, poll_seconds: str,
                     batch_timeout_micros: str) -> tuple[Path, list[str], ServerProcess]:
    """A batching server of model hp at version 1 (half_plus_three), and the two sources
    versions alternate between."""
    base = tmp_path / "hp"
    base.mkdir()
    sources = [zoo.path("half_plus_two"), zoo.path("half_plus_three")]
    _publish(base, 1, sources[1])
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(base),
                           "--file_system_poll_wait_seconds", poll_seconds, "--enable_batching",
                           "--batch_timeout_micros", batch_timeout_micros, "--access_log=false")
    return base, sources, server


@pytest.mark.slow
def test_soak_hot_swaps_under_good_bad_and_hostile_traffic(zoo: Zoo, tmp_path: Path) -> None:
    base, sources, server = _batching_server(zoo, tmp_path, poll_seconds="0.2",
                                             batch_timeout_micros="2000")
    url = f"{server.url}/v1/models/hp"
    stop = threading.Event()
    failed_good: list[str] = []
    server_errors: list[str] = []
    counts: Counter[str] = Counter()

    def good(session: requests.Session, rng: random.Random) -> None:
        n = rng.choice([1, 4, 600])  # 600 floats: over 4 KB, so parsed in the pool
        xs = [round(rng.uniform(-100, 100), 3) for _ in range(n)]
        try:
            if rng.random() < 0.8:
                reply = session.post(f"{url}:predict", json={"instances": xs}, timeout=60)
                values = reply.json()["predictions"] if reply.status_code == 200 else []
            else:
                reply = session.post(f"{url}:regress", timeout=60, json={
                    "signature_name": "regress_x_to_y", "examples": [{"x": x} for x in xs]})
                values = reply.json()["results"] if reply.status_code == 200 else []
        except requests.RequestException as e:
            failed_good.append(repr(e))
            return
        counts["good"] += 1
        offsets = {round(v - 0.5 * x, 2) for v, x in zip(values, xs, strict=True)}
        if reply.status_code != 200 or len(values) != n or offsets not in ({2.0}, {3.0}):
            failed_good.append(f"{reply.status_code}: {reply.text[:200]}")

    def bad(session: requests.Session, rng: random.Random) -> None:
        reply = session.post(f"{url}:predict", data=rng.choice(BAD), timeout=60)
        counts["bad"] += 1
        if reply.status_code >= 500 or reply.status_code == 200:
            server_errors.append(f"bad request -> {reply.status_code}: {reply.text[:200]}")

    def hostile(session: requests.Session, rng: random.Random) -> None:
        api, body = rng.choice(HOSTILE)
        reply = session.post(f"{url}:{api}", data=body, timeout=60)
        counts["hostile"] += 1
        if reply.status_code >= 500 or reply.status_code == 200:
            server_errors.append(f"hostile {body[:40]!r} -> {reply.status_code}: "
                                 f"{reply.text[:200]}")

    def swap(stop: threading.Event) -> None:
        version = 1
        while not stop.wait(SWAP_EVERY):
            version += 1
            _publish(base, version, sources[version % 2])
            counts["swaps"] += 1
            old = base / str(version - 2)
            if old.exists():  # long retired: its files go too
                shutil.rmtree(old)

    workers = [threading.Thread(target=_loop, args=(stop, send, seed))
               for seed, send in enumerate([good, good, good, good, bad, hostile])]
    workers.append(threading.Thread(target=swap, args=(stop,)))
    try:
        start = time.monotonic()
        for worker in workers:
            worker.start()
        samples: list[tuple[float, int]] = []  # (seconds in, RSS): one a second
        while (now := time.monotonic() - start) < DURATION:
            time.sleep(1.0)
            samples.append((now, rss(server.process.pid)))
        # Medians over ten seconds, not two single readings: RSS moves by tens of MB from
        # second to second as large requests come and go.
        before = statistics.median(m for t, m in samples if WARM_UP <= t < WARM_UP + 10)
        after = statistics.median(m for t, m in samples if t >= DURATION - 10)
        stop.set()
        for worker in workers:
            worker.join(120)
        elapsed = time.monotonic() - start
        assert not failed_good, (len(failed_good), failed_good[:5])
        assert not server_errors, (len(server_errors), server_errors[:5])
        assert counts["swaps"] >= DURATION / SWAP_EVERY - 3, counts
        assert counts["good"] > 1000, counts
        for name in ("smrt_requests_in_flight", "smrt_parsing_bytes", "smrt_pool_jobs"):
            assert gauge(server.url, name) == 0, name
        growth = (after - before) / before
        print(f"soak: {dict(counts)} in {elapsed:.0f} s; RSS {before / 2**20:.0f} -> "
              f"{after / 2**20:.0f} MB ({growth:+.1%})")
        assert growth < 0.05, f"RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MB"
    finally:
        stop.set()
        assert server.stop() == 0, server.log
    assert "Traceback" not in server.log, server.log


def test_hot_swaps_with_batching_drop_nothing(zoo: Zoo, tmp_path: Path) -> None:
    """Requests that hold the old version while they parse (large bodies go to the pool)
    still reach its batcher after the swap: no 503 'being unloaded', no failure at all."""
    base, sources, server = _batching_server(zoo, tmp_path, poll_seconds="0.05",
                                             batch_timeout_micros="5000")
    stop = threading.Event()
    replies: Counter[int] = Counter()
    errors: list[str] = []

    def send(session: requests.Session, rng: random.Random) -> None:
        xs = [1.0] * rng.choice([1, 2000])  # 2000 floats: 10 KB, parsed in the pool
        reply = session.post(f"{server.url}/v1/models/hp:predict", json={"instances": xs},
                             timeout=60)
        replies[reply.status_code] += 1
        if reply.status_code != 200 or set(reply.json()["predictions"]) not in (
                {2.5}, {3.5}):
            errors.append(f"{reply.status_code}: {reply.text[:200]}")

    workers = [threading.Thread(target=_loop, args=(stop, send, seed)) for seed in range(6)]
    try:
        for worker in workers:
            worker.start()
        for version in range(2, 8):
            time.sleep(0.7)
            _publish(base, version, sources[version % 2])
        time.sleep(0.7)
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
        assert server.stop() == 0, server.log
    assert not errors, (len(errors), errors[:3], replies)
    assert replies[200] > 200, replies
    assert server.log.count("unloaded") >= 6, server.log
