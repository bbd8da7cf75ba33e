"""The OpenVINO backend (smrt.load(..., backend="openvino" | "auto")): outputs match TensorFlow's
on the zoo's models, signatures OpenVINO cannot run fall back to TensorFlow and say why, "auto"
keeps TensorFlow where OpenVINO differs, calls are thread-safe, and a missing OpenVINO is a
LibraryNotFoundError naming the extra to install."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import smrt

from .conftest import Zoo
from .malloc_counting import PER_CALL, build_counter
from .serving import ServerProcess, version_dir

pytest.importorskip("openvino", reason="the openvino extra is not installed")

# Models whose serving_default OpenVINO converts and runs.
CONVERTED = [
    "add_one", "tiny_add", "keras_mobilenet", "keras_dense", "control_flow", "half_plus_two",
]


@pytest.fixture(scope="module")
def openvino_model(zoo: Zoo) -> Iterator[Callable[[str], smrt.Model]]:
    models: dict[str, smrt.Model] = {}

    def get(name: str) -> smrt.Model:
        if name not in models:
            models[name] = smrt.load(zoo.path(name), backend="openvino")
        return models[name]

    yield get
    for model in models.values():
        model.close()


def _assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for key, expected in want.items():
        assert got[key].dtype == expected.dtype, key
        assert got[key].shape == expected.shape, key
        if expected.dtype == object:  # strings, from signatures that run on TensorFlow
            assert got[key].tolist() == expected.tolist(), key
        else:
            np.testing.assert_allclose(got[key], expected, rtol=1e-3, atol=1e-3, err_msg=key)


@pytest.mark.parametrize("name", CONVERTED)
def test_openvino_matches_tensorflow(zoo: Zoo, openvino_model: Callable[[str], smrt.Model],
                                     name: str) -> None:
    model = openvino_model(name)
    assert model.signatures["serving_default"].backend == "openvino"
    assert model.signatures["serving_default"].backend_note == ""
    for case in zoo.cases(name):
        sig = model.signatures[case.signature]
        _assert_close(sig(**case.inputs), case.outputs)


def test_mobilenet_batches_and_unaligned_inputs(
    zoo: Zoo, openvino_model: Callable[[str], smrt.Model]
) -> None:
    tf_model = smrt.load(zoo.path("keras_mobilenet"))
    (key,) = tf_model.signatures["serving_default"].inputs
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        x = rng.random((batch, 224, 224, 3), dtype=np.float32)
        want = tf_model.signatures["serving_default"](**{key: x})
        sig = openvino_model("keras_mobilenet").signatures["serving_default"]
        _assert_close(sig(**{key: x}), want)
        _assert_close(sig(**{key: smrt.aligned(x)}), want)  # lent without a copy
        _assert_close(sig(**{key: np.asfortranarray(x)}), want)  # copied


@pytest.mark.parametrize(
    ("name", "signature", "why"),
    [
        ("stateful", "serving_default", "signature 'mutate' changes the model's state"),
        ("stateful", "mutate", "converts only the serving_default signature"),
        ("multiple_signatures", "serving_default", "is string"),
        ("bytes_echo", "serving_default", "is string"),
        ("all_dtypes", "serving_default", "complex"),
        ("stateless_random", "serving_default", "could not convert it"),
        ("dynamic_shapes", "serving_default", "could not compile it"),
    ],
)
def test_what_openvino_cannot_run_falls_back_to_tensorflow(
    zoo: Zoo, openvino_model: Callable[[str], smrt.Model], name: str, signature: str, why: str
) -> None:
    model = openvino_model(name)
    assert model.signatures[signature].backend == "tensorflow"
    assert why in model.signatures[signature].backend_note


@pytest.mark.parametrize(
    "name", ["stateful", "multiple_signatures", "all_dtypes", "stateless_random"]
)
def test_fallback_signatures_answer_as_tensorflow(zoo: Zoo, name: str) -> None:
    # A fresh model: the cases run in order (stateful's mutate changes what serving_default reads).
    with smrt.load(zoo.path(name), backend="openvino") as model:
        for case in zoo.cases(name):
            got = model.signatures[case.signature](**case.inputs)
            assert got.keys() == case.outputs.keys()
            for key, want in case.outputs.items():
                if want.dtype == object:
                    assert got[key].tolist() == want.tolist()
                else:
                    np.testing.assert_array_equal(got[key], want)


def test_auto_keeps_openvino_where_it_agrees_and_tensorflow_where_it_differs(zoo: Zoo) -> None:
    with smrt.load(zoo.path("keras_mobilenet"), backend="auto") as model:
        assert model.signatures["serving_default"].backend == "openvino"
    # TensorFlow wraps negative floats cast to uint8; OpenVINO saturates them.
    with smrt.load(zoo.path("wrapping_cast"), backend="openvino") as model:
        assert model.signatures["serving_default"].backend == "openvino"
        (case,) = zoo.cases("wrapping_cast")
        assert not np.array_equal(model.signatures["serving_default"](**case.inputs)["y"],
                                  case.outputs["y"])
    with smrt.load(zoo.path("wrapping_cast"), backend="auto") as model:
        sig = model.signatures["serving_default"]
        assert sig.backend == "tensorflow"
        assert "differs from TensorFlow's on the probe input" in sig.backend_note
        np.testing.assert_array_equal(sig(**case.inputs)["y"], case.outputs["y"])


def test_errors_are_the_same_as_on_tensorflow(zoo: Zoo,
                                              openvino_model: Callable[[str], smrt.Model]) -> None:
    sig = openvino_model("tiny_add").signatures["serving_default"]
    with pytest.raises(smrt.InputTypeError, match="expects float32, got int32"):
        sig(x=np.zeros((1, 4), np.int32))
    with pytest.raises(smrt.InvalidInputError, match=r"expects shape \(1, 4\), got \(1, 5\)"):
        sig(x=np.zeros((1, 5), np.float32))
    with pytest.raises(smrt.InvalidInputError, match="has no input 'z'"):
        sig(z=np.zeros((1, 4), np.float32))
    # Left to the backend (check_shapes=False), a shape the compiled model cannot take is
    # refused before OpenVINO runs, and TensorFlow answers as the TensorFlow backend would:
    # here it adds any shape (TF Serving's behaviour), including a rank that differs by ones.
    for x in (np.arange(5, dtype=np.float32).reshape(1, 5), np.arange(4, dtype=np.float32)):
        np.testing.assert_array_equal(sig.run({"x": x}, check_shapes=False)["y"], x + x)
    # A dimension the converted model leaves open takes any size.
    add_one = openvino_model("add_one").signatures["serving_default"]
    np.testing.assert_array_equal(add_one(x=np.zeros((2, 9), np.float32))["y"], np.ones((2, 9)))


def test_a_failure_inside_openvino_is_run_again_on_tensorflow(zoo: Zoo, run_python: Any) -> None:
    """A run that fails inside OpenVINO (here an output it cannot allocate under an
    address-space limit; a run with a deadline allocates on OpenVINO's own thread, where the
    limit applies) is run again on TensorFlow's session, and the caller gets TensorFlow's
    answer: under the same limit, its ResourceExhausted (not an internal error). The
    signature serves the next call on OpenVINO."""
    out = run_python(f"""
