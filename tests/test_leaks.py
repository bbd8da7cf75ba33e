"""Memory stays flat over many thousands of calls: inputs, outputs, strings and error paths."""

from __future__ import annotations

from .conftest import Zoo

CALLS = 20_000
ALLOWED_GROWTH_MB = 4.0  # leaking even ~200 bytes a call would grow ~4 MB per path


def test_rss_is_stable_over_many_calls(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import gc, numpy as np, psutil, smrt
proc = psutil.Process()
add = smrt.load({zoo.path("add_one")!r}).signatures["serving_default"]
strings = smrt.load({zoo.path("multiple_signatures")!r}).signatures["serving_default"]
dtypes = smrt.load({zoo.path("all_dtypes")!r}).signatures["scalars"]
aligned = smrt.aligned(np.ones((4, 16), np.float32))
plain = np.ones((4, 17), np.float32)[:, 1:]  # unaligned and strided: the copy path

def round_of_calls():
    add(x=aligned)
    add(x=plain)
    strings(string_input=b"3.25")
    dtypes(a=1.5, b=2, c="a string longer than twenty-two bytes")
    try:
        add(x=np.ones((2, 2), np.float64))
    except smrt.InputTypeError:
        pass
    try:
        add(y=aligned)
    except smrt.InvalidInputError:
        pass

def rss_mb():
    gc.collect()
    return proc.memory_info().rss / 2**20

for _ in range(2000):
    round_of_calls()
before = rss_mb()
for _ in range({CALLS}):
    round_of_calls()
print(rss_mb() - before)
""")
    growth = float(out)
    assert growth < ALLOWED_GROWTH_MB, f"RSS grew {growth:.1f} MB over {CALLS} rounds of calls"
