"""smrt's backends side by side: smrt on TensorFlow and on OpenVINO, TensorFlow's Python API,
OpenVINO's own Python API and ONNX Runtime, on MobileNet and ResNet50 at batch 1 and 8, and
the per-call overhead of both smrt backends on a tiny model.

    python benchmarks/run_backends.py [--quick] [--check] [--json PATH]

Needs the bench extra (TensorFlow, OpenVINO, ONNX Runtime, tf2onnx). As in run.py, every
contender is a child process of its own, serving blocks of timed calls; the contenders take
turns block by block, their order rotating, in several sets of fresh children, and the table
reports medians of ratios between blocks timed back to back. The models (random weights:
nothing is downloaded) are built once by backend_models.py into the cache.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from harness import (
    BENCH_DIR,
    DEFAULT_CACHE,
    BlockServer,
    Command,
    ensure_models,
    worker_command,
)
from run import (
    LATENCY_METRICS,
    RESULTS_DIR,
    Measure,
    Ratio,
    Section,
    Target,
    block_warmup,
    environment,
    median_of,
    median_ratio,
    print_ratios,
    print_section,
    ratio,
    served_blocks,
    tensor_names,
)

BUILDER = BENCH_DIR / "backend_models.py"
BIG_MODELS = ("mobilenet", "resnet50")
BATCHES = (1, 8)
IMAGE_SHAPE = (1, 224, 224, 3)
CONTENDERS = {
    "smrt-tensorflow": "smrt",
    "smrt-openvino": "smrt-openvino",
    "TF Python": "tf-numpy",
    "OpenVINO API": "openvino",
    "ONNX Runtime": "onnxruntime",
}
"""Contenders on the big models -> their name in workers.py."""


@dataclass(frozen=True)
class Settings:
    sets: int  # fresh children per contender
    rounds: int  # blocks each child times per set, taking turns
    examples: dict[str, int]  # examples per block, per model (a batch-B block: examples / B calls)
    tiny_block: int  # calls per block on tiny_add


FULL = Settings(sets=3, rounds=6, examples={"mobilenet": 32, "resnet50": 16}, tiny_block=2_000)
QUICK = Settings(sets=1, rounds=4, examples={"mobilenet": 16, "resnet50": 8}, tiny_block=500)


def block_calls(settings: Settings, model: str, batch: int) -> int:
    return max(2, settings.examples[model] // batch)


def image_model(settings: Settings, name: str, path: Path, precision: str) -> Section:
    """One child per contender serving batch 1 and 8; every (contender, batch) a measure."""
    key, _, _ = tensor_names(path)
    commands: dict[str, Command] = {
        label: worker_command("percall", contender=worker, model=str(path), input_key=key,
                              shape=list(IMAGE_SHAPE), warmup=block_calls(settings, name, 1),
                              batches=list(BATCHES[1:]), precision=precision)
        for label, worker in CONTENDERS.items()}

    def measures(servers: dict[str, BlockServer]) -> dict[str, Measure]:
        out: dict[str, Measure] = {}
        for batch in BATCHES:
            calls = block_calls(settings, name, batch)
            for label, server in servers.items():
                out[f"{label} b{batch}"] = partial(server.time_block, calls, block_warmup(calls),
                                                   batch)
        return out

    results = served_blocks(settings.sets, settings.rounds, commands, measures)
    blocks = "/".join(str(block_calls(settings, name, b)) for b in BATCHES)
    section = Section(f"per-call {name}, batch 1/8",
                      f"{settings.sets * settings.rounds} blocks of {blocks} calls",
                      LATENCY_METRICS, results, [])
    for batch in BATCHES:
        goals = name == "mobilenet" and batch == 1
        pairs = [
            ("smrt-tensorflow", "smrt-openvino", Target(">=", 2.0)),
            ("smrt-openvino", "OpenVINO API", Target("<=", 1.15)),
            ("smrt-openvino", "ONNX Runtime", Target("<=", 1.3)),
            ("TF Python", "smrt-openvino", None),
        ]
        for num, den, target in pairs:
            section.ratios.append(ratio(
                section, f"p50 {num} / {den}, batch {batch}",
                median_ratio(results, f"{num} b{batch}", f"{den} b{batch}", "p50_us"),
                target if goals and target else "(reference)"))
    return section


def tiny_overhead(settings: Settings, tiny: Path) -> Section:
    """Per-call overhead: smrt on OpenVINO against smrt on TensorFlow, on tiny_add."""
    key, _, _ = tensor_names(tiny)
    block = settings.tiny_block
    commands: dict[str, Command] = {
        label: worker_command("percall", contender=worker, model=str(tiny), input_key=key,
                              shape=[1, 4], warmup=block)
        for label, worker in (("smrt-tensorflow", "smrt"), ("smrt-openvino", "smrt-openvino"))}
    results = served_blocks(settings.sets, settings.rounds, commands, lambda servers: {
        label: partial(server.time_block, block, block_warmup(block))
        for label, server in servers.items()})
    section = Section("per-call tiny_add", f"{settings.sets * settings.rounds} blocks of {block}"
                      " calls", LATENCY_METRICS, results, [])
    section.ratios = [ratio(section, "p50 smrt-openvino / smrt-tensorflow",
                            median_ratio(results, "smrt-openvino", "smrt-tensorflow", "p50_us"),
                            Target("<=", 1.0))]
    return section


def markdown_table(sections: Sequence[Section]) -> list[str]:
    """The README's table: p50 per contender and batch, in ms."""
    lines = ["| model | batch | " + " | ".join(CONTENDERS) + " |",
             "|---|---|" + "---|" * len(CONTENDERS)]
    for section in sections:
        name = section.title.split()[1].rstrip(",")
        if name not in BIG_MODELS:
            continue
        for batch in BATCHES:
            cells = [f"{median_of(section.results[f'{c} b{batch}'], 'p50_us') / 1e3:.1f}"
                     for c in CONTENDERS]
            lines.append(f"| {name} | {batch} | " + " | ".join(cells) + " |")
    return lines


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer sets, rounds and calls")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 if any target is missed")
    p.add_argument("--json", type=Path, metavar="PATH",
                   help="where the results go (default: benchmarks/results/backends[-quick].json)")
    p.add_argument("--precision", default="f32", choices=("f32", "bf16", ""),
                   help="OpenVINO's inference precision, for smrt-openvino and OpenVINO's API "
                        "alike (default f32, smrt's default; '': OpenVINO's choice)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                   help=f"where the models are built (default: {DEFAULT_CACHE})")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    settings = QUICK if args.quick else FULL
    models = ensure_models(args.cache_dir, BIG_MODELS, BUILDER, "backends")
    tiny = ensure_models(args.cache_dir, ["tiny_add"])["tiny_add"]
    env = environment() | {name: importlib.metadata.version(name)
                           for name in ("openvino", "onnxruntime", "tf2onnx")}
    # Spinning thread pools (OpenVINO's, ONNX Runtime's) suffer most on a busy machine.
    env["load_average_at_start"] = os.getloadavg()[0]
    print(f"smrt {env['smrt']}, TensorFlow {env['tensorflow']}, {env['cpus']} CPUs: {settings}")
    sections = []
    for name, path in models.items():
        sections.append(image_model(settings, name, path, args.precision))
        print_section(sections[-1])
    sections.append(tiny_overhead(settings, tiny))
    print_section(sections[-1])
    ratios: list[Ratio] = [r for s in sections for r in s.ratios]
    print_ratios(ratios)
    table = markdown_table(sections)
    print("\np50 per call, ms:\n" + "\n".join(table))
    missed = [r for r in ratios if r.passed is False]
    wall = time.perf_counter() - start
    env["load_average_at_end"] = os.getloadavg()[0]
    print(f"\n{len(missed)} target(s) missed; total wall time {wall:.0f} s; load average "
          f"{env['load_average_at_start']:.1f} at the start, {env['load_average_at_end']:.1f} "
          f"at the end ({env['cpus']} CPUs)")
    json_path: Path = args.json or RESULTS_DIR / f"backends{'-quick' if args.quick else ''}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({
        "settings": asdict(settings),
        "openvino_precision": args.precision,
        "environment": env,
        "results": {s.title: s.results for s in sections},
        "ratios": [asdict(r) for r in ratios],
        "table_p50_ms": table,
        "targets_missed": len(missed),
        "wall_s": wall,
    }, indent=2))
    print(f"wrote {json_path}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
