"""smrt's benchmarks, side by side with the raw C API floor and TensorFlow's Python API.

    python benchmarks/run.py [--quick] [--ci | --check] [--json PATH] [--big-mb MB]

Every contender runs in a child process of its own (TensorFlow's Python package never shares
a process with smrt), and contenders are interleaved in rounds, their order rotating, so that
drift of the machine hits all of them alike:

* per-call latency starts one child per contender, all loaded and warmed up, then has them
  time a block of calls each in turn, round after round; this is repeated with fresh
  children for several sets, since one process can be luckier than another in how its
  threads land on the cores;
* throughput and the batch-size sweep do the same, one child per contender serving every
  thread count or batch size;
* cold start and peak memory start a fresh child per contender per round.

Results are medians (over blocks, or over rounds), and the table reports RATIOS, which is
what the targets are about; absolute numbers are printed for reference only. The results go
to benchmarks/results/<mode>.json, and a chart of the ratios to <mode>.png if matplotlib is
installed. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

from harness import (
    BENCH_DIR,
    DEFAULT_CACHE,
    BlockServer,
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
RESULTS_DIR = BENCH_DIR / "results"
THREADS = (1, 2, 4)  # throughput: Python threads sharing one loaded signature
BATCHES = (1, 8, 32)  # the batch-size sweep on keras_mobilenet
MOBILENET_SHAPE = (1, 224, 224, 3)

INLINE_CONFIG_HEX = "28" + "ff" * 9 + "01"
"""A serialized ConfigProto {inter_op_parallelism_threads: -1}: TensorFlow runs every op in
the caller's thread, with no hand-off to its inter-op thread pool."""


@dataclass(frozen=True)
class Settings:
    sets: int  # per-call: how many times fresh children are started per contender
    rounds: int  # per-call: blocks each child times, taking turns with the others
    tiny_block: int  # calls per block on tiny_add
    mobilenet_block: int  # calls per block on keras_mobilenet, batch 1 (batch B: 1/B of it)
    throughput_sets: int  # as `sets`, for throughput
    throughput_block: int  # calls per block on tiny_add, shared by the threads
    cold_start_reps: int
    big_mb: int  # the peak-memory input, in MB


FULL = Settings(sets=5, rounds=10, tiny_block=2_000, mobilenet_block=40, throughput_sets=2,
                throughput_block=2_000, cold_start_reps=7, big_mb=400)
QUICK = Settings(sets=2, rounds=6, tiny_block=500, mobilenet_block=16, throughput_sets=1,
                 throughput_block=1_000, cold_start_reps=3, big_mb=100)


@dataclass(frozen=True)
class Target:
    op: str  # "<=" or ">="
    bound: float

    def met(self, value: float) -> bool:
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}x"


CI_TARGET = Target(">=", 1.0)
"""What `--ci` holds the ratios marked `ci` to: smrt no slower than TensorFlow's Python API.
A ratio, never an absolute time; the other targets (--check) sit too close to their bounds
on small shared VMs to gate CI."""


@dataclass
class Ratio:
    section: str
    name: str
    value: float
    target: str
    passed: bool | None  # None: for reference, no target
    ci_passed: bool | None = None  # None: not checked by --ci


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


def ratio(section: Section, name: str, value: float, target: Target | str,
          ci: bool = False) -> Ratio:
    """`ci`: `--ci` checks this ratio against CI_TARGET."""
    ci_passed = CI_TARGET.met(value) if ci else None
    if isinstance(target, Target):
        return Ratio(section.title, name, value, str(target), target.met(value), ci_passed)
    return Ratio(section.title, name, value, target, None, ci_passed)


def tensor_names(model: Path) -> tuple[str, str, str]:
    """(input key, input tensor, output tensor) of a single-input, single-output signature."""
    sig = smrt.inspect(model).meta_graph().signatures[SIGNATURE]
    ((key, spec_in),) = sig.inputs.items()
    (spec_out,) = sig.outputs.values()
    return key, spec_in.tensor_name, spec_out.tensor_name


PERCALL_WORKERS = {"smrt": "smrt", "smrt bound": "smrt-bound", "smrt GIL held": "smrt-gil-held",
                   "Python no-op": "python-noop", "TF tf.constant": "tf-constant",
                   "TF numpy": "tf-numpy"}
"""Per-call contenders other than "raw C" -> their name in workers.py."""


