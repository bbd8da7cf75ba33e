"""smrt serve over time: version hot swap under load, failed versions, batching, timeouts,
graceful shutdown and start-up errors, each against its own server process."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import Zoo
from .serving import ServerProcess, version_dir

POLL = ("--file_system_poll_wait_seconds", "0.1")
NO_RETRY = "--max_num_load_retries=0"  # TF Serving's default retries 5 times, a minute apart
SLOW_N = 400_000  # control_flow's "loop" signature: about a second of while_loop


def _predict(url: str, x: float, path: str = "/v1/models/hp:predict") -> float:
    reply = requests.post(url + path, json={"instances": [x]}, timeout=60)
    assert reply.status_code == 200, reply.text
    return float(reply.json()["predictions"][0])


def _wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _publish(base: Path, version: int, source: str) -> None:
    """Copies a version in as TF Serving recommends: to a temporary name, then one rename."""
    staging = base.parent / f".staging-{base.name}-{version}"
    shutil.copytree(source, staging)
    os.rename(staging, base / str(version))


def test_hot_swap_under_load_drops_no_request(zoo: Zoo, tmp_path: Path) -> None:
    base = tmp_path / "hp"
    version_dir(base, 1, zoo.path("half_plus_two"), copy=True)
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(base), *POLL,
                           "--access_log=false")
    stop = threading.Event()
    seen: list[list[float]] = [[] for _ in range(4)]
    failures: list[str] = []

    def hammer(i: int) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                reply = session.post(f"{server.url}/v1/models/hp:predict",
                                     json={"instances": [2.0]}, timeout=60)
                if reply.status_code != 200:
                    failures.append(reply.text)
                else:
                    seen[i].append(reply.json()["predictions"][0])

    try:
        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        _wait_until(lambda: all(len(s) > 20 for s in seen))
        _publish(base, 2, zoo.path("half_plus_three"))
        _wait_until(lambda: all(s[-1] == 4.0 for s in seen))  # half_plus_three(2) = 4
        count = sum(map(len, seen))
        _wait_until(lambda: sum(map(len, seen)) > count + 50)
        stop.set()
        for thread in threads:
            thread.join()
        assert failures == []
        for values in seen:  # each client sees version 1, then version 2, never back
            assert set(values) == {3.0, 4.0}
            switch = values.index(4.0)
            assert values[:switch] == [3.0] * switch
            assert values[switch:] == [4.0] * (len(values) - switch)
        status = requests.get(f"{server.url}/v1/models/hp", timeout=60).json()
        assert [(s["version"], s["state"]) for s in status["model_version_status"]] == [
            ("2", "AVAILABLE"), ("1", "END")]
        server.wait_for_log("model hp: version 1 unloaded")
    finally:
        stop.set()
        assert server.stop() == 0, server.log


def test_failed_version_is_reported_and_the_old_one_keeps_serving(zoo: Zoo,
                                                                  tmp_path: Path) -> None:
    base = tmp_path / "hp"
    version_dir(base, 1, zoo.path("half_plus_two"), copy=True)
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(base), *POLL,
                           NO_RETRY)
    try:
        broken = tmp_path / "broken"
        shutil.copytree(zoo.path("half_plus_three"), broken)
        (broken / "saved_model.pb").write_bytes(b"\x0a\xff\xff not a SavedModel")
        os.rename(broken, base / "2")
        server.wait_for_log("model hp: version 2 failed to load")
        status = requests.get(f"{server.url}/v1/models/hp", timeout=60).json()
        (v2, v1) = status["model_version_status"]
        assert v1 == {"version": "1", "state": "AVAILABLE",
                      "status": {"error_code": "OK", "error_message": ""}}
        assert v2["version"] == "2"
        assert v2["state"] == "END"
        assert v2["status"]["error_code"] == "DATA_LOSS"
        assert "saved_model.pb" in v2["status"]["error_message"]
        assert _predict(server.url, 2.0) == 3.0  # still version 1
        time.sleep(0.5)  # several polls: an unchanged broken version is not retried
        assert len(re.findall("version 2 failed to load", server.log)) == 1
        # Fixing the files makes the next poll try again.
        shutil.copy(Path(zoo.path("half_plus_three")) / "saved_model.pb", base / "2")
        _wait_until(lambda: _predict(server.url, 2.0) == 4.0)
    finally:
        assert server.stop() == 0, server.log


def test_waits_for_a_first_version_and_follows_deletions(zoo: Zoo, tmp_path: Path) -> None:
    base = tmp_path / "hp"
    base.mkdir()
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(base), *POLL)
    try:
        assert "no version under" in server.log
        reply = requests.post(f"{server.url}/v1/models/hp:predict", json={"instances": [1]},
                              timeout=60)
        assert reply.status_code == 404
        assert reply.json() == {"error": "Servable not found for request: Latest(hp)"}
        _publish(base, 1, zoo.path("half_plus_two"))
        _publish(base, 2, zoo.path("half_plus_three"))
        _wait_until(lambda: requests.get(f"{server.url}/v1/models/hp", timeout=60).json().get(
            "model_version_status", [{}])[0].get("state") == "AVAILABLE")
        assert _predict(server.url, 2.0) == 4.0
        shutil.rmtree(base / "2")  # the latest version goes: the one before comes back
        _wait_until(lambda: _predict(server.url, 2.0) == 3.0)
    finally:
        assert server.stop() == 0, server.log


def _slow_request(url: str, results: list[Any]) -> None:
    reply = requests.post(f"{url}/v1/models/flow:predict",
                          json={"signature_name": "loop", "inputs": {"n": SLOW_N}}, timeout=60)
    results.append((reply.status_code, reply.json()))


def _in_flight(url: str) -> int:
    text = requests.get(f"{url}/metrics", timeout=60).text
    match = re.search(r"^smrt_requests_in_flight (\d+)$", text, re.M)
    assert match, text
    return int(match.group(1))


def test_sigterm_lets_requests_in_flight_finish(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "flow", 1, zoo.path("control_flow"))
    server = ServerProcess("--model_name", "flow", "--model_base_path", str(tmp_path / "flow"))
    results: list[Any] = []
    client = threading.Thread(target=_slow_request, args=(server.url, results))
    client.start()
    _wait_until(lambda: _in_flight(server.url) == 1)
    assert server.stop(signal.SIGTERM) == 0, server.log
    client.join()
    expected = sum(range(SLOW_N)) % 2**32
    expected = expected - 2**32 if expected >= 2**31 else expected  # int32 wraps
    assert results == [(200, {"outputs": expected})]
    assert "shutting down" in server.log
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/v1/models/flow", timeout=5)


def test_sigterm_lets_a_request_still_sending_its_body_finish(zoo: Zoo, tmp_path: Path) -> None:
    """A request whose headers came before SIGTERM and whose body comes after is in flight
    too: its body is still read and it is answered (aiohttp drops what a connection receives
    once shutdown has closed it, so the handler waited for the body until its timeout)."""
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(tmp_path / "hp"))
    body = b'{"instances": [2.0]}'
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as conn:
        conn.sendall(b"POST /v1/models/hp:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        _wait_until(lambda: _in_flight(server.url) == 1)
        server.process.send_signal(signal.SIGTERM)
        server.wait_for_log("shutting down")
        time.sleep(0.2)  # the shutdown goes on while the body is on its way
        conn.sendall(body)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert server.process.wait(60) == 0, server.log  # signalled already
    head, _, answer = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply
    assert json.loads(answer) == {"predictions": [3.0]}


def test_sigterm_lets_an_answer_still_being_sent_finish(zoo: Zoo, tmp_path: Path) -> None:
    """An answer larger than the sockets' buffers, to a client that reads it late, is sent
    whole after SIGTERM: the request stays in flight until its answer has left the server's
    buffers. It used to count as done once the handler returned, and the connection was cut a
    second or two later; then once aiohttp's write_eof returned, which leaves up to 16 KB in
    asyncio's buffer, lost when the process exits first (a race CI lost by 697 bytes)."""
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(tmp_path / "hp"))
    n = 2_000_000
    body = b'{"instances": [' + b"2.0, " * (n - 1) + b'2.0]}'
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the answer waits on us
        conn.settimeout(60)
        conn.connect((host, int(port)))
        conn.sendall(b"POST /v1/models/hp:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        _wait_until(lambda: _in_flight(server.url) == 1)
        server.process.send_signal(signal.SIGTERM)
        server.wait_for_log("shutting down")
        time.sleep(3)  # longer than the shutdown gives connections once requests are done
        chunks = []
        while chunk := conn.recv(1 << 20):
            chunks.append(chunk)
    assert server.process.wait(60) == 0, server.log  # signalled already
    head, _, answer = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    predictions = json.loads(answer)["predictions"]
    assert len(predictions) == n
    assert predictions[0] == predictions[-1] == 3.0
    assert b"Connection: close" in head  # the server is stopping: no keep-alive


def test_sigterm_cuts_what_outlasts_the_grace_period(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "flow", 1, zoo.path("control_flow"))
    server = ServerProcess("--model_name", "flow", "--model_base_path", str(tmp_path / "flow"),
                           "--shutdown_timeout_seconds=0.5")
    outcome: list[object] = []

    def slow() -> None:
        try:
            outcome.append(requests.post(
                f"{server.url}/v1/models/flow:predict", timeout=60,
                json={"signature_name": "loop", "inputs": {"n": 5 * SLOW_N}}).status_code)
        except requests.ConnectionError as e:
            outcome.append(e)

    client = threading.Thread(target=slow)
    client.start()
    _wait_until(lambda: _in_flight(server.url) == 1)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.wait_for_log("REST requests still in flight after 0.5 s are cut")
    client.join()
    assert time.monotonic() - started < 4  # the run takes about 5 s: the reply did not wait
    assert len(outcome) == 1
    assert outcome[0] != 200, outcome
    assert server.process.wait(60) == 0, server.log


def test_quick_requests_overlap_a_slow_one(zoo: Zoo, tmp_path: Path) -> None:
    """The session run releases the GIL and the event loop never runs a model: while one
    request spends a second in TensorFlow, others are answered."""
    version_dir(tmp_path / "flow", 1, zoo.path("control_flow"))
    server = ServerProcess("--model_name", "flow", "--model_base_path", str(tmp_path / "flow"))
    try:
        results: list[Any] = []
        slow = threading.Thread(target=_slow_request, args=(server.url, results))
        slow.start()
        _wait_until(lambda: _in_flight(server.url) == 1)
        for x, expected in [(4, 1), (5, 2), (-3, -1)] * 5:
            reply = requests.post(f"{server.url}/v1/models/flow:predict",
                                  json={"inputs": {"x": x}}, timeout=60)
            assert reply.json() == {"outputs": expected}
        assert slow.is_alive()  # all of the above were answered during the slow run
        assert results == []
        slow.join()
        assert results[0][0] == 200
    finally:
        assert server.stop() == 0, server.log


def test_request_timeout_is_a_504(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "flow", 1, zoo.path("control_flow"))
    server = ServerProcess("--model_name", "flow", "--model_base_path", str(tmp_path / "flow"),
                           "--rest_api_timeout_in_ms", "200")
    try:
        results: list[Any] = []
        _slow_request(server.url, results)
        assert results == [(504, {"error": "the request took longer than 0.2 s"})]
        # The server is fine afterwards.
        reply = requests.post(f"{server.url}/v1/models/flow:predict",
                              json={"inputs": {"x": 4}}, timeout=60)
        assert reply.json() == {"outputs": 1}
    finally:
        assert server.stop() == 0, server.log


def test_batching_merges_concurrent_requests(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(tmp_path / "hp"),
                           "--enable_batching", "--max_batch_size", "16",
                           "--batch_timeout_micros", "20000", "--access_log=false")
    try:
        def call(i: int) -> tuple[float, float]:
            reply = requests.post(f"{server.url}/v1/models/hp:predict",
                                  json={"instances": [float(i), float(i + 1)]}, timeout=60)
            assert reply.status_code == 200, reply.text
            first, second = reply.json()["predictions"]
            return first, second

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(call, range(160)))
        assert results == [(0.5 * i + 2, 0.5 * (i + 1) + 2) for i in range(160)]
        metrics = requests.get(f"{server.url}/metrics", timeout=60).text
        labels = 'model="hp",version="1",signature="serving_default"'
        batches = int(re.search(rf"^smrt_batches_total\{{{labels}\}} (\d+)$", metrics,
                                re.M).group(1))  # type: ignore[union-attr]
        batched = int(re.search(rf"^smrt_batched_requests_total\{{{labels}\}} (\d+)$",
                                metrics, re.M).group(1))  # type: ignore[union-attr]
        assert batches > 0
        assert batched > batches  # two or more requests per session run
        # Errors still reach the right request; signatures that cannot batch run as before.
        reply = requests.post(f"{server.url}/v1/models/hp:predict", json={"instances": ["x"]},
                              timeout=60)
        assert reply.status_code == 400
        reply = requests.post(f"{server.url}/v1/models/hp:regress", timeout=60, json={
            "signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]})
        assert reply.json() == {"results": [3.0]}
    finally:
        assert server.stop() == 0, server.log


def _start_fails(*args: str) -> str:
    """Runs ``smrt serve ARGS``, which must exit 1 at once; returns its stderr."""
    result = subprocess.run([sys.executable, "-m", "smrt", "serve", "--rest_api_port", "0",
                             *args], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_start_up_errors_are_one_clear_line(zoo: Zoo, tmp_path: Path) -> None:
    assert "base path" in _start_fails("--model_base_path", str(tmp_path / "nope"))
    assert "give --model_base_path" in _start_fails("--model_name", "m")
    config = tmp_path / "bad.config"
    config.write_text("model_config_list { config { name: 'a' base_path: '/' } ")
    assert "missing '}'" in _start_fails("--model_config_file", str(config))
    assert "--rest_api_num_threads must be positive, not 0" in _start_fails(
        "--model_base_path", str(tmp_path), "--rest_api_num_threads", "0")
    assert "need --enable_batching" in _start_fails(
        "--model_base_path", str(tmp_path), "--max_batch_size", "8")
    err = _start_fails("--model_base_path", zoo.path("half_plus_two"))  # a version, not a base
    assert f"is itself a SavedModel; the base path holds numbered version directories (here: " \
        f"{Path(zoo.path('half_plus_two')).parent})" in err
    broken = tmp_path / "broken"
    shutil.copytree(zoo.path("half_plus_two"), broken / "1")
    (broken / "1" / "saved_model.pb").write_bytes(b"")
    assert "version 1 failed to load" in _start_fails("--model_base_path", str(broken), NO_RETRY)


def test_op_policy_refuses_a_version_before_it_loads(zoo: Zoo, tmp_path: Path) -> None:
    base = tmp_path / "m"
    version_dir(base, 1, zoo.path("hidden_file_reads"))
    err = _start_fails("--model_name", "m", "--model_base_path", str(base),
                       "--op_policy", "strict", NO_RETRY)
    assert re.search(r"version 1 failed to load: .*'ReadFile' \(in .*function 'cond_true_", err)
    # A version the policy refuses, published later, fails alone; the served one stays.
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(tmp_path / "hp"),
                           "--op_policy", "default", *POLL, NO_RETRY)
    try:
        version_dir(tmp_path / "hp", 2, zoo.path("hidden_file_reads"))
        server.wait_for_log("model hp: version 2 failed to load")
        status = requests.get(f"{server.url}/v1/models/hp", timeout=60).json()
        (v2, _) = status["model_version_status"]
        assert v2["status"]["error_code"] == "PERMISSION_DENIED"
        assert "op policy 'default' denies" in v2["status"]["error_message"]
        assert _predict(server.url, 2.0) == 3.0
    finally:
        assert server.stop() == 0


def test_port_in_use(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "smrt", "serve", "--model_base_path", str(tmp_path / "hp"),
             "--rest_api_port", str(port)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "address already in use" in result.stderr.lower()
