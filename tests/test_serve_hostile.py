"""Hostile requests against a real ``smrt serve`` process: small bodies that used to balloon
its memory, bodies that used to give a 5xx, the admission limits (503 + Retry-After), a
timeout that must stop TensorFlow, odd version directories, and a deterministic fuzz of
mutated JSON bodies. Memory is measured in the server process, at its peak."""

from __future__ import annotations

import base64
import gzip
import json
import random
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from smrt import tf_example

from .conftest import Zoo
from .serving import ServerProcess, gauge, peak_rss_growth, rss, version_dir

MB = 1 << 20


def _bound(body: bytes) -> int:
    """The issue's bound on what one request may add to the server: 64 MB + 8 x body."""
    return 64 * MB + 8 * len(body)


@pytest.fixture(scope="module")
def server(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("hostile")
    version_dir(root / "hp", 1, zoo.path("half_plus_two"))
    for name, source in [("echo", "bytes_echo"), ("dtypes", "all_dtypes"),
                         ("parse", "parse_example"), ("dynamic", "dynamic_shapes")]:
        version_dir(root / name, 1, zoo.path(source))
    config = root / "models.config"
    config.write_text("model_config_list {" + "".join(
        f' config {{ name: "{n}" base_path: "{root / n}" }}'
        for n in ("hp", "echo", "dtypes", "parse", "dynamic")) + " }")
    server = ServerProcess("--model_config_file", str(config), "--access_log=false")
    yield server
    assert server.stop() == 0, server.log
    assert "Traceback" not in server.log, server.log


def _post(server: ServerProcess, path: str, body: bytes) -> requests.Response:
    return server.post(path, data=body, headers={"Content-Type": "application/json"})


def _attack(server: ServerProcess, path: str, body: bytes,
            ) -> tuple[int, requests.Response]:
    """Sends ``body``; returns the server's peak memory growth and the reply."""
    pid = server.process.pid
    return peak_rss_growth(pid, lambda: _post(server, path, body))


def _assert_idle(server: ServerProcess) -> None:
    """Every gauge is back to rest: no request in flight, no body held, no job queued."""
    for name in ("smrt_requests_in_flight", "smrt_parsing_bytes", "smrt_pool_jobs"):
        assert gauge(server.url, name) == 0, name


def _wait_for_gauge(server: ServerProcess, name: str, value: float,
                    timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while gauge(server.url, name) != value:
        assert time.monotonic() < deadline, f"{name} never became {value}"
        time.sleep(0.01)


def _settled(server: ServerProcess) -> None:
    """A few small requests first, so lazily allocated buffers are not counted as growth."""
    for _ in range(3):
        _post(server, "/v1/models/hp:predict", b'{"instances": [1.0]}')


# --- memory -------------------------------------------------------------------------------------


@pytest.mark.parametrize("empties", [20_000, 100_000])
def test_strings_among_floats_are_refused_before_numpy_sees_them(server: ServerProcess,
                                                                 empties: int) -> None:
    """65 KB (or 300 KB) of ["AAAA...", "", "", ...] for a float input: NumPy would build a
    <U5000 array of every element (400 MB, or 2 GB)."""
    _settled(server)
    body = json.dumps({"instances": ["A" * 5000] + [""] * empties}).encode()
    growth, reply = _attack(server, "/v1/models/hp:predict", body)
    assert reply.status_code == 400, reply.text
    assert "input 'x': got strings for a float32 tensor" in reply.json()["error"]
    assert growth < _bound(body), f"{growth / MB:.0f} MB for a {len(body) // 1024} KB body"
    _assert_idle(server)


def test_a_context_is_not_copied_into_every_example_without_bound(server: ServerProcess) -> None:
    """A 1 MiB context with 200 examples would be 200 MiB of serialized examples."""
    _settled(server)
    body = json.dumps({"signature_name": "regress_x_to_y", "context": {"pad": "c" * MB},
                       "examples": [{"x": float(i)} for i in range(200)]}).encode()
    growth, reply = _attack(server, "/v1/models/hp:regress", body)
    assert reply.status_code == 413, reply.text
    assert "the context" in reply.json()["error"]
    assert growth < _bound(body), f"{growth / MB:.0f} MB for a {len(body) // 1024} KB body"
    # A context of ordinary size still reaches every example, encoded once.
    body = json.dumps({"signature_name": "regress_x_to_y", "context": {"bias": 1.0,
                       "pad": "c" * 20_000}, "examples": [{"x": 2.0}] * 200}).encode()
    growth, reply = _attack(server, "/v1/models/hp:regress", body)
    assert reply.json() == {"results": [4.0] * 200}
    assert growth < _bound(body), f"{growth / MB:.0f} MB for a {len(body) // 1024} KB body"
    _assert_idle(server)


def test_many_tiny_values_cost_a_bounded_multiple_of_the_body(server: ServerProcess) -> None:
    """The densest JSON there is ([[], [], ...], {} objects, short strings) stays within
    64 MB + 8 x body at these sizes, and so does a big valid request."""
    _settled(server)
    for body in [
        b'{"instances": [' + b",".join([b"[]"] * 400_000) + b"]}",
        b'{"instances": [' + b",".join([b"{}"] * 400_000) + b"]}",
        b'{"instances": [' + b",".join([b'"a"'] * 300_000) + b"]}",
        b'{"instances": [' + b",".join([b"1"] * 500_000) + b"]}",
    ]:
        growth, reply = _attack(server, "/v1/models/hp:predict", body)
        assert reply.status_code in (200, 400), reply.text
        assert growth < _bound(body), f"{growth / MB:.0f} MB for {body[:30]!r}"
    _assert_idle(server)


def test_the_worst_case_multiple_is_about_30(server: ServerProcess) -> None:
    """A body of nothing but empty lists is the worst case: a Python list (64 bytes with its
    pointer) per 2 bytes of JSON. Memory stays proportional to the body all the same."""
    _settled(server)
    body = b'{"instances": [' + b",".join([b"[]"] * 4_000_000) + b"]}"  # 12 MB
    growth, reply = _attack(server, "/v1/models/hp:predict", body)
    assert reply.status_code == 400, reply.text
    assert growth < 64 * MB + 36 * len(body), f"{growth / MB:.0f} MB for {len(body) // MB} MB"
    _assert_idle(server)


def test_a_gzip_bomb_is_refused_without_inflating_it_whole(server: ServerProcess) -> None:
    """200 KB of gzip inflating to 200 MB: aiohttp's own decoding inflated all of it before
    the size check; the server inflates a megabyte at a time and stops past the limit."""
    _settled(server)
    body = gzip.compress(b'{"instances": [' + b" " * (200 * MB) + b"1]}", 9)
    pid = server.process.pid
    growth, reply = peak_rss_growth(pid, lambda: server.post(
        "/v1/models/hp:predict", data=body, headers={"Content-Encoding": "gzip"}))
    assert reply.status_code == 413, reply.text
    assert "inflates to more than the limit" in reply.json()["error"]
    assert growth < 64 * MB + 24 * MB, f"{growth / MB:.0f} MB"  # the 64 MiB limit, and a chunk
    _assert_idle(server)


@pytest.mark.parametrize(("encoding", "body", "status"), [
    ("gzip", gzip.compress(b'{"instances": [1.0]}'), 200),
    ("deflate", zlib.compress(b'{"instances": [1.0]}'), 200),
    ("deflate", zlib.compress(b'{"instances": [1.0]}')[2:-4], 200),  # raw deflate
    ("GZIP", gzip.compress(b'{"instances": [1.0]}'), 200),
    ("identity", b'{"instances": [1.0]}', 200),
    ("gzip", gzip.compress(b'{"instances": [1.0]}')[:-9], 400),  # truncated
    ("gzip", b"not gzip at all", 400),
    ("gzip", gzip.compress(b'{"instances": [1.0]}') * 2, 400),  # two members
    ("br", b"\x0b\x02\x80", 415),
    ("gzip, deflate", b"", 415),
])
def test_compressed_bodies(server: ServerProcess, encoding: str, body: bytes,
                           status: int) -> None:
    reply = server.post("/v1/models/hp:predict", data=body,
                        headers={"Content-Encoding": encoding})
    assert reply.status_code == status, reply.text
    if status == 200:
        assert reply.json() == {"predictions": [2.5]}
    _assert_idle(server)


# --- no 5xx, every gauge restored ---------------------------------------------------------------


SURROGATE = '"\\ud800"'


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/v1/models/hp:predict", '{"instances":[1],"\\ud800":0}', 400),
    ("/v1/models/hp:predict", '{"instances":[1],"signature_name":"\\udfff"}', 404),
    ("/v1/models/hp:predict", '{"inputs":{"\\ud800":[1]}}', 400),
    ("/v1/models/echo:predict", '{"instances":[' + SURROGATE + ']}', 200),
    ("/v1/models/hp:regress",
     '{"signature_name":"regress_x_to_y","examples":[{"\\ud800":1.0}]}', 400),
    ("/v1/models/hp:regress",
     '{"signature_name":"regress_x_to_y","examples":[{"x":' + SURROGATE + '}]}', 400),
    ("/v1/models/hp:classify",
     '{"signature_name":"classify_x_to_y","context":{"\\udbff":1},"examples":[{"x":1}]}', 400),
    ("/v1/models/hp:predict", '{"instances":[' + "[" * 100_000 + "]" * 100_000 + "]}", 400),
    ("/v1/models/hp:predict", '{"instances":' + "[" * 500 + "1" + "]" * 500 + "}", 400),
    ("/v1/models/hp:predict", '{"instances":[NaN,' + "[" * 5000 + "]" * 5000 + "]}", 400),
    ("/v1/models/hp:predict", '{"instances":[' + "9" * 5000 + "]}", 400),
    ("/v1/models/hp:predict", '{"instances":[1e999999, -1e999999]}', 200),
    ("/v1/models/dtypes:predict", '{"signature_name":"scalars","inputs":{"a":1,"b":'
     + "9" * 30 + ',"c":"x"}}', 400),
    ("/v1/models/hp:predict", '{"instances":[1],"instances":[[[1]]]}', 400),
    ("/v1/models/hp:predict", '{"instances":' + json.dumps([[1.0]] * 3 + [[1.0, 2.0]]) + "}",
     400),
])
def test_no_body_gives_a_5xx_and_the_in_flight_gauge_comes_back(
        server: ServerProcess, path: str, body: str, status: int) -> None:
    reply = _post(server, path, body.encode())
    assert reply.status_code == status, reply.text
    assert "error" in reply.json() or status == 200
    _assert_idle(server)


