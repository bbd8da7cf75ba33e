"""``smrt serve`` against a FastAPI server calling TensorFlow's Python API, under load.

    python benchmarks/run_serve.py [--quick] [--check] [--json PATH]

For each model (TF Serving's half_plus_two, and MobileNet at batch 1), starts both servers on
loopback (``smrt serve``, and ``tf_rest_server.py``: FastAPI + uvicorn + ``tf.saved_model.load``),
checks they give the same predictions, then loads each in turn with ``loadgen.py`` (a separate
process, keep-alive connections, fixed duration after a warm-up) at a few concurrency levels.
Reports, as ratios side by side: latency p50 (TF server / smrt), throughput (smrt / TF server),
and each server's peak memory. It also times the same request in-process without HTTP
(smrt's signature call alone, and with smrt's JSON decoding and encoding) to show what the
HTTP layer adds. No absolute time is a pass/fail criterion; ``--check`` fails only if smrt is
slower than the TF server.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from harness import BENCH_DIR, CHILD_ENV, DEFAULT_CACHE, ensure_models

RESULTS = BENCH_DIR / "results"


@dataclass
class Scenario:
    zoo_name: str
    name: str
    body: bytes
    connections: tuple[int, ...]


def scenarios() -> list[Scenario]:
    rng = np.random.default_rng(0)
    image = rng.random((1, 224, 224, 3), dtype=np.float32)
    return [
        Scenario("half_plus_two", "hp", json.dumps({"instances": [1.0, 2.0, 5.0]}).encode(),
                 (1, 16)),
        Scenario("keras_mobilenet", "mobilenet",
                 json.dumps({"signature_name": "serving_default",
                             "instances": image.tolist()}).encode(), (1, 4)),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@contextmanager
def server(argv: list[str], url: str, body: bytes) -> Iterator[subprocess.Popen[bytes]]:
    """Starts a server process; yields once it answers ``body`` with 200."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log, env=CHILD_ENV)
        try:
            _wait_until_serving(process, url, body, log)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, body: bytes,
                        log: Any) -> None:
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{process.args!r} exited:\n{log.read().decode()[-3000:]}")
        try:
            if _post(url, body)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.args!r} did not start")
        time.sleep(0.2)


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load(url: str, body_file: str, connections: int, duration: float, warmup: float,
         ) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(BENCH_DIR / "loadgen.py"), "--url", url, "--body", body_file,
         "--connections", str(connections), "--duration", str(duration),
         "--warmup", str(warmup)], capture_output=True, text=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(out.stdout)
    if result["errors"]:
        raise RuntimeError(f"{url}: {result['errors']} requests failed under load")
    return result


def in_process(model_dir: Path, body_file: str, iterations: int) -> dict[str, float]:
    """p50 (ms) of smrt's call alone, and with the server's JSON decode and encode, timed in
    a fresh child process (as the server is one: the same heap size for the collector)."""
    out = subprocess.run([sys.executable, __file__, "--in-process", str(model_dir), body_file,
                          str(iterations)], capture_output=True, text=True, check=True,
                         env=CHILD_ENV, timeout=600)
    timings: dict[str, float] = json.loads(out.stdout)
    return timings


