"""smrt's core benchmarks, side by side with the raw C API floor and TensorFlow's Python API.

    python benchmarks/run_core.py [--quick] [--json PATH] [--check] [--big-mb MB]

Every contender runs in a child process of its own (TensorFlow's Python package never shares
a process with smrt), and contenders are interleaved in rounds, their order rotating, so that
drift of the machine hits all of them alike:

* per-call latency starts one child per contender, all loaded and warmed up, then has them
  time a block of calls each in turn, round after round; this is repeated with fresh
  children for several sets, since one process can be luckier than another in how its
  threads land on the cores;
* cold start and peak memory start a fresh child per contender per round.

Results are medians (over blocks, or over rounds), and the table reports RATIOS, which is
what the targets are about; absolute numbers are printed for reference only.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

from harness import (
    DEFAULT_CACHE,
    Command,
    Result,
    block_servers,
    build_raw_c_loop,
    ensure_models,
    libtensorflow_path,
    median,
    run_json,
    wall_time,
    worker_command,
)

import smrt

MODELS = ("tiny_add", "add_one_big", "keras_mobilenet")
SIGNATURE = "serving_default"
MB = 1_000_000

INLINE_CONFIG_HEX = "28" + "ff" * 9 + "01"
"""A serialized ConfigProto {inter_op_parallelism_threads: -1}: TensorFlow runs every op in
the caller's thread, with no hand-off to its inter-op thread pool."""


@dataclass(frozen=True)
class Settings:
    sets: int  # per-call: how many times fresh children are started per contender
    rounds: int  # per-call: blocks each child times, taking turns with the others
    tiny_block: int  # calls per block on tiny_add
    mobilenet_block: int  # calls per block on keras_mobilenet
    cold_start_reps: int
    big_mb: int  # the peak-memory input, in MB


FULL = Settings(sets=5, rounds=10, tiny_block=2_000, mobilenet_block=40, cold_start_reps=7,
                big_mb=400)
QUICK = Settings(sets=3, rounds=5, tiny_block=500, mobilenet_block=16, cold_start_reps=3,
                 big_mb=100)


@dataclass(frozen=True)
class Target:
    op: str  # "<=" or ">="
    bound: float

    def met(self, value: float) -> bool:
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}x"


@dataclass
class Ratio:
    section: str
    name: str
    value: float
    target: str
    passed: bool | None  # None: for reference, no target


@dataclass
class Section:
    title: str
    repeats: str  # what the medians are over, e.g. "15 blocks of 500 calls"
    metrics: tuple[str, ...]  # the result keys printed per contender
    results: dict[str, list[Result]]
    ratios: list[Ratio]


@dataclass(frozen=True)
class Context:
    settings: Settings
    models: dict[str, Path]
    raw_c_loop: Path
    libtensorflow: Path


Measure = Callable[[], Result]


# --- measuring -----------------------------------------------------------------------------