@pytest.mark.parametrize("path", [
    "/v1/models/%ED%A0%80:predict", "/v1/models/%ff%fe:predict", "/v1/models/hp%00:predict",
    "/v1/models/hp/versions/99999999999999999999999:predict",
    "/v1/models/hp/versions/%C2%B2:predict", "/v1/models/hp/labels/%ED%A0%80:predict",
    "/v1/models/hp/versions/1%2F..%2F2/metadata", "/v1/models/" + "a" * 10_000 + ":predict",
], ids=lambda path: path[:40])
def test_odd_urls_are_4xx(server: ServerProcess, path: str) -> None:
    reply = _post(server, path, b'{"instances": [1.0]}')
    assert 400 <= reply.status_code < 500, reply.text
    _assert_idle(server)


def test_error_messages_escape_lone_surrogates(server: ServerProcess) -> None:
    reply = _post(server, "/v1/models/hp:predict", b'{"instances":[1],"\\ud800":0}')
    assert reply.json() == {"error": "unknown field(s) in the request: \\ud800"}


# --- admission: 503 with Retry-After instead of unbounded queues -----------------------------


def _half_sent(url: str, path: str, length: int) -> socket.socket:
    """A POST whose body is declared as ``length`` bytes but only partly sent."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=60)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode())
    sock.sendall(b'{"instances": [')
    return sock


def _status_of(sock: socket.socket) -> int | None:
    """The HTTP status the server answered on ``sock``, or None if it closed without one."""
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    return int(reply.split(b" ", 2)[1]) if reply else None


def test_a_body_cut_short_is_a_400(server: ServerProcess) -> None:
    # The client stops sending (half-closes) before its declared length: its doing, not a 500
    # (the fixture also checks that no traceback was logged). aiohttp may also see the end of
    # the connection first and close it without a reply.
    with _half_sent(server.url, "/v1/models/hp:predict", 100) as sock:
        sock.shutdown(socket.SHUT_WR)
        assert _status_of(sock) in (400, None)
    _wait_for_gauge(server, "smrt_parsing_bytes", 0)


def test_a_body_sent_too_slowly_times_out_and_gives_its_bytes_back(zoo: Zoo,
                                                                    tmp_path: Path) -> None:
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(tmp_path / "hp"),
                           "--rest_api_timeout_in_ms", "1000")
    try:
        with _half_sent(server.url, "/v1/models/hp:predict", 10_000_000) as sock:
            _wait_for_gauge(server, "smrt_parsing_bytes", 10_000_000)
            assert _status_of(sock) == 504  # the request's time limit covers its body too
        _wait_for_gauge(server, "smrt_parsing_bytes", 0, timeout=5)
    finally:
        assert server.stop() == 0, server.log


def test_parsing_budget_answers_503_with_retry_after(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(tmp_path / "hp"),
                           "--max_parsing_bytes", "10000")
    try:
        values = b",".join([b"1.0"] * 3000)  # 12 KB: more than the whole budget
        body = b'{"instances": [' + values + b"]}"
        # Alone, a body larger than the budget is still served.
        assert _post(server, "/v1/models/hp:predict", body).status_code == 200
        slow = _half_sent(server.url, "/v1/models/hp:predict", len(body))
        _wait_for_gauge(server, "smrt_parsing_bytes", len(body))  # its declared length
        reply = _post(server, "/v1/models/hp:predict", b'{"instances": [1.0]}')
        assert reply.status_code == 503, reply.text
        assert reply.headers["Retry-After"] == "1"
        assert "--max_parsing_bytes" in reply.json()["error"]
        slow.sendall(body[len(b'{"instances": ['):])
        head = slow.recv(4096)
        slow.close()
        assert head.startswith(b"HTTP/1.1 200"), head
        assert _post(server, "/v1/models/hp:predict", b'{"instances": [1.0]}').json() == {
            "predictions": [2.5]}
        _assert_idle(server)
    finally:
        assert server.stop() == 0, server.log


FOREVER = 2**31 - 1  # control_flow's "loop" signature: hours of while_loop


def _loop(url: str, n: int, results: list[Any] | None = None) -> requests.Response:
    reply = requests.post(f"{url}/v1/models/flow:predict",
                          json={"signature_name": "loop", "inputs": {"n": n}}, timeout=120)
    if results is not None:
        results.append(reply)
    return reply


def test_a_full_pool_queue_answers_503_with_retry_after(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "flow", 1, zoo.path("control_flow"))
    server = ServerProcess("--model_name", "flow", "--model_base_path", str(tmp_path / "flow"),
                           "--rest_api_num_threads", "1", "--max_queued_requests", "0",
                           "--rest_api_timeout_in_ms", "3000")
    try:
        results: list[Any] = []
        busy = threading.Thread(target=_loop, args=(server.url, FOREVER, results))
        busy.start()
        _wait_for_gauge(server, "smrt_pool_jobs", 1)  # the loop holds the only thread
        reply = _loop(server.url, 3)
        assert reply.status_code == 503, reply.text
        assert reply.headers["Retry-After"] == "1"
        busy.join()
        assert results[0].status_code == 504
        _wait_for_gauge(server, "smrt_pool_jobs", 0, timeout=2.0)  # TensorFlow let go
        assert _loop(server.url, 3).json() == {"outputs": 3}  # the one thread is free again
    finally:
        assert server.stop() == 0, server.log


# --- a 504 stops TensorFlow ---------------------------------------------------------------------


def test_a_timed_out_request_stops_tensorflow(zoo: Zoo, tmp_path: Path) -> None:
    """With one thread, the next request is answered at once only if the timed-out run gave
    its thread back; and the server's CPU use stops."""
    version_dir(tmp_path / "flow", 1, zoo.path("control_flow"))
    server = ServerProcess("--model_name", "flow", "--model_base_path", str(tmp_path / "flow"),
                           "--rest_api_num_threads", "1", "--rest_api_timeout_in_ms", "500")
    try:
        process = psutil.Process(server.process.pid)
        start = time.monotonic()
        reply = _loop(server.url, FOREVER)
        assert reply.status_code == 504, reply.text
        assert time.monotonic() - start < 5
        start = time.monotonic()
        assert _loop(server.url, 10).json() == {"outputs": 45}
        assert time.monotonic() - start < 1
        cpu = sum(process.cpu_times()[:2])
        time.sleep(1.0)
        assert sum(process.cpu_times()[:2]) - cpu < 0.3  # nothing loops on in TensorFlow
    finally:
        assert server.stop() == 0, server.log