import resource, numpy as np, smrt
sig = smrt.load({zoo.path("add_one")!r}, backend="openvino",
               inference_threads=1).signatures["serving_default"]
assert sig.backend == "openvino"
small = np.ones((1, 2), np.float32)
sig(x=small)
big = smrt.empty((64, 1 << 20), np.float32)  # 256 MiB, read in place; as much comes out
big.fill(1.0)
vm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:"))
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, ((vm << 10) + (64 << 20), hard))
try:
    sig.run({{"x": big}}, timeout=60)
    print("no error")
except smrt.Error as e:
    print(type(e).__name__, str(e).replace("\\n", " "))
finally:
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
print(sig(x=small)["y"].tolist())
""")
    error, again = out.splitlines()
    assert error.startswith("ResourceExhaustedError running signature 'serving_default': OOM "
                            "when allocating tensor with shape[64,1048576]"), out
    assert again == "[[2.0, 2.0]]"


def test_a_run_openvino_fails_is_answered_by_tensorflow(zoo: Zoo) -> None:
    """Each input fits its port, but the two disagree: OpenVINO's run fails, and TensorFlow,
    loaded beside it, answers the caller's mistake as the TensorFlow backend does
    (InvalidArgument, HTTP 400 in a server), not as an internal failure."""
    with smrt.load(zoo.path("pair_add"), backend="openvino", check_shapes=False) as model:
        sig = model.signatures["serving_default"]
        assert sig.backend == "openvino"
        x, y = np.ones((2, 3), np.float32), np.ones((3, 3), np.float32)
        with pytest.raises(smrt.errors.InvalidArgumentError, match="Incompatible shapes"):
            sig(x=x, y=y)
        assert sig(x=x, y=x)["z"].tolist() == [[2.0] * 3] * 2


def test_deadline_and_close(zoo: Zoo) -> None:
    model = smrt.load(zoo.path("keras_mobilenet"), backend="openvino", inference_threads=1)
    sig = model.signatures["serving_default"]
    (key,) = sig.inputs
    x = np.zeros((16, 224, 224, 3), np.float32)
    with pytest.raises(smrt.errors.DeadlineExceededError, match="longer than 1 ms"):
        sig.run({key: x}, timeout=1e-6)
    # The cancelled request is free again.
    assert sig.run({key: x[:1]}, timeout=60)["output_0"].shape == (1, 1000)
    model.close()
    with pytest.raises(smrt.ModelClosedError):
        sig(**{key: x[:1]})


def test_concurrent_calls(zoo: Zoo) -> None:
    model = smrt.load(zoo.path("keras_mobilenet"), backend="openvino",
                      performance_hint="throughput")
    sig = model.signatures["serving_default"]
    (key,) = sig.inputs
    rng = np.random.default_rng(1)
    inputs = [rng.random((1, 224, 224, 3), dtype=np.float32) for _ in range(4)]
    expected = [sig(**{key: x})["output_0"] for x in inputs]
    failures: list[str] = []

    def work(i: int) -> None:
        for _ in range(5):
            got = sig(**{key: inputs[i]})["output_0"]
            if not np.allclose(got, expected[i], rtol=1e-5, atol=1e-6):
                failures.append(f"thread {i}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    model.close()


def _longest_stall(call: Callable[[], object]) -> float:
    """Runs `call` in another thread while this one spins, and returns the longest stretch of
    the call during which this thread ran no Python, as a fraction of the call."""
    window: list[float] = []

    def run() -> None:
        window.append(time.perf_counter())
        call()
        window.append(time.perf_counter())

    gaps: list[tuple[float, float]] = []  # this thread's stalls over 1 ms
    thread = threading.Thread(target=run)
    last = time.perf_counter()
    thread.start()  # returns once `run` has started: while the GIL is held, only after the call
    while thread.is_alive():
        now = time.perf_counter()
        if now - last > 1e-3:
            gaps.append((last, now))
        last = now
    thread.join()
    gaps.append((last, time.perf_counter()))
    start, end = window
    blind = max(max(0.0, min(b, end) - max(a, start)) for a, b in gaps)
    return blind / (end - start)


def test_the_gil_is_released_while_openvino_runs(zoo: Zoo) -> None:
    """While one thread runs a signature on OpenVINO (a call, a bound call), another runs
    Python throughout; with ``release_gil = False`` it waits out the call, which answers the
    same."""
    with smrt.load(zoo.path("keras_mobilenet"), backend="openvino", inference_threads=1) as model:
        sig = model.signatures["serving_default"]
        (key,) = sig.inputs
        x = smrt.aligned(np.random.default_rng(2).random((48, 224, 224, 3), dtype=np.float32))
        y = smrt.empty((48, 1000), np.float32)
        want = sig(**{key: x})["output_0"]
        bound = sig.bind({key: x}, {"output_0": y})
        # The fewest (most) of a few: another process may take this thread's core a while.
        for call in (lambda: sig(**{key: x}), bound):
            assert min(_longest_stall(call) for _ in range(3)) < 0.3
        np.testing.assert_array_equal(y, want)
        sig.release_gil = False
        got: list[np.ndarray] = []
        # Only the GIL's hand-overs before and after the call let this thread in.
        assert max(_longest_stall(lambda: got.append(sig(**{key: x})["output_0"]))
                   for _ in range(2)) > 0.6
        for output in got:
            np.testing.assert_array_equal(output, want)


def test_bound_outputs_subset_answers_as_tensorflow(zoo: Zoo,
                                                      openvino_model: Callable[[str], smrt.Model]
                                                      ) -> None:
    """sig.bind with some of the outputs (OpenVINO then copies only those out of the infer
    request) writes what TensorFlow's bound call writes."""
    tf_sig = smrt.load(zoo.path("path_output_keys")).signatures["serving_default"]
    sig = openvino_model("path_output_keys").signatures["serving_default"]
    assert sig.backend == "openvino", sig.backend_note
    x = smrt.aligned(np.array([1.0, -2.5, 3.0], np.float32))
    for keys in (["/abs"], ["../escape"], ["/abs", "../escape"]):
        got = {k: np.zeros(3, np.float32) for k in keys}
        want = {k: np.zeros(3, np.float32) for k in keys}
        sig.bind({"x": x}, got)()
        tf_sig.bind({"x": x}, want)()
        for k in keys:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6, err_msg=k)
    np.testing.assert_array_equal(want["/abs"], x * 2)


