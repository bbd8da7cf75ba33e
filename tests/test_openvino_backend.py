"""The OpenVINO backend (smrt.load(..., backend="openvino" | "auto")): outputs match TensorFlow's
on the zoo's models, signatures OpenVINO cannot run fall back to TensorFlow and say why, "auto"
keeps TensorFlow where OpenVINO differs, calls are thread-safe, and a missing OpenVINO is a
LibraryNotFoundError naming the extra to install."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import smrt

from .conftest import Zoo
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
    # Left to the backend, a shape the compiled model cannot take is its InvalidArgument.
    with pytest.raises(smrt.InvalidArgumentError, match="OpenVINO"):
        sig.run({"x": np.zeros((1, 5), np.float32)}, check_shapes=False)


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
