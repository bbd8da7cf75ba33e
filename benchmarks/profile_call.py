"""Where smrt's per-call time goes, in instructions (valgrind's callgrind), which unlike wall
time does not depend on what else the machine runs.

    python benchmarks/profile_call.py [--calls N] [--mode call|bound]

It runs `tiny_add` (inline session) under callgrind twice, with 0 and with N calls of
``sig(x=x)`` (or of a bound call), and the raw C loop likewise with 1 and N+1 calls; the
difference over N is the cost of one call, per function. It prints the totals and the
functions where smrt's call differs most from the raw C loop. Needs valgrind and
callgrind_annotate; takes about a minute. See benchmarks/README.md.
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
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", str(out)],
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


def callgrind(cmd: list[str], out: Path) -> dict[str, int]:
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
                   env=CHILD_ENV, capture_output=True, check=True)
    costs = per_function(out)
    costs["C heap allocations"] = allocation_calls(out)
    return costs


def per_call(before: dict[str, int], after: dict[str, int], calls: int) -> dict[str, float]:
    return {k: (after.get(k, 0) - before.get(k, 0)) / calls for k in before.keys() | after.keys()}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=10_000)
    p.add_argument("--mode", choices=("call", "bound"), default="call")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    model = ensure_models(DEFAULT_CACHE, ["tiny_add"])["tiny_add"]
    raw = build_raw_c_loop(DEFAULT_CACHE)
    lib = libtensorflow_path()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        smrt_cmd = [sys.executable, "-c", PROGRAM, str(model)]
        raw_cmd = [str(raw), str(lib), str(model), "serving_default_x:0", "PartitionedCall:0",
                   "1,4"]
        s = per_call(callgrind([*smrt_cmd, "0", args.mode], d / "s0"),
                     callgrind([*smrt_cmd, str(args.calls), args.mode], d / "s1"), args.calls)
        r = per_call(callgrind([*raw_cmd, "1", "200", INLINE_CONFIG_HEX], d / "r0"),
                     callgrind([*raw_cmd, str(args.calls + 1), "200", INLINE_CONFIG_HEX], d / "r1"),
                     args.calls)
    total_s, total_r = s.get("PROGRAM TOTALS", 0), r.get("PROGRAM TOTALS", 0)
    print(f"instructions per call: smrt {args.mode} {total_s:,.0f}, raw C {total_r:,.0f}, "
          f"ratio {total_s / total_r:.2f}x, smrt's own {total_s - total_r:,.0f}")
    alloc_s, alloc_r = s["C heap allocations"], r["C heap allocations"]
    print(f"C heap allocations per call: smrt {args.mode} {alloc_s:.2f}, raw C {alloc_r:.2f}")
    summary = ("PROGRAM TOTALS", "C heap allocations")
    rows = sorted(((s.get(k, 0) - r.get(k, 0), k) for k in s.keys() | r.keys()
                   if k not in summary), reverse=True)
    for diff, name in rows[:args.top]:
        print(f"{diff:8.0f}  smrt {s.get(name, 0):7.0f}  raw {r.get(name, 0):7.0f}  {name[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
