"""``smrt serve``'s gRPC API against its REST API, on the same server and model, per backend.

    python benchmarks/run_grpc.py [--quick] [--backend tensorflow,openvino] [--json PATH]

For TF Serving's half_plus_two (3 floats) and MobileNet (1x224x224x3), starts one ``smrt serve``
per backend of ``--backend`` (all at once), and loads each through both APIs in turn from a
separate process at 1 and 16 connections: REST with TF Serving's JSON (``loadgen.py``), gRPC
with a PredictRequest whose tensor is in ``tensor_content``, as ``tf.make_tensor_proto`` writes
it (``grpc_loadgen.py``). Reports, per backend, latency p50 (REST / gRPC) and throughput
(gRPC / REST) as ratios; each row names the backend asked for and the runtime that ran
serving_default (the server's log says). No absolute time is a pass/fail criterion.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from harness import BENCH_DIR, CHILD_ENV, DEFAULT_CACHE, ensure_models
from smrt_server import add_backend_option, backend_label, smrt_serve

from smrt import _core
from smrt.serving.core.wire import bytes_field, string_field

RESULTS = BENCH_DIR / "results"
PREDICT = "/tensorflow.serving.PredictionService/Predict"


def predict_request(name: str, inputs: dict[str, np.ndarray], signature: str = "") -> bytes:
    """A serialized PredictRequest{model_spec = 1, inputs = 2} with tensor_content tensors."""
    spec = string_field(1, name) + (string_field(3, signature) if signature else b"")
    entries = b"".join(bytes_field(2, string_field(1, key) + bytes_field(2, _core.encode_tensor(
        value, True))) for key, value in inputs.items())
    return bytes_field(1, spec) + entries


def scenarios() -> list[tuple[str, str, dict[str, Any], dict[str, np.ndarray]]]:
    image = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    return [
        ("half_plus_two", "hp", {"instances": [1.0, 2.0, 5.0]},
         {"x": np.array([1.0, 2.0, 5.0], np.float32)}),
        ("keras_mobilenet", "mobilenet", {"instances": image.tolist()},
         {"keras_tensor": image}),
    ]


def _load(argv: list[str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True,
                          env=CHILD_ENV, cwd=BENCH_DIR)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def run_scenario(zoo_name: str, name: str, rest_body: dict[str, Any],
                 inputs: dict[str, np.ndarray], model_dir: Path, backends: list[str],
                 duration: float, warmup: float, rounds: int) -> list[dict[str, Any]]:
    """One result per backend. The servers run side by side and take turns, each through REST
    then gRPC, in a rotating order so drift hits all alike."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        base = Path(tmp) / name
        base.mkdir()
        (base / "1").symlink_to(model_dir, target_is_directory=True)
        rest_file, grpc_file = Path(tmp) / "body.json", Path(tmp) / "body.pb"
        rest_file.write_text(json.dumps(rest_body))
        grpc_file.write_bytes(predict_request(name, inputs))
        servers = {b: stack.enter_context(smrt_serve(name, base, b, Path(tmp) / f"{b}.log"))
                   for b in backends}
        levels: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
        for connections in (1, 16):
            runs: dict[tuple[str, str], list[dict[str, float]]] = {
                (b, api): [] for b in backends for api in ("rest", "grpc")}
            common = ["--connections", str(connections), "--duration", str(duration),
                      "--warmup", str(warmup)]
            for turn in range(rounds):
                shift = turn % len(backends)
                for b in backends[shift:] + backends[:shift]:
                    rest_url = f"{servers[b].rest_url}/v1/models/{name}:predict"
                    runs[b, "rest"].append(_load(["loadgen.py", "--url", rest_url, "--body",
                                                  str(rest_file), *common]))
                    runs[b, "grpc"].append(_load(["grpc_loadgen.py", "--target",
                                                  servers[b].grpc_target, "--method", PREDICT,
                                                  "--body", str(grpc_file), *common]))
            for b in backends:
                level: dict[str, Any] = {"connections": connections}
                for api in ("rest", "grpc"):
                    results = runs[b, api]
                    assert all(r["errors"] == 0 for r in results), (b, api, results)
                    for field in ("rps", "p50_ms"):
                        level[f"{api}_{field}"] = statistics.median(r[field] for r in results)
                level["p50_ratio_rest_over_grpc"] = level["rest_p50_ms"] / level["grpc_p50_ms"]
                level["rps_ratio_grpc_over_rest"] = level["grpc_rps"] / level["rest_rps"]
                levels[b].append(level)
        return [{"model": zoo_name, "backend": b, "served_by": servers[b].served_by,
                 "runtimes": servers[b].runtimes, "levels": levels[b]} for b in backends]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 round of 2 s per level (default: 3 rounds of 5 s)")
    add_backend_option(parser)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    duration, warmup, rounds = (2.0, 0.5, 1) if args.quick else (5.0, 1.0, 3)
    chosen = scenarios()
    models = ensure_models(args.cache_dir, [s[0] for s in chosen])
    load_before = os.getloadavg()
    results = []
    for zoo_name, name, rest_body, inputs in chosen:
        print(f"{zoo_name}, backends {', '.join(args.backend)} ...", flush=True)
        results.extend(run_scenario(zoo_name, name, rest_body, inputs, models[zoo_name],
                                    args.backend, duration, warmup, rounds))
    load_after = os.getloadavg()
    print("| model | backend | connections | p50 latency, REST ÷ gRPC | throughput, gRPC ÷ REST "
          "| gRPC req/s |")
    print("|---|---|---|---|---|---|")
    for result in results:
        for lv in result["levels"]:
            print(f"| {result['model']} | {backend_label(result['backend'], result['served_by'])}"
                  f" | {lv['connections']} | {lv['p50_ratio_rest_over_grpc']:.2f}x "
                  f"({lv['rest_p50_ms']:.2f} vs {lv['grpc_p50_ms']:.2f} ms) | "
                  f"{lv['rps_ratio_grpc_over_rest']:.2f}x | {lv['grpc_rps']:.0f} |")
    print(f"\nload average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    out = args.json or RESULTS / f"grpc{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "mode": "quick" if args.quick else "full", "cpus": os.cpu_count(),
        "backends": args.backend, "loadavg_before": load_before, "loadavg_after": load_after,
        "results": results}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
