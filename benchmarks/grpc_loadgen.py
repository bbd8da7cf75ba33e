"""A small gRPC load generator: N channels each send one unary request in a loop.

    python benchmarks/grpc_loadgen.py --target 127.0.0.1:8500 \
        --method /tensorflow.serving.PredictionService/Predict --body request.pb \
        --connections 8 --duration 5 --warmup 1

The request is raw bytes (a serialized PredictRequest made by run_grpc.py), sent through
grpcio without (de)serializers, so the client's cost is grpcio's alone. Runs in its own process
(asyncio, grpc.aio) and prints one JSON object like loadgen.py's: requests, errors,
requests/s and latency percentiles (ms), counted after the warm-up only. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import grpc
from loadgen import summarize

LOOPBACK = ("127.0.0.1:", "localhost:", "[::1]:", "unix:")


async def _client(target: str, method: str, request: bytes, start: float, stop: float,
                  latencies: list[float], errors: list[str]) -> None:
    async with grpc.aio.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1),
            ("grpc.use_local_subchannel_pool", 1)]) as channel:  # a connection per client
        call = channel.unary_unary(method)
        while True:
            t0 = time.perf_counter()
            if t0 >= stop:
                return
            try:
                await call(request, timeout=60)
                failed = None
            except grpc.aio.AioRpcError as e:
                failed = e.code().name
            t1 = time.perf_counter()
            if t0 >= start:
                latencies.append(t1 - t0)
                if failed:
                    errors.append(failed)


async def run(target: str, method: str, request: bytes, connections: int, duration: float,
              warmup: float) -> dict[str, float]:
    if not target.startswith(LOOPBACK):
        raise SystemExit(f"grpc_loadgen only targets loopback, not {target}")
    now = time.perf_counter()
    start, stop = now + warmup, now + warmup + duration
    latencies: list[float] = []
    errors: list[str] = []
    await asyncio.gather(*(_client(target, method, request, start, stop, latencies, errors)
                           for _ in range(connections)))
    return summarize(latencies, len(errors), duration, connections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--body", required=True, help="file holding the serialized request")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    with open(args.body, "rb") as f:
        body = f.read()
    result = asyncio.run(run(args.target, args.method, body, args.connections, args.duration,
                             args.warmup))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
