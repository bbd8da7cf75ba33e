"""``smrt bench``: random inputs that fit the signature, sane numbers, clear refusals."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import numpy as np
import pytest

import smrt
from smrt.cli import main
from smrt.cli.bench import parse_shapes, random_array

from .conftest import Zoo


def bench_json(capsys: pytest.CaptureFixture[str], model_dir: str, *flags: str) -> Any:
    assert main(["bench", "--dir", model_dir, "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def test_text_report(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--dir", zoo.path("tiny_add"), "--iterations", "50"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"Model: {zoo.path('tiny_add')} (tag-set 'serve', "
                               "signature 'serving_default')")
    assert lines[1] == "Inputs: x float32[1,4]"
    assert lines[2].startswith("Load time: ")
    assert lines[3].startswith("Calls: 50 in ")
    assert "from 1 thread(s)" in lines[3]
    assert all(f"{p} " in lines[4] for p in ("p50", "p90", "p99", "mean", "min"))
    assert lines[5].startswith("Throughput: ")
    assert "calls/s" in lines[5]
    assert "examples/s (batch 1)" in lines[5]
    assert captured.err == ""  # no progress bar when stderr is not a terminal


def test_json_numbers_are_sane(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench_json(capsys, zoo.path("add_one"), "--shape", "x=3,5", "--iterations", "101",
                        "--threads", "3", "--warmup", "2")
    assert report["calls"] == 101
    assert report["threads"] == 3
    assert report["warmup"] == 2
    assert report["batch"] == 3
    assert report["inputs"] == {"x": {"dtype": "float32", "shape": [3, 5]}}
    lat = report["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert report["load_ms"] > 0
    assert report["first_call_ms"] > 0
    assert report["calls_per_second"] == pytest.approx(101 / report["seconds"])
    assert report["examples_per_second"] == pytest.approx(3 * report["calls_per_second"])


def test_batch_fills_the_leading_unknown_dimension(zoo: Zoo,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    report = bench_json(capsys, zoo.path("two_tag_sets"), "--batch", "4", "--iterations", "5",
                        "--tag_set", "serve,gpu")
    assert report["inputs"]["x"]["shape"] == [4, 1]
    assert report["tag_set"] == ["serve", "gpu"]
    assert report["batch"] == 4
    report = bench_json(capsys, zoo.path("dynamic_shapes"), "--shape", "x=2,7,3",
                        "--shape", "z=", "--iterations", "5")
    assert report["inputs"] == {"x": {"dtype": "float32", "shape": [2, 7, 3]},
                                "z": {"dtype": "float32", "shape": []}}


def test_every_dtype_and_strings(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench_json(capsys, zoo.path("all_dtypes"), "--iterations", "5", "--batch", "2")
    assert len(report["inputs"]) == 16
    assert report["calls"] == 5
    report = bench_json(capsys, zoo.path("all_dtypes"), "--signature_def", "scalars",
                        "--iterations", "5")
    assert report["inputs"]["c"] == {"dtype": "string", "shape": []}
    assert report["batch"] == 1


def test_duration(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    report = bench_json(capsys, zoo.path("tiny_add"), "--duration", "0.3", "--threads", "2")
    assert report["calls"] > 0
    assert 0.3 <= report["seconds"] < 5


def test_random_inputs_are_aligned_and_seeded() -> None:
    rng = np.random.default_rng
    a = random_array("float32", np.dtype(np.float32), (3, 5), rng(1))
    assert smrt.is_aligned(a)
    assert a.shape == (3, 5)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, random_array("float32", np.dtype(np.float32), (3, 5), rng(1)))
    s = random_array("string", np.dtype(object), (4,), rng(0))
    assert all(isinstance(v, bytes) and 1 <= len(v) <= 16 for v in s)
    i = random_array("int64", np.dtype(np.int64), (100,), rng(0))
    assert smrt.is_aligned(i)
    assert i.min() >= 0
    assert i.max() < 10


def test_progress_bar_only_on_a_terminal(zoo: Zoo, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["bench", "--dir", zoo.path("tiny_add"), "--duration", "0.35"]) == 0
    assert "calls" in terminal.getvalue()
    assert "[" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r")  # the bar is erased at the end
    assert capsys.readouterr().out.startswith("Model: ")


@pytest.mark.parametrize(("model", "flags", "message"), [
    ("add_one", [], "input 'x' has shape (-1,-1)"),
    ("dynamic_shapes", ["--shape", "x=1,2,3"], "input 'z' has unknown rank"),
    ("add_one", ["--shape", "x=1,a"], "--shape 'x=1,a' is not"),
    ("add_one", ["--shape", "x"], "--shape 'x' is not"),
    ("add_one", ["--shape", "=1"], "--shape '=1' is not"),
    ("add_one", ["--shape", "x=2,-1"], "--shape 'x=2,-1' is not"),
    ("add_one", ["--shape", "y=1,2"], "'y', which is not an input"),
    ("tiny_add", ["--shape", "x=2,4"], "does not fit the input's declared shape (1,4)"),
    ("add_one", ["--shape", "x=2"], "does not fit"),
    ("tiny_add", ["--threads", "0"], "--threads"),
    ("tiny_add", ["--iterations", "0"], "--iterations"),
    ("tiny_add", ["--duration", "0"], "--duration"),
    ("tiny_add", ["--signature_def", "nope"], "'nope'"),
    ("tiny_add", ["--signature_def", "nope"],
     "no SignatureDef 'nope' in the MetaGraph with tags ['serve']; its SignatureDefs are: "),
    ("tiny_add", ["--tag_set", "train"], "tag-set"),
])
def test_refusals_are_one_line(zoo: Zoo, capsys: pytest.CaptureFixture[str], model: str,
                               flags: list[str], message: str) -> None:
    limit = [] if "--duration" in flags else ["--iterations", "1"]
    assert main(["bench", "--dir", zoo.path(model), *limit, *flags]) == 1
    err = capsys.readouterr().err
    assert err.startswith("smrt bench: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_duration_and_iterations_exclude_each_other(zoo: Zoo) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--dir", zoo.path("tiny_add"), "--duration", "1", "--iterations", "5"])


def test_parse_shapes() -> None:
    assert parse_shapes(["x=1,224,224,3", " y = 2", "s="]) == {
        "x": (1, 224, 224, 3), "y": (2,), "s": ()}


def test_backend_flag_reports_the_backend_that_ran(zoo: Zoo,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    report = bench_json(capsys, zoo.path("tiny_add"), "--iterations", "5", "--backend", "openvino")
    assert report["backend"] == "openvino"
    # A signature OpenVINO cannot run is benchmarked on TensorFlow, and says so.
    report = bench_json(capsys, zoo.path("bytes_echo"), "--iterations", "5", "--backend", "auto")
    assert report["backend"] == "tensorflow"
    assert main(["bench", "--dir", zoo.path("tiny_add"), "--iterations", "5"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(") on tensorflow")
