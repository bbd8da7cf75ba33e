"""``smrt show`` prints what ``saved_model_cli show`` prints, line for line."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from smrt.cli import main

from .conftest import Zoo
from .golden import cli_argv, saved_model_cli_outputs
from .protowire import field as _field
from .protowire import fields as _fields
from .protowire import join as _join
from .protowire import varint as _varint

MODELS = ["add_one", "keras_mobilenet", "module_no_signatures", "module_with_signature",
          "multiple_signatures", "stateful", "control_flow", "parse_example", "all_dtypes",
          "dynamic_shapes", "two_tag_sets"]


def flag_combinations(zoo: Zoo, name: str) -> list[dict[str, object]]:
    import smrt

    combos: list[dict[str, object]] = [{}, {"all": True}, {"list_ops": True}]
    for meta in smrt.inspect(zoo.path(name)).meta_graphs:
        tag_set = ",".join(meta.tags)
        combos += [{"tag_set": tag_set}, {"tag_set": tag_set, "list_ops": True}]
        combos += [{"tag_set": tag_set, "signature_def": key} for key in meta.signatures]
    return combos


@pytest.fixture(scope="module")
def golden(zoo: Zoo) -> dict[tuple[str, str], str]:
    """saved_model_cli's output for every model and flag combination, from one TF process."""
    requests = [(name, combo) for name in MODELS for combo in flag_combinations(zoo, name)]
    texts = saved_model_cli_outputs([("show", zoo.path(n), c) for n, c in requests])
    return {(name, json.dumps(combo, sort_keys=True)): text
            for (name, combo), text in zip(requests, texts, strict=True)}


def smrt_show(capsys: pytest.CaptureFixture[str], model_dir: str, combo: dict[str, object]) -> str:
    assert main(cli_argv("show", model_dir, combo)) == 0
    return capsys.readouterr().out


def comparable(text: str) -> list[str]:
    """Lines, with each op listing sorted (saved_model_cli prints a set, in hash order). The
    Concrete Functions section is compared as is."""
    lines: list[str] = []
    for line in text.rstrip("\n").split("\n"):
        head, sep, ops = line.partition(" contains the following ops: ")
        lines.append(head + sep + str(sorted(ops.strip("{}").split(", "))) if sep else line)
    return lines


@pytest.mark.parametrize("name", MODELS)
def test_show_matches_saved_model_cli(zoo: Zoo, golden: dict[tuple[str, str], str],
                                      capsys: pytest.CaptureFixture[str], name: str) -> None:
    for combo in flag_combinations(zoo, name):
        expected = golden[(name, json.dumps(combo, sort_keys=True))]
        assert comparable(smrt_show(capsys, zoo.path(name), combo)) == comparable(expected), combo


