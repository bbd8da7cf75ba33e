"""smrt's CLI against saved_model_cli: whole-process wall time, side by side.

    python benchmarks/run_cli.py [--reps N] [--check]

For each command line, runs ``smrt ...`` and ``saved_model_cli ...`` alternately, ``--reps``
times each (fresh processes every time), and reports the median wall-time ratio
saved_model_cli / smrt. Targets from the CLI issue: ``show`` at least 10x faster, ``run`` at
least 4x. Also checks that both printed the same text, so the speed is for the same answer.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import CHILD_ENV, DEFAULT_CACHE, ensure_models, median

TARGETS = {"show": 10.0, "run": 4.0}


def command_lines(models: dict[str, Path]) -> list[tuple[str, list[str]]]:
    tiny, mobilenet = str(models["tiny_add"]), str(models["keras_mobilenet"])
    sig = ["--tag_set", "serve", "--signature_def", "serving_default"]
    return [
        ("show", ["show", "--dir", mobilenet]),
        ("show", ["show", "--dir", mobilenet, *sig]),
        ("show", ["show", "--dir", mobilenet, "--tag_set", "serve", "--list_ops"]),
        ("run", ["run", "--dir", tiny, *sig, "--input_exprs", "x=[[1.0, 2.0, 3.0, 4.0]]"]),
    ]


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=CHILD_ENV, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    smrt_cli, tf_cli = shutil.which("smrt"), shutil.which("saved_model_cli")
    if not smrt_cli or not tf_cli:
        sys.exit("needs both `smrt` and `saved_model_cli` on PATH")
    models = ensure_models(args.cache_dir, ["tiny_add", "keras_mobilenet"])

    missed = 0
    print(f"{'command':<62} {'smrt':>8} {'saved_model_cli':>16} {'ratio':>7}  target")
    for kind, argv in command_lines(models):
        smrt_s, tf_s = [], []
        for _ in range(args.reps):  # alternate, so drift hits both alike
            t, smrt_out = timed([smrt_cli, *argv])
            smrt_s.append(t)
            t, tf_out = timed([tf_cli, *argv])
            tf_s.append(t)
        if kind == "run" and smrt_out != tf_out:
            sys.exit(f"outputs differ for {argv}:\n{smrt_out}\n---\n{tf_out}")
        ratio = median(tf_s) / median(smrt_s)
        ok = ratio >= TARGETS[kind]
        missed += not ok
        label = " ".join(a if "/" not in a else Path(a).name for a in argv)[:62]
        print(f"{label:<62} {median(smrt_s):7.2f}s {median(tf_s):15.2f}s {ratio:6.1f}x  "
              f">= {TARGETS[kind]:g}x {'ok' if ok else 'MISSED'}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