# --- version directories ------------------------------------------------------------------------


def test_version_directories_that_are_not_ascii_numbers_are_ignored(zoo: Zoo,
                                                                   tmp_path: Path) -> None:
    base = tmp_path / "hp"
    version_dir(base, 1, zoo.path("half_plus_two"))
    for name in ("²", "٣", "1.5", "-2"):
        (base / name).symlink_to(zoo.path("half_plus_three"), target_is_directory=True)
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(base),
                           "--file_system_poll_wait_seconds", "0.1")
    try:
        time.sleep(0.5)  # several polls
        reply = server.post("/v1/models/hp:predict", json={"instances": [1.0]})
        assert reply.json() == {"predictions": [2.5]}
        assert server.get("/v1/models/hp/versions/٣").status_code == 404
        assert "polling failed" not in server.log
    finally:
        assert server.stop() == 0, server.log


# --- fuzz ---------------------------------------------------------------------------------------


def _seeds() -> list[tuple[str, Any]]:
    """Valid requests over floats, strings, scalars of several dtypes and tf.Examples."""
    examples = [{"x": 1.0}, {"x": -4.0, "bias": 0.25}]
    serialized = base64.b64encode(tf_example.encode({"x": [1.5], "ids": [1, 2],
                                                  "name": "n"})).decode()
    return [
        ("/v1/models/hp:predict", {"instances": [1.0, 2.0, 5.0]}),
        ("/v1/models/hp:predict", {"signature_name": "serving_default",
                                   "inputs": {"x": [1, 2.5, -3e2]}}),
        ("/v1/models/hp:regress", {"signature_name": "regress_x_to_y", "examples": examples,
                                   "context": {"bias": 2.0}}),
        ("/v1/models/hp:classify", {"signature_name": "classify_x_to_y", "examples": examples}),
        ("/v1/models/hp:classify", {"signature_name": "classify_scores_only",
                                    "examples": [{"x": [3.0], "bias": [1.5]}]}),
        ("/v1/models/echo:predict", {"instances": [{"b64": "/wA="}, "text", ""]}),
        ("/v1/models/echo:predict", {"inputs": {"image_bytes": ["é", {"b64": "AAAA"}]}}),
        ("/v1/models/dtypes:predict", {"signature_name": "scalars",
                                       "inputs": {"a": 1.25, "b": 2**40, "c": "s"}}),
        ("/v1/models/dynamic:predict", {"inputs": {"x": [[[1, 2, 3], [4, 5, 6]]],
                                                   "z": [[1.0], [2.0]]}}),
        ("/v1/models/parse:predict", {"instances": [{"b64": serialized}]}),
        ("/v1/models/parse:predict", {"inputs": {"examples": [{"b64": serialized}] * 2}}),
    ]


