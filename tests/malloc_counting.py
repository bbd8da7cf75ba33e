"""Counting C heap allocations: tests/native/count_malloc.c, preloaded into a child process,
and the child's code that counts them per call."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_counter(out_dir: Path) -> Path:
    """count_malloc.so, built into `out_dir`: preload it (LD_PRELOAD) to count."""
    counter = out_dir / "count_malloc.so"
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC",
                    str(ROOT / "tests" / "native" / "count_malloc.c"), "-o", str(counter)],
                   check=True)
    return counter


PER_CALL = """
import ctypes, itertools
count = ctypes.CDLL(None).smrt_test_allocations
count.restype = ctypes.c_long
def per_call(call):  # the fewest of three windows: the process's rare one-off mallocs aside
    for _ in range(100):
        call()
    counts = []
    for _ in range(3):
        calls = itertools.repeat(None, 1000)
        before = count()
        for _ in calls:
            call()
        counts.append((count() - before) / 1000)
    return min(counts)
"""
"""Child code defining per_call(call): C allocations per call of `call`, after a warm-up."""
