"""``smrt serve`` against a FastAPI server calling TensorFlow's Python API, under load.

    python benchmarks/run_serve.py [--quick] [--check] [--backend tensorflow,openvino]
                                   [--json PATH]

For each model (TF Serving's half_plus_two, and MobileNet at batch 1), starts on loopback one
``smrt serve`` per backend of ``--backend`` and ``tf_rest_server.py`` (FastAPI + uvicorn +
``tf.saved_model.load``), checks they give the same predictions, then loads each in turn with
``loadgen.py`` (a separate process, keep-alive connections, fixed duration after a warm-up) at a
few concurrency levels. Reports, per backend, as ratios side by side: latency p50 (TF server /
smrt), throughput (smrt / TF server), and each server's peak memory; each row names the
backend asked for and the runtime that ran serving_default (the server's log says). It also
times the same request in-process without HTTP (smrt's signature call alone, and with smrt's
JSON decoding and encoding) to show what the HTTP layer adds. No absolute time is a pass/fail
criterion; ``--check`` fails only if smrt, on any backend, is slower than the TF server.
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from harness import BENCH_DIR, CHILD_ENV, DEFAULT_CACHE, ensure_models, stop
from smrt_server import add_backend_option, backend_label, smrt_serve

RESULTS = BENCH_DIR / "results"
FIELDS = ("rps", "p50_ms", "p90_ms", "p99_ms")
TF = "tf_server"  # the contenders are smrt serve's backends and this


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
            stop(process, 30)


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


def in_process(model_dir: Path, backend: str, body_file: str, iterations: int,
               ) -> dict[str, float]:
    """p50 (ms) of smrt's call alone, and with the server's JSON decode and encode, timed in
    a fresh child process (as the server is one: the same heap size for the collector)."""
    out = subprocess.run([sys.executable, __file__, "--in-process", str(model_dir), backend,
                          body_file, str(iterations)], capture_output=True, text=True,
                         check=True, env=CHILD_ENV, timeout=600)
    timings: dict[str, float] = json.loads(out.stdout)
    return timings


def _time_in_process(model_dir: Path, backend: str, body: bytes, iterations: int,
                     ) -> dict[str, float]:
    from smrt.serving.core.versions import default_loader
    from smrt.serving.rest import tensor_json

    model = default_loader(backend=backend)(str(model_dir), ("serve",))  # as the server loads
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


@dataclass
class Measured:
    """Every server of one scenario under load: medians over rounds, by connections, then
    by contender (a backend, or ``TF``), then by loadgen field; peak RSS by contender."""

    medians: dict[int, dict[str, dict[str, float]]]
    peak_rss_mb: dict[str, float]
    served_by: dict[str, str]
    runtimes: dict[str, str]


def measure_servers(scenario: Scenario, model_dir: Path, backends: list[str], tmp: Path,
                    body_file: str, duration: float, warmup: float, rounds: int) -> Measured:
    """Starts one smrt serve per backend and the TF server, all at once; checks they answer
    alike, then has them take turns under load, in a rotating order so drift hits all alike."""
    base = tmp / scenario.name
    base.mkdir()
    (base / "1").symlink_to(model_dir, target_is_directory=True)
    path = f"/v1/models/{scenario.name}:predict"
    with ExitStack() as servers:
        smrt = {b: servers.enter_context(smrt_serve(scenario.name, base, b,
                                                    tmp / f"smrt-{b}.log"))
                for b in backends}
        urls = {b: s.rest_url + path for b, s in smrt.items()}
        tf_port = _free_port()
        urls[TF] = f"http://127.0.0.1:{tf_port}{path}"
        tf_proc = servers.enter_context(server(
            [sys.executable, str(BENCH_DIR / "tf_rest_server.py"), "--model_name",
             scenario.name, "--model_dir", str(model_dir), "--port", str(tf_port)],
            urls[TF], scenario.body))
        answers = {k: np.array(json.loads(_post(u, scenario.body)[1])["predictions"])
                   for k, u in urls.items()}
        for b in backends:  # OpenVINO matches TensorFlow within 1e-3
            tolerance = 1e-5 if smrt[b].served_by == "tensorflow" else 1e-3
            np.testing.assert_allclose(answers[b], answers[TF], rtol=tolerance * 10,
                                       atol=tolerance, err_msg=b)
        contenders = list(urls)
        medians: dict[int, dict[str, dict[str, float]]] = {}
        for connections in scenario.connections:
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in contenders}
            for turn in range(rounds):
                shift = turn % len(contenders)
                for key in contenders[shift:] + contenders[:shift]:
                    runs[key].append(load(urls[key], body_file, connections, duration,
                                          warmup))
            medians[connections] = {k: {f: statistics.median(r[f] for r in results)
                                        for f in FIELDS} for k, results in runs.items()}
        peak = {b: peak_rss_mb(s.process.pid) for b, s in smrt.items()}
        peak[TF] = peak_rss_mb(tf_proc.pid)
        return Measured(medians, peak, {b: s.served_by for b, s in smrt.items()},
                        {b: s.runtimes for b, s in smrt.items()})


def run_scenario(scenario: Scenario, model_dir: Path, backends: list[str], duration: float,
                 warmup: float, rounds: int, iterations: int) -> list[dict[str, Any]]:
    """One result per backend: its smrt serve against the TF server, measured side by side,
    and the same request timed in-process on that backend (the servers stopped by then)."""
    with tempfile.TemporaryDirectory() as tmp:
        body_file = str(Path(tmp) / "body.json")
        Path(body_file).write_bytes(scenario.body)
        measured = measure_servers(scenario, model_dir, backends, Path(tmp), body_file,
                                   duration, warmup, rounds)
        results = []
        for b in backends:
            levels = []
            for connections, by_key in measured.medians.items():
                level: dict[str, Any] = {"connections": connections}
                level.update({f"smrt_{f}": v for f, v in by_key[b].items()})
                level.update({f"tf_{f}": v for f, v in by_key[TF].items()})
                level["p50_ratio_tf_over_smrt"] = level["tf_p50_ms"] / level["smrt_p50_ms"]
                level["rps_ratio_smrt_over_tf"] = level["smrt_rps"] / level["tf_rps"]
                if "tensorflow" in by_key:  # this backend against smrt's TensorFlow one
                    level["p50_ratio_smrt_tensorflow_over_smrt"] = (
                        by_key["tensorflow"]["p50_ms"] / level["smrt_p50_ms"])
                levels.append(level)
            direct = in_process(model_dir, b, body_file, iterations)
            http_p50 = levels[0]["smrt_p50_ms"]
            peak = measured.peak_rss_mb
            results.append({
                "model": scenario.zoo_name, "backend": b, "served_by": measured.served_by[b],
                "runtimes": measured.runtimes[b], "body_bytes": len(scenario.body),
                "levels": levels, "smrt_peak_rss_mb": peak[b], "tf_peak_rss_mb": peak[TF],
                "memory_ratio_tf_over_smrt": peak[TF] / peak[b],
                **direct,
                "http_overhead_ms": http_p50 - direct["json_and_call_p50_ms"],
                "http_p50_over_call_p50": http_p50 / direct["call_p50_ms"],
            })
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'model':<16} {'backend':<26} {'conns':>5} {'smrt p50 ms':>12} {'TF p50 ms':>10}"
          f" {'TF/smrt':>8} {'smrt req/s':>11} {'TF req/s':>9} {'smrt/TF':>8}"
          f" {'smrt-tf/smrt':>13}")
    for r in results:
        label = backend_label(r["backend"], r["served_by"])
        for lv in r["levels"]:
            versus = lv.get("p50_ratio_smrt_tensorflow_over_smrt")
            print(f"{r['model']:<16} {label:<26} {lv['connections']:>5} "
                  f"{lv['smrt_p50_ms']:>12.3f} {lv['tf_p50_ms']:>10.3f} "
                  f"{lv['p50_ratio_tf_over_smrt']:>7.2f}x {lv['smrt_rps']:>11.0f} "
                  f"{lv['tf_rps']:>9.0f} {lv['rps_ratio_smrt_over_tf']:>7.2f}x "
                  f"{f'{versus:.2f}x' if versus else '-':>13}")
    print(f"\n{'model':<16} {'backend':<26} {'smrt peak MB':>12} {'TF peak MB':>11} "
          f"{'TF/smrt':>8}   {'call ms':>8} {'+JSON ms':>9} {'HTTP c=1 ms':>12} "
          f"{'HTTP adds ms':>13}")
    for r in results:
        print(f"{r['model']:<16} {backend_label(r['backend'], r['served_by']):<26} "
              f"{r['smrt_peak_rss_mb']:>12.0f} {r['tf_peak_rss_mb']:>11.0f} "
              f"{r['memory_ratio_tf_over_smrt']:>7.2f}x   {r['call_p50_ms']:>8.3f} "
              f"{r['json_and_call_p50_ms']:>9.3f} {r['levels'][0]['smrt_p50_ms']:>12.3f} "
              f"{r['http_overhead_ms']:>13.3f}")


def main() -> int:
    if sys.argv[1:2] == ["--in-process"]:  # the child of in_process()
        model_dir, backend, body_file, iterations = sys.argv[2:6]
        json.dump(_time_in_process(Path(model_dir), backend, Path(body_file).read_bytes(),
                                   int(iterations)), sys.stdout)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 round of 2 s per level (default: 3 rounds of 5 s)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if smrt serve is slower than the TF server anywhere")
    add_backend_option(parser)
    parser.add_argument("--json", type=Path, help="write the results here as JSON "
                        "(default: benchmarks/results/serve[-quick].json)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    duration, warmup, rounds, iterations = (2.0, 0.5, 1, 100) if args.quick else (5.0, 1.0, 3,
                                                                                   500)
    chosen = scenarios()
    models = ensure_models(args.cache_dir, [s.zoo_name for s in chosen])
    load_before = os.getloadavg()
    results = []
    for scenario in chosen:
        print(f"{scenario.zoo_name}: {scenario.connections} connections, backends "
              f"{', '.join(args.backend)} ...", flush=True)
        results.extend(run_scenario(scenario, models[scenario.zoo_name], args.backend,
                                    duration, warmup, rounds, iterations))
    print_table(results)
    load_after = os.getloadavg()
    print(f"\nload average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    out = args.json or RESULTS / f"serve{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "mode": "quick" if args.quick else "full", "cpus": os.cpu_count(),
        "backends": args.backend, "loadavg_before": load_before, "loadavg_after": load_after,
        "results": results}, indent=1) + "\n")
    print(f"wrote {out}")
    slower = [(r["model"], r["backend"], lv["connections"]) for r in results
              for lv in r["levels"]
              if lv["p50_ratio_tf_over_smrt"] < 1 or lv["rps_ratio_smrt_over_tf"] < 1]
    if args.check and slower:
        print(f"smrt serve is slower than the TF server at (model, backend, connections): "
              f"{slower}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
