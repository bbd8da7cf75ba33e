"""Where smrt's per-call time goes, in instructions (valgrind's callgrind), which unlike wall
time does not depend on what else the machine runs.

    python benchmarks/profile_call.py [--calls N] [--mode call|bound] [--cache-sim]

It runs `tiny_add` (inline session) under callgrind twice, with 0 and with N calls of
``sig(x=x)`` (or of a bound call), and the raw C loop likewise with 1 and N+1 calls; the
difference over N is the cost of one call, per function. It prints the totals and the
functions where smrt's call differs most from the raw C loop; with --cache-sim, also the
first-level cache misses callgrind simulates. Needs valgrind and callgrind_annotate; takes
about a minute (a few with --cache-sim). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import CHILD_ENV, DEFAULT_CACHE, build_raw_c_loop, ensure_models, libtensorflow_path

INLINE_CONFIG_HEX = "28" + "ff" * 9 + "01"  # ConfigProto {inter_op_parallelism_threads: -1}

PROGRAM = """
import gc, sys, numpy as np, smrt
sig = smrt.load(sys.argv[1], inter_op_threads=-1).signatures["serving_default"]
x = smrt.empty((1, 4), np.float32)
x.fill(1.0)
y = smrt.empty((1, 4), np.float32)
bound = sig.bind({"x": x}, {"y": y})
call = bound if sys.argv[3] == "bound" else (lambda: sig(x=x))
for _ in range(200):
    call()
gc.disable()
for _ in range(int(sys.argv[2])):
    call()
"""


def per_function(out: Path) -> dict[str, int]:
    """Self cost per function of a callgrind output file."""
    text = subprocess.run(["callgrind_annotate", "--show=Ir", "--sort=Ir", "--inclusive=no",
                           "--threshold=100", str(out)],
                          capture_output=True, text=True, check=True).stdout
    costs: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line)
        if m:
            name = re.sub(r"^/tmp/[^:]*:", "", m.group(2))
            costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


ALLOCATORS = ("malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign")
"""C heap allocation entry points (operator new and PyMem/PyObject_Malloc end in malloc)."""


def allocation_calls(out: Path) -> int:
    """How many times the program called a C allocator, from the call counts in `out`."""
    names: dict[str, str] = {}
    callee, total = "", 0
    for line in out.read_text(errors="replace").splitlines():
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("cfn="):
                callee = names.get(m.group(1), "")
            continue
        if line.startswith("calls=") and callee in ALLOCATORS:
            total += int(line.split("=")[1].split()[0])
    return total


SIMULATED = ("I1mr", "D1mr")
"""With --cache-sim: first-level instruction and data read misses, as callgrind simulates them."""


def event_totals(out: Path) -> dict[str, int]:
    """The whole program's count of each event in `out` (its `events:` and `summary:` lines)."""
    text = out.read_text(errors="replace")
    events = re.search(r"^events: (.*)$", text, re.M)
    totals = re.search(r"^(?:summary|totals): (.*)$", text, re.M)
    if not events or not totals:
        raise SystemExit(f"{out}: no events or summary line (not a callgrind output?)")
    return dict(zip(events.group(1).split(), map(int, totals.group(1).split()), strict=True))


def callgrind(cmd: list[str], out: Path, cache_sim: bool = False) -> dict[str, int]:
    sim = ["--cache-sim=yes"] if cache_sim else []
    subprocess.run(["valgrind", "--tool=callgrind", *sim, f"--callgrind-out-file={out}", *cmd],
                   env=CHILD_ENV, capture_output=True, check=True)
    costs = per_function(out)
    costs["C heap allocations"] = allocation_calls(out)
    if cache_sim:
        totals = event_totals(out)
        costs.update({event: totals[event] for event in SIMULATED})
    return costs


def per_call(before: dict[str, int], after: dict[str, int], calls: int) -> dict[str, float]:
    return {k: (after.get(k, 0) - before.get(k, 0)) / calls for k in before.keys() | after.keys()}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=10_000)
    p.add_argument("--mode", choices=("call", "bound"), default="call")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--cache-sim", action="store_true",
                   help="also count simulated L1 cache misses per call (several times slower)")
    args = p.parse_args(argv)
    model = ensure_models(DEFAULT_CACHE, ["tiny_add"])["tiny_add"]
    raw = build_raw_c_loop(DEFAULT_CACHE)
    lib = libtensorflow_path()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        smrt_cmd = [sys.executable, "-c", PROGRAM, str(model)]
        raw_cmd = [str(raw), str(lib), str(model), "serving_default_x:0", "PartitionedCall:0",
                   "1,4"]
        sim = args.cache_sim
        s = per_call(callgrind([*smrt_cmd, "0", args.mode], d / "s0", sim),
                     callgrind([*smrt_cmd, str(args.calls), args.mode], d / "s1", sim), args.calls)
        r = per_call(callgrind([*raw_cmd, "1", "200", INLINE_CONFIG_HEX], d / "r0", sim),
                     callgrind([*raw_cmd, str(args.calls + 1), "200", INLINE_CONFIG_HEX],
                               d / "r1", sim),
                     args.calls)
    total_s, total_r = s.get("PROGRAM TOTALS", 0), r.get("PROGRAM TOTALS", 0)
    print(f"instructions per call: smrt {args.mode} {total_s:,.0f}, raw C {total_r:,.0f}, "
          f"ratio {total_s / total_r:.2f}x, smrt's own {total_s - total_r:,.0f}")
    alloc_s, alloc_r = s["C heap allocations"], r["C heap allocations"]
    print(f"C heap allocations per call: smrt {args.mode} {alloc_s:.2f}, raw C {alloc_r:.2f}")
    if args.cache_sim:
        print("simulated L1 misses per call: " + ", ".join(
            f"{event} smrt {s[event]:,.0f} raw C {r[event]:,.0f}" for event in SIMULATED))
    summary = ("PROGRAM TOTALS", "C heap allocations", *SIMULATED)
    rows = sorted(((s.get(k, 0) - r.get(k, 0), k) for k in s.keys() | r.keys()
                   if k not in summary), reverse=True)
    for diff, name in rows[:args.top]:
        print(f"{diff:8.0f}  smrt {s.get(name, 0):7.0f}  raw {r.get(name, 0):7.0f}  {name[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