def _time_in_process(model_dir: Path, body: bytes, iterations: int) -> dict[str, float]:
    import smrt
    from smrt.serving.rest import tensor_json

    model = smrt.load(model_dir)
    signature = model.signatures["serving_default"]
    request = tensor_json.loads(body)
    inputs, rows = tensor_json.predict_inputs(request, signature.inputs)

    def pipeline() -> bytes:
        _, arrays, _ = tensor_json.parse_predict(body, lambda request: signature)  # as served
        return tensor_json.predict_body(signature(**arrays), rows)

    timings: dict[str, float] = {}
    for label, fn in (("call", lambda: signature(**inputs)), ("json_and_call", pipeline)):
        for _ in range(max(3, iterations // 10)):
            fn()
        samples = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        timings[f"{label}_p50_ms"] = statistics.median(samples) * 1e3
    model.close()
    return timings


def run_scenario(scenario: Scenario, model_dir: Path, duration: float, warmup: float,
                 rounds: int, iterations: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / scenario.name
        base.mkdir()
        (base / "1").symlink_to(model_dir, target_is_directory=True)
        body_file = str(Path(tmp) / "body.json")
        Path(body_file).write_bytes(scenario.body)
        ports = {"smrt": _free_port(), "tf": _free_port()}
        urls = {k: f"http://127.0.0.1:{p}/v1/models/{scenario.name}:predict"
                for k, p in ports.items()}
        smrt_argv = [sys.executable, "-m", "smrt", "serve", "--model_name", scenario.name,
                     "--model_base_path", str(base), "--rest_api_port", str(ports["smrt"]),
                     "--port", "0", "--access_log=false"]
        tf_argv = [sys.executable, str(BENCH_DIR / "tf_rest_server.py"), "--model_name",
                   scenario.name, "--model_dir", str(model_dir), "--port", str(ports["tf"])]
        with server(smrt_argv, urls["smrt"], scenario.body) as smrt_proc, \
                server(tf_argv, urls["tf"], scenario.body) as tf_proc:
            answers = {k: json.loads(_post(u, scenario.body)[1])["predictions"]
                       for k, u in urls.items()}
            np.testing.assert_allclose(np.array(answers["smrt"]), np.array(answers["tf"]),
                                       rtol=1e-4, atol=1e-5)
            levels = []
            for connections in scenario.connections:
                runs: dict[str, list[dict[str, Any]]] = {"smrt": [], "tf": []}
                for _ in range(rounds):  # alternate, so drift hits both alike
                    for key in ("smrt", "tf"):
                        runs[key].append(load(urls[key], body_file, connections, duration,
                                              warmup))
                level: dict[str, Any] = {"connections": connections}
                for key, results in runs.items():
                    for field in ("rps", "p50_ms", "p90_ms", "p99_ms"):
                        level[f"{key}_{field}"] = statistics.median(r[field] for r in results)
                level["p50_ratio_tf_over_smrt"] = level["tf_p50_ms"] / level["smrt_p50_ms"]
                level["rps_ratio_smrt_over_tf"] = level["smrt_rps"] / level["tf_rps"]
                levels.append(level)
            memory = {"smrt_peak_rss_mb": peak_rss_mb(smrt_proc.pid),
                      "tf_peak_rss_mb": peak_rss_mb(tf_proc.pid)}
        direct = in_process(model_dir, body_file, iterations)
    http_p50 = levels[0]["smrt_p50_ms"]
    return {
        "model": scenario.zoo_name, "body_bytes": len(scenario.body), "levels": levels,
        **memory, "memory_ratio_tf_over_smrt": memory["tf_peak_rss_mb"] / memory[
            "smrt_peak_rss_mb"],
        **direct,
        "http_overhead_ms": http_p50 - direct["json_and_call_p50_ms"],
        "http_p50_over_call_p50": http_p50 / direct["call_p50_ms"],
    }


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'model':<16} {'conns':>5} {'smrt p50 ms':>12} {'TF p50 ms':>10} {'TF/smrt':>8}"
          f" {'smrt req/s':>11} {'TF req/s':>9} {'smrt/TF':>8}")
    for r in results:
        for lv in r["levels"]:
            print(f"{r['model']:<16} {lv['connections']:>5} {lv['smrt_p50_ms']:>12.3f} "
                  f"{lv['tf_p50_ms']:>10.3f} {lv['p50_ratio_tf_over_smrt']:>7.2f}x "
                  f"{lv['smrt_rps']:>11.0f} {lv['tf_rps']:>9.0f} "
                  f"{lv['rps_ratio_smrt_over_tf']:>7.2f}x")
    print(f"\n{'model':<16} {'smrt peak MB':>12} {'TF peak MB':>11} {'TF/smrt':>8}   "
          f"{'call ms':>8} {'+JSON ms':>9} {'HTTP c=1 ms':>12} {'HTTP adds ms':>13}")
    for r in results:
        print(f"{r['model']:<16} {r['smrt_peak_rss_mb']:>12.0f} {r['tf_peak_rss_mb']:>11.0f} "
              f"{r['memory_ratio_tf_over_smrt']:>7.2f}x   {r['call_p50_ms']:>8.3f} "
              f"{r['json_and_call_p50_ms']:>9.3f} {r['levels'][0]['smrt_p50_ms']:>12.3f} "
              f"{r['http_overhead_ms']:>13.3f}")


def main() -> int:
    if sys.argv[1:2] == ["--in-process"]:  # the child of in_process()
        model_dir, body_file, iterations = sys.argv[2:5]
        json.dump(_time_in_process(Path(model_dir), Path(body_file).read_bytes(),
                                   int(iterations)), sys.stdout)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 round of 2 s per level (default: 3 rounds of 5 s)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if smrt serve is slower than the TF server anywhere")
    parser.add_argument("--json", type=Path, help="write the results here as JSON "
                        "(default: benchmarks/results/serve[-quick].json)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    duration, warmup, rounds, iterations = (2.0, 0.5, 1, 100) if args.quick else (5.0, 1.0, 3,
                                                                                   500)
    chosen = scenarios()
    models = ensure_models(args.cache_dir, [s.zoo_name for s in chosen])
    results = []
    for scenario in chosen:
        print(f"{scenario.zoo_name}: {scenario.connections} connections ...", flush=True)
        results.append(run_scenario(scenario, models[scenario.zoo_name], duration, warmup,
                                    rounds, iterations))
    print_table(results)
    out = args.json or RESULTS / f"serve{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"mode": "quick" if args.quick else "full", "cpus": os.cpu_count(),
                               "results": results}, indent=1) + "\n")
    print(f"\nwrote {out}")
    slower = [(r["model"], lv["connections"]) for r in results for lv in r["levels"]
              if lv["p50_ratio_tf_over_smrt"] < 1 or lv["rps_ratio_smrt_over_tf"] < 1]
    if args.check and slower:
        print(f"smrt serve is slower than the TF server at (model, connections): {slower}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