def interleave(contenders: dict[str, Measure], rounds: int) -> dict[str, list[Result]]:
    """Runs every contender once per round, rotating the order from round to round."""
    names = list(contenders)
    results: dict[str, list[Result]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(contenders[name]())
    return results


def median_of(results: list[Result], key: str) -> float:
    return median(r[key] for r in results)


def median_ratio(results: dict[str, list[Result]], num: str, den: str, key: str) -> float:
    """The median over rounds of num/den, each round's pair measured back to back."""
    return median(a[key] / b[key] for a, b in zip(results[num], results[den], strict=True))


def ratio(section: Section, name: str, value: float, target: Target | str) -> Ratio:
    if isinstance(target, Target):
        return Ratio(section.title, name, value, str(target), target.met(value))
    return Ratio(section.title, name, value, target, None)


def tensor_names(model: Path) -> tuple[str, str, str]:
    """(input key, input tensor, output tensor) of a single-input, single-output signature."""
    sig = smrt.inspect(model).meta_graph().signatures[SIGNATURE]
    ((key, spec_in),) = sig.inputs.items()
    (spec_out,) = sig.outputs.values()
    return key, spec_in.tensor_name, spec_out.tensor_name


PERCALL_WORKERS = {"smrt": "smrt", "TF tf.constant": "tf-constant", "TF numpy": "tf-numpy"}
"""Per-call contenders other than "raw C" -> their name in workers.py."""


def percall_command(ctx: Context, contender: str, model: Path, shape: Sequence[int],
                    warmup: int, config_hex: str) -> Command:
    """The block server for one per-call contender: raw_c_loop, or a workers.py child."""
    key, tensor_in, tensor_out = tensor_names(model)
    if contender == "raw C":
        config = [config_hex] if config_hex else []
        return [ctx.raw_c_loop, ctx.libtensorflow, model, tensor_in, tensor_out,
                ",".join(map(str, shape)), "-", str(warmup), *config]
    return worker_command("percall", contender=PERCALL_WORKERS[contender], model=str(model),
                          input_key=key, shape=list(shape), warmup=warmup,
                          config_hex=config_hex)


def per_call(ctx: Context, model_name: str, shape: Sequence[int], block: int,
             contenders: Sequence[str], config_hex: str = "") -> dict[str, list[Result]]:
    """Per-call latency summaries, one per block of `block` calls: `sets` times, a fresh
    child per contender (warmed up with a block's worth of calls) times `rounds` blocks,
    the children taking turns. Each block starts with a tenth of its size in untimed calls,
    as its child sat idle while the others ran."""
    s, model = ctx.settings, ctx.models[model_name]
    results: dict[str, list[Result]] = {name: [] for name in contenders}
    for _ in range(s.sets):
        commands = {name: percall_command(ctx, name, model, shape, block, config_hex)
                    for name in contenders}
        with block_servers(commands) as servers:
            blocks = interleave({name: partial(server.time_block, block, max(2, block // 10))
                                 for name, server in servers.items()}, s.rounds)
        for name, summaries in blocks.items():
            results[name] += summaries
    return results


def blocks_label(settings: Settings, block: int) -> str:
    return (f"{settings.sets * settings.rounds} blocks of {block} calls "
            f"({settings.sets} sets x {settings.rounds} rounds)")


# --- the measurements ----------------------------------------------------------------------

LATENCY_METRICS = ("p50_us", "p99_us", "mean_us", "min_us")


def per_call_tiny(ctx: Context) -> Section:
    block = ctx.settings.tiny_block
    results = per_call(ctx, "tiny_add", (1, 4), block,
                       ["raw C", "smrt", "TF tf.constant", "TF numpy"])
    section = Section("per-call tiny_add", blocks_label(ctx.settings, block), LATENCY_METRICS,
                      results, [])
    section.ratios = [
        ratio(section, "p50 smrt / raw C", median_ratio(results, "smrt", "raw C", "p50_us"),
              Target("<=", 1.5)),
        ratio(section, "mean smrt / raw C", median_ratio(results, "smrt", "raw C", "mean_us"),
              "(reference)"),
        ratio(section, "p50 TF tf.constant / smrt",
              median_ratio(results, "TF tf.constant", "smrt", "p50_us"), Target(">=", 5)),
        ratio(section, "p50 TF numpy / smrt",
              median_ratio(results, "TF numpy", "smrt", "p50_us"), Target(">=", 5)),
    ]
    return section


def per_call_tiny_inline(ctx: Context) -> Section:
    """raw C vs smrt with ops run in the caller's thread: no thread-pool hand-off, so the
    floor is TensorFlow's own work and smrt's overhead shows undiluted. For reference."""
    block = ctx.settings.tiny_block
    results = per_call(ctx, "tiny_add", (1, 4), block, ["raw C", "smrt"], INLINE_CONFIG_HEX)
    section = Section("per-call tiny_add, inline session", blocks_label(ctx.settings, block),
                      LATENCY_METRICS, results, [])
    section.ratios = [
        ratio(section, "p50 smrt / raw C", median_ratio(results, "smrt", "raw C", "p50_us"),
              "(reference)"),
    ]
    return section


COLD_START = {
    "smrt": """
import numpy as np, smrt
sig = smrt.load({model!r}).signatures["serving_default"]
y = sig(x=np.ones((1, 4), np.float32))["y"]
""",
    "TF": """
import numpy as np, tensorflow as tf
sig = tf.saved_model.load({model!r}).signatures["serving_default"]
y = sig(x=tf.constant(np.ones((1, 4), np.float32)))["y"].numpy()
""",
}
"""New process -> import -> load tiny_add -> first result, as `python -c` programs."""


def timed_run(cmd: Command) -> Result:
    return {"wall_s": wall_time(cmd)}


def cold_start(ctx: Context) -> Section:
    model = str(ctx.models["tiny_add"])
    commands = {name: [sys.executable, "-c", code.format(model=model)]
                for name, code in COLD_START.items()}
    for cmd in commands.values():  # untimed: warms the page cache for both alike
        wall_time(cmd)
    reps = ctx.settings.cold_start_reps
    results = interleave({name: partial(timed_run, cmd) for name, cmd in commands.items()},
                         reps)
    section = Section("cold start (tiny_add)", f"{reps} runs", ("wall_s",), results, [])
    section.ratios = [
        ratio(section, "TF / smrt", median_ratio(results, "TF", "smrt", "wall_s"),
              Target(">=", 4)),
    ]
    return section


def peak_memory(ctx: Context) -> Section:
    model = ctx.models["add_one_big"]
    key = tensor_names(model)[0]
    elements = ctx.settings.big_mb * MB // 4

    def measure(contender: str) -> Measure:
        return partial(run_json, worker_command("memory", contender=contender, model=str(model),
                                                input_key=key, elements=elements))

    results = interleave({
        "smrt aligned": measure("smrt"),
        "smrt plain": measure("smrt-plain"),
        "TF numpy": measure("tf-numpy"),
    }, rounds=1)  # deterministic to within a few MB: one run each
    section = Section(f"peak memory ({ctx.settings.big_mb} MB input)", "1 run",
                      ("extra_peak_x_input",), results, [])

    def extra(name: str) -> float:
        return median_of(results[name], "extra_peak_x_input")

    section.ratios = [
        ratio(section, "extra peak / input, smrt aligned", extra("smrt aligned"),
              Target("<=", 1.15)),
        ratio(section, "extra peak / input, smrt plain", extra("smrt plain"),
              Target("<=", 2.15)),
        ratio(section, "extra peak / input, TF numpy", extra("TF numpy"), "~3x (reference)"),
    ]
    return section


def per_call_mobilenet(ctx: Context) -> Section:
    block = ctx.settings.mobilenet_block
    results = per_call(ctx, "keras_mobilenet", (1, 224, 224, 3), block,
                       ["raw C", "smrt", "TF tf.constant"])
    section = Section("per-call keras_mobilenet, batch 1", blocks_label(ctx.settings, block),
                      LATENCY_METRICS, results, [])
    section.ratios = [
        ratio(section, "p50 smrt / raw C", median_ratio(results, "smrt", "raw C", "p50_us"),
              "(reference)"),
        ratio(section, "p50 TF tf.constant / smrt",
              median_ratio(results, "TF tf.constant", "smrt", "p50_us"), Target(">=", 1.0)),
    ]
    return section


SECTIONS: tuple[Callable[[Context], Section], ...] = (
    per_call_tiny, per_call_tiny_inline, cold_start, peak_memory, per_call_mobilenet,
)


# --- reporting -----------------------------------------------------------------------------


def _cell(metric: str, value: float) -> str:
    name = metric.removesuffix("_us").removesuffix("_s").removesuffix("_x_input")
    if metric.endswith("_us"):
        return f"{name} {value:9.1f} us"
    if metric.endswith("_s"):
        return f"{name} {value:7.3f} s"
    return f"{name} {value:6.3f}x input"


def print_section(section: Section) -> None:
    print(f"\n{section.title}: medians over {section.repeats}")
    for name, results in section.results.items():
        cells = "  ".join(_cell(m, median_of(results, m)) for m in section.metrics)
        print(f"  {name:<15} {cells}")


def print_ratios(ratios: list[Ratio]) -> None:
    verdict = {True: "ok", False: "MISSED", None: ""}
    print(f"\n{'measurement':<36} {'ratio':<34} {'value':>8}  {'target':<17} result")
    for r in ratios:
        print(f"{r.section:<36} {r.name:<34} {r.value:7.2f}x  {r.target:<17} {verdict[r.passed]}")


def _version(*distributions: str) -> str:
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def environment() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "smrt": _version("smrt"),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer sets, rounds and calls, a 100 MB big input (for CI)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write all results to PATH")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 if any target is missed")
    p.add_argument("--big-mb", type=int, metavar="MB",
                   help="size of the peak-memory input (default: 400, 100 with --quick)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                   help=f"where models and the raw C loop are built (default: {DEFAULT_CACHE})")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    settings = QUICK if args.quick else FULL
    if args.big_mb is not None:
        settings = replace(settings, big_mb=args.big_mb)
    ctx = Context(settings, ensure_models(args.cache_dir, MODELS),
                  build_raw_c_loop(args.cache_dir), libtensorflow_path())
    env = environment()
    mode = "quick" if args.quick else "full"
    print(f"smrt {env['smrt']}, TensorFlow {env['tensorflow']}, {env['cpus']} CPUs, "
          f"{mode} mode: {settings}")

    sections = []
    for measure in SECTIONS:
        print(f"running {measure.__name__} ...", file=sys.stderr, end=" ", flush=True)
        started = time.perf_counter()
        sections.append(measure(ctx))
        print(f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        print_section(sections[-1])
    ratios = [r for section in sections for r in section.ratios]
    print_ratios(ratios)
    missed = [r for r in ratios if r.passed is False]
    wall = time.perf_counter() - start
    print(f"\n{len(missed)} target(s) missed; total wall time {wall:.0f} s")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "mode": mode,
            "settings": asdict(settings),
            "environment": env,
            "results": {s.title: s.results for s in sections},
            "ratios": [asdict(r) for r in ratios],
            "targets_missed": len(missed),
            "wall_s": wall,
        }, indent=2))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