TOKENS = ['"\\ud800"', "NaN", "-Infinity", "1e999", "-0", "[", "]", "{", "}", ",", ":", "null",
          "true", '""', "99999999999999999999999", '"\\u0000"', '{"b64": "!!"}',
          '{"b64": 1}', "[[[[[[[[[[", "1.5", '"x"', '"instances"', "\\", '"']

VALUES: list[Any] = [None, True, 0, -1, 2**64, -(2**63) - 1, 1.5, 1e308, "", "s" * 1000,
                     "\ud800", [], [[]], [1, [2]], {}, {"b64": "AA=="}, {"b64": "%%"},
                     {"a": [1]}, [[1.0] * 3] * 3, ["a", 1, None]]


def _replace_random_node(rng: random.Random, node: Any) -> Any:
    """``node`` with one value somewhere inside swapped for another kind."""
    if isinstance(node, dict) and node and rng.random() < 0.8:
        key = rng.choice(sorted(node))
        return {**node, key: _replace_random_node(rng, node[key])}
    if isinstance(node, list) and node and rng.random() < 0.8:
        i = rng.randrange(len(node))
        return [*node[:i], _replace_random_node(rng, node[i]), *node[i + 1:]]
    choice = rng.random()
    if choice < 0.15:
        return [node, node]  # wrong shape
    if choice < 0.25:
        return [node]
    if choice < 0.3:
        return {"b64": node} if isinstance(node, str) else {str(node)[:10]: node}
    return rng.choice(VALUES)