@pytest.mark.slow
def test_a_bound_run_makes_only_the_outputs_it_fetches(zoo: Zoo, tmp_path: Path,
                                                         run_python: Any) -> None:
    """Counted with malloc interposed (tests/native/count_malloc.c): a bound run of one of two
    outputs allocates fewer times than a bound run of both, as the backend makes only the
    fetched output (not every output, then a vector to pick from)."""
    counter = build_counter(tmp_path)
    out = run_python(PER_CALL + f"""
import numpy as np, smrt
sig = smrt.load({zoo.path("path_output_keys")!r}, backend="openvino",
               inference_threads=1).signatures["serving_default"]
assert sig.backend == "openvino"
x = smrt.aligned(np.arange(3, dtype=np.float32))
out = {{key: np.zeros(3, np.float32) for key in ("../escape", "/abs")}}
both = sig.bind({{"x": x}}, out)
one = sig.bind({{"x": x}}, {{"/abs": out["/abs"]}})
for call in (both, one):
    print(per_call(call))
""", env={"LD_PRELOAD": str(counter)})
    both, one = map(float, out.split())
    assert one <= both - 0.9, (one, both)


def test_bad_backend_options_are_refused(zoo: Zoo) -> None:
    with pytest.raises(smrt.InvalidInputError, match="backend must be"):
        smrt.load(zoo.path("add_one"), backend="onnx")
    with pytest.raises(smrt.InvalidInputError, match="performance_hint"):
        smrt.load(zoo.path("add_one"), backend="openvino", performance_hint="fastest")
    with pytest.raises(smrt.InvalidInputError, match="inference_threads"):
        smrt.load(zoo.path("add_one"), backend="openvino", inference_threads=-1)
    with pytest.raises(smrt.InvalidInputError, match="inference_precision"):
        smrt.load(zoo.path("add_one"), backend="openvino", inference_precision="int4")


