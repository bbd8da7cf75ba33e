"""``smrt bench``: load a SavedModel once and time one signature on random inputs.

Inputs are made from the signature: fixed dimensions as declared, a leading unknown dimension
from ``--batch`` (default 1), any other unknown dimension (or unknown rank) from
``--shape key=d0,d1,...``. Numeric inputs are 64-byte aligned (:func:`smrt.empty`), so the
calls are zero-copy and the numbers are smrt's own. Each of ``--threads`` threads calls the
signature in a loop until ``--duration`` seconds have passed or ``--iterations`` calls (in all)
are done, after ``--warmup`` calls that are not counted.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import smrt
from smrt.saved_model import SignatureInfo, TensorSpec

from .common import shape_text, signature_of, tags_from_flag
from .errors import CliError
from .op_library_flag import add_op_library_argument
from .op_policy_flag import add_op_policy_argument

DEFAULT_DURATION = 10.0
PERCENTILES = (50, 90, 99)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench", help="time a signature on random inputs (latency percentiles, throughput)",
        description="Load a SavedModel once and call one signature on random inputs that fit "
                    "it, from one or more threads; print latency and throughput.",
    )
    parser.add_argument("--dir", required=True, help="the SavedModel directory")
    parser.add_argument("--tag_set", default="serve", help="the MetaGraph's tags (default: serve)")
    parser.add_argument("--signature_def", default="serving_default",
                        help="the SignatureDef key to call (default: serving_default)")
    parser.add_argument("--batch", type=int, default=1,
                        help="the size of each input's leading unknown dimension (default: 1)")
    parser.add_argument("--shape", action="append", default=[], metavar="KEY=D0,D1,...",
                        help="an input's whole shape, for unknown dimensions or rank "
                             "(repeatable; 'KEY=' is a scalar)")
    parser.add_argument("--threads", type=int, default=1, help="calling threads (default: 1)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--duration", type=float,
                       help=f"seconds to run for (default: {DEFAULT_DURATION:g})")
    limit.add_argument("--iterations", type=int, help="timed calls in all, over every thread")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed calls before timing starts (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random inputs")
    parser.add_argument("--inter_op_threads", type=int, default=0,
                        help="TensorFlow's inter-op pool; -1 runs ops in the calling thread")
    parser.add_argument("--intra_op_threads", type=int, default=0,
                        help="TensorFlow's intra-op pool (0: TensorFlow chooses)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_op_policy_argument(parser)
    add_op_library_argument(parser)
    parser.set_defaults(func=run)


@dataclass
class Timings:
    """What the timed loop measured."""

    latencies: np.ndarray
    """Seconds per call, every thread's calls together."""
    wall: float
    """Seconds from the first timed call's start to the last one's end."""


def run(args: argparse.Namespace) -> int:
    _check_counts(args)
    tags = tags_from_flag(args.tag_set)
    sig_info = signature_of(smrt.inspect(args.dir).meta_graph(tags), args.signature_def)
    shapes = input_shapes(sig_info, args.batch, parse_shapes(args.shape))
    feed = random_inputs(sig_info, shapes, np.random.default_rng(args.seed))

    start = time.perf_counter()
    with smrt.load(args.dir, tags, inter_op_threads=args.inter_op_threads,
                   intra_op_threads=args.intra_op_threads, op_policy=args.op_policy,
                   op_libraries=args.op_library) as model:
        load_seconds = time.perf_counter() - start
        call = model.signatures[args.signature_def]
        start = time.perf_counter()
        call(**feed)
        first_call = time.perf_counter() - start
        for _ in range(args.warmup):
            call(**feed)
        timings = time_calls(lambda: call(**feed), args.threads, args.duration, args.iterations,
                             progress=sys.stderr.isatty())
    report = summary(args, sig_info, shapes, load_seconds, first_call, timings)
    print(json.dumps(report, indent=2) if args.json else "\n".join(text_lines(report)))
    return 0


def _check_counts(args: argparse.Namespace) -> None:
    if args.threads < 1:
        raise CliError("--threads must be at least 1")
    if args.iterations is not None and args.iterations < 1:
        raise CliError("--iterations must be at least 1")
    if args.duration is not None and not args.duration > 0:
        raise CliError("--duration must be more than 0 seconds")
    if args.warmup < 0:
        raise CliError("--warmup cannot be negative")
    if args.batch < 0:
        raise CliError("--batch cannot be negative")


