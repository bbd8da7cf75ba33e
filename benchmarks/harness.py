"""What the benchmark driver and its child processes share: paths, the model cache, the raw C
loop, running children, and statistics.

Standard library only, so a child that imports it pays nothing measurable and never loads
TensorFlow or smrt by accident.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_CACHE = BENCH_DIR / ".models"
ZOO_SCRIPT = REPO / "tests" / "model_zoo.py"
WORKERS = BENCH_DIR / "workers.py"
RAW_C_SOURCES = (BENCH_DIR / "raw_c_loop.cc", REPO / "cpp" / "src" / "tf_c_api.h")

# Every child gets the same environment: TensorFlow's Python package and smrt both quiet.
CHILD_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
CHILD_TIMEOUT_S = 600

Result = dict[str, Any]
Command = Sequence[str | os.PathLike[str]]


# --- children ------------------------------------------------------------------------------


class ChildError(RuntimeError):
    """A child process failed; the message holds its command and stderr."""


def _args(cmd: Command) -> list[str]:
    return [str(c) for c in cmd]


def _failure(cmd: Command, returncode: int | None, stderr: str) -> ChildError:
    return ChildError(f"`{shlex.join(_args(cmd))}` exited with {returncode}:\n{stderr[-4000:]}")


def _run(cmd: Command) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(_args(cmd), capture_output=True, text=True, env=CHILD_ENV,
                          timeout=CHILD_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise _failure(cmd, proc.returncode, proc.stderr)
    return proc


def worker_command(task: str, **args: Any) -> list[str]:
    """The command running one task of workers.py in a fresh interpreter."""
    return [sys.executable, str(WORKERS), json.dumps({"task": task, **args})]


def run_json(cmd: Command) -> Result:
    """Runs `cmd`; returns the JSON object on the last line of its stdout."""
    lines = _run(cmd).stdout.strip().splitlines()
    if not lines:
        raise ChildError(f"`{shlex.join(_args(cmd))}` printed nothing")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


class BlockServer:
    """A child that loads its model once, then times blocks of calls on request.

    The protocol of ``raw_c_loop ... -`` and of workers.py's ``percall`` and ``throughput``
    tasks: the child prints {"ready": true}; each line "N W" it reads makes it run W untimed
    and N timed calls and print their summary as one JSON line; end of input makes it exit.
    Tasks may take further numbers on the line (a batch size, a thread count).
    """

    def __init__(self, cmd: Command, stderr: IO[bytes]) -> None:
        """`stderr`: a file the child's stderr goes to (a pipe nobody reads could fill up)."""
        self._cmd = cmd
        self._stderr = stderr
        self._proc = subprocess.Popen(_args(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=stderr, text=True, env=CHILD_ENV)

    def _read(self) -> Result:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            returncode = self._proc.wait()
            self._stderr.seek(0)
            raise _failure(self._cmd, returncode, self._stderr.read().decode(errors="replace"))
        return json.loads(line)  # type: ignore[no-any-return]

    def wait_ready(self) -> None:
        if self._read() != {"ready": True}:
            raise ChildError(f"`{shlex.join(_args(self._cmd))}` did not say it was ready")

    def time_block(self, iterations: int, warmup: int, *extra: int) -> Result:
        """`extra`: further numbers for the line, as the task takes them (workers.py)."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(" ".join(map(str, (iterations, warmup, *extra))) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@contextmanager
def block_servers(commands: Mapping[str, Command]) -> Iterator[dict[str, BlockServer]]:
    """Starts a BlockServer per command, all at once (loading may overlap, measuring never
    does), and waits until every one is ready; closes them all on exit."""
    with ExitStack() as stack:
        servers = {}
        for name, cmd in commands.items():
            servers[name] = BlockServer(cmd, stack.enter_context(tempfile.TemporaryFile()))
            stack.callback(servers[name].close)
        for server in servers.values():
            server.wait_ready()
        yield servers


def stop(process: subprocess.Popen[Any], grace: float) -> None:
    """Terminates a server the benchmark started; kills it if it has not gone in `grace` s."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wall_time(cmd: Command) -> float:
    """Seconds from starting `cmd` to its exit, as the parent sees it."""
    start = time.perf_counter()
    _run(cmd)
    return time.perf_counter() - start


# --- models and the raw C loop -------------------------------------------------------------


def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def ensure_models(cache: Path, names: Sequence[str], script: Path = ZOO_SCRIPT,
                  prefix: str = "zoo") -> dict[str, Path]:
    """Builds the models not built yet with `script` (``script OUTDIR NAME...``, which marks
    each built one with OUTDIR/NAME.done), in one child; returns their directories.

    The cache is keyed by the script's contents, so editing it rebuilds the models.
    """
    root = cache / f"{prefix}-{_digest([script])}"
    missing = [name for name in names if not (root / f"{name}.done").exists()]
    if missing:
        print(f"building models {', '.join(missing)} into {root} ...", file=sys.stderr, flush=True)
        _run([sys.executable, script, root, *missing])
    return {name: root / name for name in names}


def libtensorflow_path() -> Path:
    """$SMRT_LIBTENSORFLOW, else the C API library of the installed TensorFlow wheel (found
    without importing TensorFlow), as smrt itself would pick it."""
    explicit = os.environ.get("SMRT_LIBTENSORFLOW")
    if explicit:
        return Path(explicit)
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ChildError("TensorFlow is not installed; the benchmarks compare against it")
    name = "libtensorflow_cc.2.dylib" if sys.platform == "darwin" else "libtensorflow_cc.so.2"
    return Path(spec.submodule_search_locations[0]) / name


def build_raw_c_loop(cache: Path) -> Path:
    """Compiles raw_c_loop.cc into the cache (once per version of its sources)."""
    binary = cache / f"raw_c_loop-{_digest(RAW_C_SOURCES)}"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        for stale in cache.glob("raw_c_loop-*"):
            stale.unlink()
        compiler = os.environ.get("CXX", "g++")
        tmp = binary.with_suffix(".tmp")
        _run([compiler, "-O2", "-std=c++17", "-I", REPO / "cpp" / "src", RAW_C_SOURCES[0],
              "-ldl", "-o", tmp])
        tmp.replace(binary)
    return binary


# --- statistics ----------------------------------------------------------------------------


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (raw_c_loop.cc uses the same definition)."""
    rank = math.ceil(q * len(sorted_samples))
    return sorted_samples[min(len(sorted_samples) - 1, max(rank - 1, 0))]


def summarize_us(samples_us: Sequence[float]) -> Result:
    """The summary raw_c_loop prints, for per-call latencies in microseconds."""
    s = sorted(samples_us)
    return {
        "iterations": len(s),
        "p50_us": percentile(s, 0.50),
        "p99_us": percentile(s, 0.99),
        "mean_us": statistics.fmean(s),
        "min_us": s[0],
    }


def median(values: Iterable[float]) -> float:
    return statistics.median(values)