def percall_command(ctx: Context, contender: str, model: Path, shape: Sequence[int],
                    warmup: int, config_hex: str = "",
                    batches: Sequence[int] = ()) -> Command:
    """The block server for one per-call contender: raw_c_loop, or a workers.py child (which
    also serves the other `batches`; raw_c_loop serves `shape` only)."""
    key, tensor_in, tensor_out = tensor_names(model)
    if contender == "raw C":
        config = [config_hex] if config_hex else []
        return [ctx.raw_c_loop, ctx.libtensorflow, model, tensor_in, tensor_out,
                ",".join(map(str, shape)), "-", str(warmup), *config]
    return worker_command("percall", contender=PERCALL_WORKERS[contender], model=str(model),
                          input_key=key, shape=list(shape), warmup=warmup,
                          config_hex=config_hex, batches=list(batches))


def block_warmup(block: int) -> int:
    """Untimed calls before each block of `block`: its child sat idle while others ran."""
    return max(1, block // 10)


def served_blocks(sets: int, rounds: int, commands: Mapping[str, Command],
                  measures: Callable[[dict[str, BlockServer]], dict[str, Measure]],
                  ) -> dict[str, list[Result]]:
    """`sets` times: starts a fresh block server per command (warmed up by its child), then
    runs every measure of `measures(servers)` once per round for `rounds` rounds, in turns.
    Returns each measure's results over all sets."""
    results: dict[str, list[Result]] = {}
    for _ in range(sets):
        with block_servers(commands) as servers:
            blocks = interleave(measures(servers), rounds)
        for name, summaries in blocks.items():
            results.setdefault(name, []).extend(summaries)
    return results


def per_call(ctx: Context, model_name: str, shape: Sequence[int], block: int,
             contenders: Sequence[str], config_hex: str = "") -> dict[str, list[Result]]:
    """Per-call latency summaries, one per block of `block` calls: `sets` times, a fresh
    child per contender (warmed up with a block's worth of calls) times `rounds` blocks,
    the children taking turns."""
    s, model = ctx.settings, ctx.models[model_name]
    commands = {name: percall_command(ctx, name, model, shape, block, config_hex)
                for name in contenders}
    return served_blocks(s.sets, s.rounds, commands, lambda servers: {
        name: partial(server.time_block, block, block_warmup(block))
        for name, server in servers.items()})


def blocks_label(sets: int, rounds: int, block: int | str) -> str:
    return f"{sets * rounds} blocks of {block} calls ({sets} sets x {rounds} rounds)"


def per_call_label(settings: Settings, block: int | str) -> str:
    return blocks_label(settings.sets, settings.rounds, block)


# --- the measurements ----------------------------------------------------------------------

LATENCY_METRICS = ("p50_us", "p99_us", "mean_us", "min_us")


def per_call_tiny(ctx: Context) -> Section:
    block = ctx.settings.tiny_block
    results = per_call(ctx, "tiny_add", (1, 4), block,
                       ["raw C", "smrt", "TF tf.constant", "TF numpy"])
    section = Section("per-call tiny_add", per_call_label(ctx.settings, block),
                      LATENCY_METRICS, results, [])
    section.ratios = [
        ratio(section, "p50 smrt / raw C", median_ratio(results, "smrt", "raw C", "p50_us"),
              Target("<=", 1.5)),
        ratio(section, "mean smrt / raw C", median_ratio(results, "smrt", "raw C", "mean_us"),
              "(reference)"),
        ratio(section, "p50 TF tf.constant / smrt",
              median_ratio(results, "TF tf.constant", "smrt", "p50_us"), Target(">=", 5),
              ci=True),
        ratio(section, "p50 TF numpy / smrt",
              median_ratio(results, "TF numpy", "smrt", "p50_us"), Target(">=", 5), ci=True),
    ]
    return section


def per_call_tiny_inline(ctx: Context) -> Section:
    """raw C vs smrt with ops run in the caller's thread (the inline floor): no thread-pool
    hand-off, so the floor is TensorFlow's own work and smrt's overhead shows undiluted.
    Also a bound call (sig.bind), a call that keeps the GIL (sig.release_gil = False), and
    the Python timing loop around an empty call, which every Python contender pays too."""
    block = ctx.settings.tiny_block
    results = per_call(ctx, "tiny_add", (1, 4), block,
                       ["raw C", "smrt", "smrt bound", "smrt GIL held", "Python no-op"],
                       INLINE_CONFIG_HEX)
    section = Section("per-call tiny_add, inline session", per_call_label(ctx.settings, block),
                      LATENCY_METRICS, results, [])
    section.ratios = [
        ratio(section, "p50 smrt / raw C", median_ratio(results, "smrt", "raw C", "p50_us"),
              Target("<=", 1.3)),
        ratio(section, "p50 smrt bound / raw C",
              median_ratio(results, "smrt bound", "raw C", "p50_us"), "(reference)"),
        ratio(section, "p50 smrt GIL held / smrt",
              median_ratio(results, "smrt GIL held", "smrt", "p50_us"), "(reference)"),
        ratio(section, "p50 Python no-op / raw C",
              median_ratio(results, "Python no-op", "raw C", "p50_us"), "(reference)"),
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


def batch_block(settings: Settings, batch: int) -> int:
    """Calls per block on keras_mobilenet at `batch`: about as many examples at every batch."""
    return max(2, settings.mobilenet_block // batch)


def batch_sweep(ctx: Context) -> Section:
    """keras_mobilenet at batch 1, 8 and 32: smrt and TF, each in one child serving every
    batch size, and raw C at batch 1 (raw_c_loop serves one input shape)."""
    s, model = ctx.settings, ctx.models["keras_mobilenet"]
    commands = {"raw C": percall_command(ctx, "raw C", model, MOBILENET_SHAPE,
                                         s.mobilenet_block)}
    for name in ("smrt", "TF tf.constant"):
        commands[name] = percall_command(ctx, name, model, MOBILENET_SHAPE, s.mobilenet_block,
                                         batches=BATCHES[1:])

    def measures(servers: dict[str, BlockServer]) -> dict[str, Measure]:
        out: dict[str, Measure] = {}
        for batch in BATCHES:
            block = batch_block(s, batch)
            for name, server in servers.items():
                if name != "raw C":
                    out[f"{name} b{batch}"] = partial(server.time_block, block,
                                                      block_warmup(block), batch)
                elif batch == MOBILENET_SHAPE[0]:
                    out[f"{name} b{batch}"] = partial(server.time_block, block,
                                                      block_warmup(block))
        return out

    results = served_blocks(s.sets, s.rounds, commands, measures)
    blocks = "/".join(str(batch_block(s, batch)) for batch in BATCHES)
    section = Section("per-call keras_mobilenet, batch 1/8/32",
                      per_call_label(s, blocks), LATENCY_METRICS, results, [])
    section.ratios = [
        ratio(section, "p50 smrt / raw C, batch 1",
              median_ratio(results, "smrt b1", "raw C b1", "p50_us"), "(reference)"),
    ] + [
        ratio(section, f"p50 TF tf.constant / smrt, batch {batch}",
              median_ratio(results, f"TF tf.constant b{batch}", f"smrt b{batch}", "p50_us"),
              Target(">=", 1.0) if batch == 1 else "(reference)")
        for batch in BATCHES
    ]
    return section


THROUGHPUT_WORKERS = {"smrt": "smrt", "TF": "tf-constant"}
"""Throughput contenders -> their name in workers.py."""


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n > 1 else ''}"


def throughput(ctx: Context) -> Section:
    """Calls per second on tiny_add from 1, 2 and 4 Python threads sharing one loaded
    signature: one child per contender serving every thread count, in turns."""
    s, model = ctx.settings, ctx.models["tiny_add"]
    key = tensor_names(model)[0]
    block = s.throughput_block
    commands = {name: worker_command("throughput", contender=contender, model=str(model),
                                     input_key=key, shape=[1, 4], warmup=block)
                for name, contender in THROUGHPUT_WORKERS.items()}
    results = served_blocks(s.throughput_sets, s.rounds, commands, lambda servers: {
        f"{name}, {_threads(n)}": partial(server.time_block, block, block_warmup(block), n)
        for n in THREADS for name, server in servers.items()})
    section = Section("throughput tiny_add, threads sharing a model",
                      blocks_label(s.throughput_sets, s.rounds, block), ("calls_per_s",),
                      results, [])
    section.ratios = [
        ratio(section, f"calls/s smrt / TF, {_threads(n)}",
              median_ratio(results, f"smrt, {_threads(n)}", f"TF, {_threads(n)}",
                           "calls_per_s"), "(reference)")
        for n in THREADS
    ]
    return section


SECTIONS: tuple[Callable[[Context], Section], ...] = (
    per_call_tiny, per_call_tiny_inline, cold_start, peak_memory, throughput, batch_sweep,
)


# --- reporting -----------------------------------------------------------------------------


def _cell(metric: str, value: float) -> str:
    if metric == "calls_per_s":
        return f"{value:9.0f} calls/s"
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
        print(f"  {name:<18} {cells}")


def _verdict(r: Ratio) -> str:
    verdict = {True: "ok", False: "MISSED", None: ""}[r.passed]
    if r.ci_passed is not None:
        verdict += f"; CI ({CI_TARGET}) {'ok' if r.ci_passed else 'FAILED'}"
    return verdict.removeprefix("; ")


def print_ratios(ratios: list[Ratio]) -> None:
    w_section = max(len(r.section) for r in ratios)
    w_name = max(len(r.name) for r in ratios)
    print(f"\n{'measurement':<{w_section}} {'ratio':<{w_name}} {'value':>8}  {'target':<17} "
          "result")
    for r in ratios:
        print(f"{r.section:<{w_section}} {r.name:<{w_name}} {r.value:7.2f}x  {r.target:<17} "
              f"{_verdict(r)}")


def _color(r: Ratio) -> str:
    if r.passed is False or r.ci_passed is False:
        return "tab:red"
    return "tab:gray" if r.passed is None else "tab:green"


def write_chart(ratios: list[Ratio], title: str, path: Path) -> bool:
    """A bar per ratio, on a log scale, its target marked; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(11, 0.42 * len(ratios) + 1.6))
    rows = range(len(ratios))[::-1]  # the first ratio on top
    ax.barh(rows, [r.value for r in ratios], color=[_color(r) for r in ratios], height=0.6)
    for row, r in zip(rows, ratios, strict=True):
        ax.annotate(f"{r.value:.2f}x  {r.target}", (r.value, row), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)
        bound = r.target.split()[1].removesuffix("x") if r.target[:1] in "<>" else None
        if bound is not None:
            ax.plot([float(bound)] * 2, [row - 0.4, row + 0.4], color="black", linewidth=2)
    ax.set_yticks(list(rows), [f"{r.section}: {r.name}" for r in ratios], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(right=max(r.value for r in ratios) * 2.5)
    ax.axvline(1.0, color="black", linewidth=0.6, linestyle=":")
    ax.set_xlabel("ratio (log scale); black tick: target; green: met, red: missed, "
                  "gray: for reference")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


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
        "smrt": smrt.__version__,  # the import name: the distribution is named otherwise
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer sets, rounds and calls, a 100 MB big input (for CI)")
    p.add_argument("--json", type=Path, metavar="PATH",
                   help="write all results to PATH (default: benchmarks/results/<mode>.json;"
                        " the chart goes next to it, as .png)")
    gate = p.add_mutually_exclusive_group()
    gate.add_argument("--check", action="store_true",
                      help="exit with status 1 if any target is missed")
    gate.add_argument("--ci", action="store_true",
                      help="exit with status 1 only if smrt is slower per call than "
                           "TensorFlow's Python API on tiny_add (p50 ratio < 1)")
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
    ci_failed = [r for r in ratios if r.ci_passed is False]
    wall = time.perf_counter() - start
    print(f"\n{len(missed)} target(s) missed, {len(ci_failed)} CI check(s) failed; "
          f"total wall time {wall:.0f} s")

    json_path: Path = args.json or RESULTS_DIR / f"{mode}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({
        "mode": mode,
        "settings": asdict(settings),
        "environment": env,
        "results": {s.title: s.results for s in sections},
        "ratios": [asdict(r) for r in ratios],
        "targets_missed": len(missed),
        "ci_failed": len(ci_failed),
        "wall_s": wall,
    }, indent=2))
    chart = json_path.with_suffix(".png")
    title = (f"smrt {env['smrt']} vs TensorFlow {env['tensorflow']} Python API and raw C, "
             f"{mode} mode, {env['cpus']} CPUs")
    if write_chart(ratios, title, chart):
        print(f"wrote {json_path} and {chart}")
    else:
        print(f"wrote {json_path}; no chart: matplotlib is not installed")
    if args.ci:
        return 1 if ci_failed else 0
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