def parse_shapes(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """--shape 'key=1,224,224,3' (repeatable); 'key=' is a scalar."""
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items:
        key, sep, dims = item.partition("=")
        key = key.strip()
        try:
            if not sep or not key:
                raise ValueError
            shape = tuple(int(d) for d in dims.split(",")) if dims.strip() else ()
            if any(d < 0 for d in shape):
                raise ValueError
        except ValueError:
            raise CliError(f"--shape {item!r} is not '<key>=<d0>,<d1>,...' with dimensions "
                           "of 0 or more") from None
        shapes[key] = shape
    return shapes


def input_shapes(sig: SignatureInfo, batch: int,
                 given: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Each input's concrete shape: --shape, else the signature's with --batch for a leading
    unknown dimension. Refuses a shape that cannot be made or does not fit."""
    unknown = sorted(set(given) - set(sig.inputs))
    if unknown:
        raise CliError(f"--shape names {', '.join(map(repr, unknown))}, which is not an input "
                       f"of {sig.key!r}; its inputs are: {', '.join(sorted(sig.inputs))}")
    return {key: given[key] if key in given else _shape_from_signature(spec, batch)
            for key, spec in sorted(sig.inputs.items())}


def _shape_from_signature(spec: TensorSpec, batch: int) -> tuple[int, ...]:
    if spec.shape is None:
        raise CliError(f"input {spec.name!r} has unknown rank: give its shape with "
                       f"--shape {spec.name}=<d0>,<d1>,...")
    if any(d is None for d in spec.shape[1:]):
        raise CliError(f"input {spec.name!r} has shape {shape_text(spec.shape, ',')}, with "
                       "unknown dimensions other than the batch: give them with "
                       f"--shape {spec.name}=<d0>,<d1>,...")
    return tuple(batch if d is None else d for d in spec.shape)


def _check_fits(spec: TensorSpec, shape: tuple[int, ...]) -> None:
    if spec.shape is None:
        return
    fits = len(shape) == len(spec.shape) and all(
        want is None or want == got for want, got in zip(spec.shape, shape, strict=True))
    if not fits:
        raise CliError(f"--shape {spec.name}={','.join(map(str, shape))} does not fit the "
                       f"input's declared shape {shape_text(spec.shape, ',')}")


def random_inputs(sig: SignatureInfo, shapes: Mapping[str, tuple[int, ...]],
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random values of each input's dtype and shape, 64-byte aligned unless strings."""
    feed = {}
    for key, shape in shapes.items():
        spec = sig.inputs[key]
        _check_fits(spec, shape)
        feed[key] = random_array(spec.dtype, spec.numpy_dtype, shape, rng)
    return feed


def random_array(dtype: str, np_dtype: np.dtype[Any], shape: tuple[int, ...],
                 rng: np.random.Generator) -> np.ndarray:
    """Random values for a TensorFlow dtype: short ASCII bytes for strings, small
    non-negative integers (safe as indices), normal floats, a coin toss for bool."""
    size = int(np.prod(shape, dtype=np.int64))
    if dtype == "string":
        lengths = rng.integers(1, 17, size=size)
        letters = rng.integers(ord("a"), ord("z") + 1, size=int(lengths.sum()), dtype=np.uint8)
        words, pos = [], 0
        for n in lengths.tolist():
            words.append(letters[pos:pos + n].tobytes())
            pos += n
        strings = np.empty(size, dtype=object)
        strings[:] = words
        return strings.reshape(shape)
    if np_dtype.kind == "b":
        values: np.ndarray = rng.random(size) < 0.5
    elif np_dtype.kind in "iu":
        values = rng.integers(0, 10, size=size)
    elif np_dtype.kind == "c":
        values = rng.standard_normal(size) + 1j * rng.standard_normal(size)
    else:  # float16/32/64, bfloat16
        values = rng.standard_normal(size)
    out = smrt.empty(shape, np_dtype)
    out[...] = values.astype(np_dtype).reshape(shape)
    return out


def time_calls(call: Callable[[], object], threads: int, duration: float | None,
               iterations: int | None, progress: bool = False) -> Timings:
    """Calls `call` from `threads` threads, for `duration` seconds or `iterations` calls in all
    (default: DEFAULT_DURATION seconds). The first error in any thread stops them all and is
    raised here."""
    if iterations is None and duration is None:
        duration = DEFAULT_DURATION
    quotas = ([iterations // threads + (i < iterations % threads) for i in range(threads)]
              if iterations is not None else [None] * threads)
    per_thread: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    stop = threading.Event()
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def loop(quota: int | None, out: list[float]) -> None:
        barrier.wait()
        clock = time.perf_counter
        try:
            while not stop.is_set() and (len(out) < quota if quota is not None
                                         else clock() < deadline[0]):
                start = clock()
                call()
                out.append(clock() - start)
        except BaseException as e:  # reported by the main thread
            errors.append(e)
            stop.set()

    workers = [threading.Thread(target=loop, args=(q, out), daemon=True)
               for q, out in zip(quotas, per_thread, strict=True)]
    for worker in workers:
        worker.start()
    start = time.perf_counter()
    deadline[0] = start + (duration or 0.0)
    barrier.wait()
    try:
        _wait(workers, per_thread, start, duration, iterations, progress)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return Timings(np.array([t for out in per_thread for t in out], dtype=np.float64), wall)


def _wait(workers: list[threading.Thread], per_thread: list[list[float]], start: float,
          duration: float | None, iterations: int | None, progress: bool) -> None:
    """Waits for the workers, drawing a progress bar on stderr when `progress`."""
    if not progress:
        for worker in workers:
            worker.join()
        return
    while any(w.is_alive() for w in workers):
        time.sleep(0.1)
        done = sum(len(out) for out in per_thread)
        elapsed = time.perf_counter() - start
        share = done / iterations if iterations else elapsed / (duration or 1.0)
        _draw(min(share, 1.0), done, elapsed)
    sys.stderr.write("\r" + " " * 60 + "\r")
    sys.stderr.flush()


def _draw(share: float, calls: int, elapsed: float) -> None:
    filled = int(share * 30)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%} "
                     f"{calls} calls, {elapsed:.1f}s")
    sys.stderr.flush()


def summary(args: argparse.Namespace, sig: SignatureInfo, shapes: Mapping[str, tuple[int, ...]],
            load_seconds: float, first_call: float, timings: Timings) -> dict[str, Any]:
    """Every number bench reports, as plain data (the --json output; the text is made from it).
    Times are in milliseconds."""
    lat = timings.latencies
    calls = int(lat.size)
    batch = examples_per_call(shapes)
    per_second = calls / timings.wall if timings.wall > 0 else 0.0
    latency = {f"p{p}": float(np.percentile(lat, p)) * 1e3 for p in PERCENTILES} if calls else {}
    if calls:
        latency |= {"mean": float(lat.mean()) * 1e3, "min": float(lat.min()) * 1e3,
                    "max": float(lat.max()) * 1e3}
    return {
        "dir": args.dir,
        "tag_set": tags_from_flag(args.tag_set),
        "signature_def": args.signature_def,
        "inputs": {k: {"dtype": sig.inputs[k].dtype, "shape": list(s)} for k, s in shapes.items()},
        "batch": batch,
        "threads": args.threads,
        "warmup": args.warmup,
        "load_ms": load_seconds * 1e3,
        "first_call_ms": first_call * 1e3,
        "calls": calls,
        "seconds": timings.wall,
        "latency_ms": latency,
        "calls_per_second": per_second,
        "examples_per_second": per_second * batch,
    }


def examples_per_call(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """The leading dimension the inputs share; 1 if they have none in common (or are scalars)."""
    leading = {shape[0] for shape in shapes.values() if shape}
    return leading.pop() if len(leading) == 1 else 1


def text_lines(report: Mapping[str, Any]) -> list[str]:
    """The human-readable report."""
    inputs = ", ".join(f"{k} {v['dtype']}[{','.join(map(str, v['shape']))}]"
                       for k, v in report["inputs"].items())
    lat = report["latency_ms"]
    lines = [
        f"Model: {report['dir']} (tag-set '{','.join(report['tag_set'])}', "
        f"signature '{report['signature_def']}')",
        f"Inputs: {inputs or '(none)'}",
        f"Load time: {_ms(report['load_ms'])}; first call: {_ms(report['first_call_ms'])}",
        f"Calls: {report['calls']} in {report['seconds']:.2f} s from {report['threads']} "
        f"thread(s), after {report['warmup']} warm-up call(s)",
    ]
    if lat:
        lines.append("Latency: " + ", ".join(f"{k} {_ms(v)}" for k, v in lat.items()))
    lines.append(f"Throughput: {report['calls_per_second']:,.1f} calls/s, "
                 f"{report['examples_per_second']:,.1f} examples/s (batch {report['batch']})")
    return lines


def _ms(milliseconds: float) -> str:
    """A duration in the unit that fits: µs below 1 ms, s from 10 s."""
    if milliseconds < 1:
        return f"{milliseconds * 1e3:.1f} µs"
    if milliseconds >= 10_000:
        return f"{milliseconds / 1e3:.2f} s"
    return f"{milliseconds:.2f} ms"
