"""The child-process side of the benchmarks: one contender per process, JSON lines out.

    python benchmarks/workers.py '{"task": "memory", "contender": "smrt", ...}'

Tasks:
    memory   one measurement, one JSON line.
    percall     a block server, like ``raw_c_loop ... -``: loads the model, warms up, prints
                {"ready": true}, then for each stdin line "N W" runs W untimed and N timed
                calls and prints their summary (p50/p99/mean/min in microseconds), until end
                of input; "N W B" does the same on a batch of B (of those it was given).
    throughput  a block server too, for Python threads sharing the loaded signature: each
                stdin line "N W T" has T threads run W untimed calls between them, then N
                timed calls between them, and prints the calls per second.

Each child imports only the runtime it measures (smrt or TensorFlow's Python package), so
neither one's threads, allocator state or import cost leaks into the other's numbers.

Contenders:
    smrt         ``smrt.load(d).signatures["serving_default"](x=aligned_x)``
    smrt-gil-held   the same with ``sig.release_gil = False``
    smrt-bound   ``sig.bind({"x": aligned_x}, outputs)()``, outputs preallocated (IOBinding)
    python-noop  a call of ``lambda: {}``: the timing loop's own cost per call
    smrt-plain   the same, with a plain NumPy input (smrt copies it once)
    tf-constant  ``tf.saved_model.load(d).signatures["serving_default"](x=tf.constant(x))``
    tf-numpy     the same, passing the NumPy array directly
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from harness import Result, summarize_us

SIGNATURE = "serving_default"
Bind = Callable[[np.ndarray], Callable[[], Mapping[str, Any]]]
"""A loaded signature: ``bind(x)`` is the zero-argument call of it on input ``x``."""


def _keyword_call(sig: Callable[..., Any], input_key: str, x: object) -> Callable[[], Any]:
    """``lambda: sig(<input_key>=x)`` as if written in code (the keyword a constant of the
    call site, as in ``sig(x=arr)``); ``sig(**{input_key: x})`` if the key is no identifier."""
    if input_key.isidentifier():
        return eval(f"lambda: sig({input_key}=x)", {"sig": sig, "x": x})  # type: ignore[no-any-return]
    inputs = {input_key: x}
    return lambda: sig(**inputs)


def _smrt_binder(model: str, input_key: str, config_proto: bytes, mode: str = "call") -> Bind:
    """`mode`: "call" (``sig(x=x)``), "gil-held" (the same with ``sig.release_gil = False``)
    or "bound" (``sig.bind({key: x}, outputs)()`` over outputs allocated once)."""
    import smrt

    sig = smrt.load(model, config_proto=config_proto).signatures[SIGNATURE]
    sig.release_gil = mode != "gil-held"

    def bind(x: np.ndarray) -> Callable[[], Mapping[str, Any]]:
        if mode != "bound":
            return _keyword_call(sig, input_key, x)
        outputs = {k: smrt.empty(v.shape, v.dtype) for k, v in sig(**{input_key: x}).items()}
        bound = sig.bind({input_key: x}, outputs)
        return lambda: bound() or outputs  # the outputs, as the other contenders return

    return bind


def _tf_binder(model: str, input_key: str, as_constant: bool) -> Bind:
    import tensorflow as tf  # type: ignore[import-untyped]

    sig = tf.saved_model.load(model).signatures[SIGNATURE]

    def bind(x: np.ndarray) -> Callable[[], Mapping[str, Any]]:
        if as_constant:  # the conversion is part of every call
            return lambda: sig(**{input_key: tf.constant(x)})
        return _keyword_call(sig, input_key, x)

    return bind


_NO_OUTPUTS: Mapping[str, Any] = {}


def _load(contender: str, model: str, input_key: str, config_hex: str = "") -> Bind:
    """`config_hex`: a serialized ConfigProto for the session (smrt contenders only)."""
    if contender in ("smrt", "smrt-plain"):
        return _smrt_binder(model, input_key, bytes.fromhex(config_hex))
    if contender == "python-noop":  # what the timing loop itself costs per call
        return lambda x: (lambda: _NO_OUTPUTS)
    if contender in ("smrt-bound", "smrt-gil-held"):
        return _smrt_binder(model, input_key, bytes.fromhex(config_hex), contender[5:])
    if config_hex:
        raise ValueError(f"{contender} takes no session config")
    if contender in ("tf-constant", "tf-numpy"):
        return _tf_binder(model, input_key, as_constant=contender == "tf-constant")
    raise ValueError(f"unknown contender {contender!r}")


def _ones(contender: str, shape: tuple[int, ...]) -> np.ndarray:
    """The input: 64-byte aligned for "smrt", deliberately not for "smrt-plain"."""
    if contender in ("smrt", "smrt-bound", "smrt-gil-held"):
        import smrt

        x = smrt.empty(shape, np.float32)
        x.fill(1.0)
        return x
    x = np.ones(shape, np.float32)
    if contender == "smrt-plain" and x.ctypes.data % 64 == 0:  # NumPy happened to align it
        x = np.ones(x.size + 1, np.float32)[1:].reshape(shape)
    return x


@contextmanager
def _gc_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _time_calls(call: Callable[[], object], iterations: int) -> list[float]:
    """Per-call wall times in microseconds, with the GC off. Each call's result is dropped
    within its timing, as raw_c_loop deletes its output tensor within its own."""
    clock = time.perf_counter_ns
    samples = [0.0] * iterations
    with _gc_off():
        for i in range(iterations):
            start = clock()
            call()
            samples[i] = (clock() - start) / 1e3
    return samples


def _reply(result: Result) -> None:
    print(json.dumps(result), flush=True)


def _serve(block: Callable[..., Result]) -> None:
    """The block-server loop, once warmed up: {"ready": true}, then one reply of
    ``block(*numbers)`` per stdin line of integers, until end of input."""
    _reply({"ready": True})
    for line in sys.stdin:
        _reply(block(*map(int, line.split())))


def percall(contender: str, model: str, input_key: str, shape: list[int], warmup: int,
            config_hex: str = "", batches: list[int] | None = None) -> None:
    """Serves blocks of timed calls of the signature on a fixed all-ones input.

    With `batches`, a line "N W B" times the calls on a batch of B: the input with its first
    dimension set to B. Each batch is warmed up with about as many examples as the first.
    """
    bind = _load(contender, model, input_key, config_hex)
    calls = {batch: bind(_ones(contender, (batch, *shape[1:])))
             for batch in [shape[0], *(batches or [])]}
    for batch, call in calls.items():
        for _ in range(max(2, warmup * shape[0] // batch)):
            call()

    def block(iterations: int, block_warmup: int, batch: int = shape[0]) -> Result:
        for _ in range(block_warmup):
            calls[batch]()
        return summarize_us(_time_calls(calls[batch], iterations))

    _serve(block)


def _threaded_calls(call: Callable[[], object], iterations: int, warmup: int,
                    threads: int) -> float:
    """`threads` threads share `warmup` untimed and then `iterations` timed calls; returns
    the seconds from the moment all of them are warm until the last one is done."""
    start_line = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker(share: int) -> None:
        try:
            for _ in range(-(-warmup // threads)):
                call()
            start_line.wait()
            for _ in range(share):
                call()
        except BaseException as e:  # re-raised by the calling thread
            errors.append(e)
            start_line.abort()

    shares = [iterations * (i + 1) // threads - iterations * i // threads
              for i in range(threads)]
    workers = [threading.Thread(target=worker, args=(share,)) for share in shares]
    with _gc_off():
        for w in workers:
            w.start()
        with suppress(threading.BrokenBarrierError):
            start_line.wait()
        start = time.perf_counter_ns()
        for w in workers:
            w.join()
        elapsed = (time.perf_counter_ns() - start) / 1e9
    if errors:
        raise errors[0]
    return elapsed


def throughput(contender: str, model: str, input_key: str, shape: list[int],
               warmup: int) -> None:
    """Serves blocks of calls of ONE loaded signature on a fixed all-ones input, made by
    several Python threads at once; replies with calls per second."""
    call = _load(contender, model, input_key)(_ones(contender, tuple(shape)))
    for _ in range(warmup):
        call()

    def block(iterations: int, block_warmup: int, threads: int) -> Result:
        wall_s = _threaded_calls(call, iterations, block_warmup, threads)
        return {"iterations": iterations, "threads": threads, "wall_s": wall_s,
                "calls_per_s": iterations / wall_s}

    _serve(block)


def _proc_status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False if that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _to_numpy(outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: v if isinstance(v, np.ndarray) else v.numpy() for k, v in outputs.items()}


def memory(contender: str, model: str, input_key: str, elements: int) -> None:
    """Extra peak RSS of one call on a big 1-D float32 input, over the RSS just before it.

    The model is loaded and warmed up on a small input, then the input is allocated and
    touched, then the peak is reset (or, where it cannot be, is already that RSS: everything
    before grew monotonically), then the call runs and its outputs are made NumPy arrays.
    """
    bind = _load(contender, model, input_key)
    bind(np.ones(16, np.float32))()
    x = _ones(contender, (elements,))
    call = bind(x)
    peak_reset = _reset_peak_rss()
    before = _proc_status_bytes("VmRSS")
    outputs = _to_numpy(call())
    peak = _proc_status_bytes("VmHWM")
    if float(next(iter(outputs.values()))[-1]) != 2.0:
        raise RuntimeError(f"{contender}: add_one_big(1.0) did not give 2.0")
    _reply({
        "input_bytes": x.nbytes,
        "input_aligned": x.ctypes.data % 64 == 0,
        "rss_before_bytes": before,
        "peak_bytes": peak,
        "extra_peak_bytes": peak - before,
        "extra_peak_x_input": (peak - before) / x.nbytes,
        "peak_reset": peak_reset,
    })


TASKS: dict[str, Callable[..., None]] = {
    "percall": percall, "throughput": throughput, "memory": memory,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    args = json.loads(argv[0])
    TASKS[args.pop("task")](**args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