def test_show_all_json_lists_functions(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--dir", zoo.path("stateful"), "--all", "--json"]) == 0
    (meta,) = json.loads(capsys.readouterr().out)["meta_graphs"]
    assert set(meta["signature_defs"]) == {"__saved_model_init_op", "mutate", "read",
                                           "serving_default"}
    assert "TensorSpec(shape=(), dtype=tf.float32, name='new_v')" in str(meta["functions"])


def test_show_json(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--dir", zoo.path("two_tag_sets"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"tag_sets": [["serve"], ["serve", "gpu"]]}
    assert main(["show", "--dir", zoo.path("add_one"), "--tag_set", "serve",
                 "--signature_def", "serving_default", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["signature_def"]["serving_default"]
    assert shown["inputs"] == {"x": {"dtype": "float32", "shape": [-1, -1],
                                     "name": "serving_default_x:0"}}
    assert shown["method_name"] == "tensorflow/serving/predict"


@pytest.mark.parametrize(("argv", "message"), [
    (["--dir", "/nonexistent/model"], "does not exist"),
    (["--tag_set", "train"], "tag-set"),
    (["--tag_set", "serve", "--signature_def", "nope"], "'nope'"),
    (["--tag_set", " , "], "--tag_set"),
])
def test_show_errors_are_one_line(zoo: Zoo, capsys: pytest.CaptureFixture[str],
                                  argv: list[str], message: str) -> None:
    full = ["show", "--dir", zoo.path("add_one"), *argv] if argv[0] != "--dir" else ["show", *argv]
    assert main(full) == 1
    err = capsys.readouterr().err
    assert err.startswith("smrt show: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_show_does_not_load_libtensorflow(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import smrt
from smrt.cli import main
main(["show", "--dir", {zoo.path("keras_mobilenet")!r}, "--all"])
print(smrt.runtime_info().loaded, "libtensorflow" in open("/proc/self/maps").read())
""")
    assert out.split()[-2:] == ["False", "False"]  # found, not loaded


def test_show_backend_openvino_says_what_would_convert(zoo: Zoo, run_python) -> None:
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    out = run_python(f"""
import smrt
from smrt.cli import main
main(["show", "--dir", {zoo.path("keras_mobilenet")!r}, "--backend", "openvino"])
main(["show", "--dir", {zoo.path("stateful")!r}, "--backend", "openvino", "--json"])
print(smrt.runtime_info().loaded, "libtensorflow" in open("/proc/self/maps").read())
""")
    lines = out.splitlines()
    assert lines[:2] == [
        "serve: tensorflow (OpenVINO's TensorFlow frontend converts only the serving_default "
        "signature)",
        "serving_default: openvino",
    ]
    stateful = json.loads("\n".join(lines[2:-1]))
    assert sorted(stateful) == ["mutate", "read", "serving_default"]
    assert "signature 'mutate' changes the model's state" in stateful["serving_default"]
    assert lines[-1].split() == ["False", "False"]  # OpenVINO converted it; TensorFlow never loaded


# --- the Concrete Functions section on hand-made and corrupted object graphs.

def _with_object_graph(src: str, dst: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Copies the SavedModel at src to dst with its (sole) MetaGraph's object_graph_def
    replaced by edit(object_graph_def)."""
    shutil.copytree(src, dst)
    pb = dst / "saved_model.pb"
    top = _fields(pb.read_bytes())
    for k, (n, w, v) in enumerate(top):
        if n == 2:
            meta = [(mn, mw, edit(mv) if mn == 7 else mv) for mn, mw, mv in _fields(v)]
            top[k] = (n, w, _join(meta))
    pb.write_bytes(_join(top))


def test_show_all_lists_no_functions_of_several_meta_graphs(
        zoo: Zoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # tf.saved_model.load without tags fails on two MetaGraphs: saved_model_cli says N/A.
    model = tmp_path / "twice"
    shutil.copytree(zoo.path("module_no_signatures"), model)
    pb = model / "saved_model.pb"
    pb.write_bytes(pb.read_bytes() * 2)  # concatenated messages merge: two MetaGraphs
    (expected,) = saved_model_cli_outputs([("show", str(model), {"all": True})])
    assert "N/A (could not be listed due to unknown reasons)" in expected
    assert comparable(smrt_show(capsys, str(model), {"all": True})) == comparable(expected)


def test_functions_in_inspect(zoo: Zoo) -> None:
    import smrt
    from smrt.saved_model import TensorSpecValue

    meta = smrt.inspect(zoo.path("stateful"), functions=True).meta_graph()
    assert meta.has_object_graph
    assert meta.object_graph is not None
    assert [f.name for f in meta.object_graph.functions] == ["mutate", "read", "serve"]
    (serve,) = meta.object_graph.functions[2].concrete_functions
    (x,) = serve.args
    assert isinstance(x, TensorSpecValue)
    assert (x.name, x.shape.dims, x.dtype.name, repr(x)) == (
        "x", (None,), "float32", "TensorSpec(shape=(None,), dtype=tf.float32, name='x')")
    assert serve.kwargs == {}
    assert smrt.inspect(zoo.path("stateful")).meta_graph().object_graph is None


def _corrupted_graphs(graph: bytes) -> list[bytes]:
    rng = random.Random(1234)
    out = [graph + b"\xff", graph + b"\x0a\x05ab", graph[:-1]]
    out += [graph[:rng.randrange(len(graph))] for _ in range(20)]
    for _ in range(60):
        flipped = bytearray(graph)
        for _ in range(rng.randrange(1, 4)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        out.append(bytes(flipped))
    # A signature nested far past any sane depth.
    deep = _field(1, b"")  # none_value
    for _ in range(5000):
        deep = _field(51, _field(1, deep))  # list_value{values=[deep]}
    concrete = _field(2, _field(1, b"f") + _field(2, _field(3, deep)))  # concrete_functions["f"]
    nodes = _field(1, _field(1, _varint(1 << 3) + _varint(1) + _field(2, b"g")))  # root -> 1
    nodes += _field(1, _field(6, _field(1, b"f")))  # node 1: SavedFunction{["f"]}
    out.append(nodes + concrete)
    return out


def test_corrupt_object_graph_is_data_loss(zoo: Zoo, tmp_path: Path) -> None:
    import smrt

    src = zoo.path("module_no_signatures")
    graph = next(v for n, _, v in _fields(next(
        v for n, _, v in _fields(Path(src, "saved_model.pb").read_bytes()) if n == 2)) if n == 7)
    messages = []
    for k, bad in enumerate(_corrupted_graphs(graph)):
        model = tmp_path / f"m{k}"
        _with_object_graph(src, model, lambda _graph, bad=bad: bad)
        try:
            info = smrt.inspect(model, functions=True)
        except smrt.DataLossError as e:
            messages.append(str(e))
        else:  # some cuts and flips still make a valid message
            assert info.meta_graph().object_graph is not None
        smrt.inspect(model)  # without functions the object graph is not read
    assert len(messages) >= 10
    assert all("saved_model.pb' is corrupt or truncated (" in m for m in messages), messages
    with pytest.raises(smrt.DataLossError, match="nested too deeply"):
        smrt.inspect(tmp_path / f"m{k}", functions=True)
