"""A small HTTP/1.1 load generator: N keep-alive connections POST one request in a loop.

    python benchmarks/loadgen.py --url http://127.0.0.1:8501/v1/models/m:predict \
        --body request.json --connections 8 --duration 5 --warmup 1

Runs in its own process (standard library only, asyncio), so the server under test has the
other core to itself as far as Python goes. Prints one JSON object: requests, errors,
requests/s and latency percentiles (ms), counted after the warm-up only. Loopback only: it
refuses any host but 127.0.0.1/localhost/::1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def _read_reply(reader: asyncio.StreamReader) -> int:
    """Reads one response; returns its status code."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def _client(host: str, port: int, request: bytes, start: float, stop: float,
                  latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            writer.write(request)
            status = await _read_reply(reader)
            t1 = time.perf_counter()
            if t0 >= start:  # count only requests sent after the warm-up
                latencies.append(t1 - t0)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def run(url: str, body: bytes, connections: int, duration: float,
              warmup: float) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    if host not in LOOPBACK:
        raise SystemExit(f"loadgen: loopback only, not {host!r}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    latencies: list[float] = []
    errors: list[int] = []
    start = time.perf_counter() + warmup
    stop = start + duration
    await asyncio.gather(*(_client(host, port, request, start, stop, latencies, errors)
                           for _ in range(connections)))
    return summarize(latencies, len(errors), duration, connections)


def summarize(latencies: list[float], errors: int, duration: float,
              connections: int) -> dict[str, float]:
    """The JSON a load generator prints (also grpc_loadgen.py's)."""
    ordered = sorted(latencies)
    return {
        "connections": connections,
        "requests": len(ordered),
        "errors": errors,
        "rps": len(ordered) / duration,
        "p50_ms": _percentile(ordered, 50) * 1e3,
        "p90_ms": _percentile(ordered, 90) * 1e3,
        "p99_ms": _percentile(ordered, 99) * 1e3,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="file holding the request body")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not measured")
    args = parser.parse_args()
    with open(args.body, "rb") as f:
        body = f.read()
    result = asyncio.run(run(args.url, body, args.connections, args.duration, args.warmup))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