def test_missing_openvino_names_the_extra(zoo: Zoo, tmp_path: os.PathLike[str]) -> None:
    code = (
        "import smrt\n"
        f"try:\n    smrt.load({zoo.path('add_one')!r}, backend='openvino')\n"
        "except smrt.LibraryNotFoundError as e:\n    print('RAISED', e)\n"
    )
    env = dict(os.environ, SMRT_LIBOPENVINO=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("RAISED")
    assert f"pip install {smrt.library.DISTRIBUTION}[openvino]" in out
    assert str(tmp_path) in out


def test_a_library_that_is_not_openvino_names_what_it_lacks(zoo: Zoo, run_python: Any) -> None:
    out = run_python(f"""
import smrt
try:
    smrt.load({zoo.path('add_one')!r}, backend='openvino')
except smrt.LibraryNotFoundError as e:
    print(str(e).splitlines()[-1].strip())
""", env={"SMRT_LIBOPENVINO": "libm.so.6"})
    assert out.strip() == "'libm.so.6' is not a usable libopenvino_c: it lacks ov_get_last_err_msg"


def test_serve_with_the_openvino_backend(zoo: Zoo, tmp_path: Path) -> None:
    """``smrt serve --backend openvino``: REST predict answers as TensorFlow does (within
    1e-3), and a signature OpenVINO cannot run is served by TensorFlow."""
    version_dir(tmp_path / "m", 1, zoo.path("keras_mobilenet"))
    version_dir(tmp_path / "s", 1, zoo.path("stateful"))
    config = tmp_path / "models.config"
    entries = " ".join(f'config {{ name: "{name}" base_path: "{tmp_path / name}" '
                       'model_platform: "tensorflow" }' for name in ("m", "s"))
    config.write_text(f"model_config_list {{ {entries} }}")
    server = ServerProcess("--model_config_file", str(config), "--backend", "openvino")
    try:
        # The log says which runtime runs each signature, and why TensorFlow runs one.
        server.wait_for_log(r"model m: serving version 1 \(.*serving_default on openvino\)")
        server.wait_for_log(r"model s: serving version 1 \(.*serving_default on tensorflow "
                            r"\(.+\)")
        (case,) = zoo.cases("keras_mobilenet")
        (key,) = case.inputs
        reply = server.post("/v1/models/m:predict",
                            json={"instances": case.inputs[key].tolist()})
        assert reply.status_code == 200, reply.text
        np.testing.assert_allclose(np.array(reply.json()["predictions"], np.float32),
                                   case.outputs["output_0"], rtol=1e-3, atol=1e-3)
        reply = server.post("/v1/models/s:predict", json={"instances": [1.0, 2.0]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["predictions"] == [1.0, 2.0]
    finally:
        assert server.stop() == 0


def test_run_cli_takes_the_backend(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    from smrt.cli import main

    argv = ["run", "--dir", zoo.path("add_one"), "--tag_set", "serve", "--signature_def",
            "serving_default", "--input_exprs", "x=[[1.0, 2.0]]"]
    assert main([*argv, "--backend", "openvino"]) == 0
    on_openvino = capsys.readouterr().out
    assert main(argv) == 0
    assert on_openvino == capsys.readouterr().out
    assert "[[2. 3.]]" in on_openvino


def _chain_model(root: Path, signatures: int, nodes: int = 3000) -> Path:
    """A crafted saved_model.pb: a chain of `nodes` Identity ops and `signatures` signatures
    (serving_default among them) whose output is the chain's end."""
    from .protowire import field, varint

    def node(i: int) -> bytes:  # NodeDef{name = 1, op = 2, input = 3}
        if i == nodes - 1:
            return field(1, field(1, f"n{i}".encode()) + field(2, b"Placeholder"))
        return field(1, field(1, f"n{i}".encode()) + field(2, b"Identity")
                     + field(3, f"n{i + 1}".encode()))

    graph = b"".join(node(i) for i in range(nodes))
    output = field(2, field(1, b"y") + field(2, field(1, b"n0:0") + bytes([0x10]) + varint(1)))
    keys = ["serving_default", *(f"s{k}" for k in range(signatures - 1))]
    sigs = b"".join(field(5, field(1, key.encode()) + field(2, output)) for key in keys)
    meta = field(1, field(4, b"serve")) + field(2, graph) + sigs
    model = root / f"chain{signatures}"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(field(2, meta))
    return model


def test_the_state_check_of_a_crafted_graph_is_bounded(tmp_path: Path) -> None:
    """Signatures that all walk one long graph: checking which change state would take
    signatures x nodes steps; past a budget linear in the file it stops and TensorFlow keeps
    the signature (with the reason), instead of a load that takes quadratic time."""
    from smrt.cli.show import backend_support

    many = backend_support(str(_chain_model(tmp_path, 300)), ["serve"])
    assert "too large for smrt to check" in many["serving_default"]
    few = backend_support(str(_chain_model(tmp_path, 2)), ["serve"])
    assert "too large" not in few["serving_default"]