def _mutate(rng: random.Random, request: Any) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:  # a type swap, wrong shape or odd value somewhere
        return json.dumps(_replace_random_node(rng, request), ensure_ascii=True).encode()
    text = json.dumps(request).encode()
    if kind == 1:  # byte flips
        data = bytearray(text)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2:  # truncation
        return text[:rng.randrange(len(text))]
    if kind == 3:  # a token dropped in
        at = rng.randrange(len(text) + 1)
        return text[:at] + rng.choice(TOKENS).encode() + text[at:]
    if kind == 4:  # duplicate keys
        key = rng.choice(sorted(request))
        extra = json.dumps({key: _replace_random_node(rng, request[key])})[1:-1]
        return text[:-1] + b", " + extra.encode() + b"}"
    if kind == 5:  # deep nesting in a field
        depth = rng.choice([40, 1000, 20_000])
        key = rng.choice(sorted(request))
        return json.dumps({**request, key: "@"}).replace(
            '"@"', "[" * depth + "]" * depth).encode()
    if kind == 6:  # huge numbers
        number = rng.choice(["1" * rng.randint(20, 6000), "1e" + "9" * 10, "-" + "9" * 400])
        return text.replace(b"1", number.encode(), 1)
    # a request sent to a different API
    return json.dumps(_replace_random_node(rng, request)).encode()


@pytest.mark.slow
def test_fuzzed_bodies_never_get_a_5xx(server: ServerProcess) -> None:
    rng = random.Random(20261130)
    seeds = _seeds()
    for path, request in seeds:
        assert _post(server, path, json.dumps(request).encode()).status_code == 200, path
    _settled(server)
    before = rss(server.process.pid)
    statuses: Counter[int] = Counter()
    failures = []
    apis = [":predict", ":regress", ":classify"]
    for i in range(3000):
        path, request = seeds[rng.randrange(len(seeds))]
        body = _mutate(rng, request)
        if rng.random() < 0.1:
            path = path.rsplit(":", 1)[0] + rng.choice(apis)
        reply = _post(server, path, body)
        statuses[reply.status_code] += 1
        if reply.status_code >= 500:
            failures.append((i, path, body[:300], reply.text[:300]))
    assert not failures, failures[:5]
    assert server.process.poll() is None
    assert statuses[200] > 100, statuses  # the mutations leave some requests valid
    assert sum(n for s, n in statuses.items() if s >= 400) > 1000, statuses
    _assert_idle(server)
    growth = rss(server.process.pid) - before
    assert growth < 64 * MB, f"the server grew by {growth / MB:.0f} MB over the fuzz"
