"""``smrt scan`` prints what ``saved_model_cli scan`` prints, and exits 1 on denylisted ops."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest

from smrt.cli import main
from smrt.op_policy import CHECKPOINT_OPS, DEFAULT_OPS, STRICT_OPS, strict_ops

from .conftest import Zoo
from .golden import cli_argv, saved_model_cli_outputs

MODELS = ["add_one", "keras_mobilenet", "module_no_signatures", "multiple_signatures",
          "control_flow", "parse_example", "two_tag_sets"]

# A SavedModel whose signature prints, reads a file and lists files: what scan is for.
IO_MODEL_SCRIPT = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf

@tf.function(input_signature=[tf.TensorSpec([], tf.string, name="path")])
def serve(path):
    tf.print(path)
    return {"data": tf.io.read_file(path), "files": tf.io.matching_files(path)}

tf.saved_model.save(tf.Module(), sys.argv[1], signatures={"serving_default": serve})
"""


@pytest.fixture(scope="module")
def io_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("scan")
    (root / "build.py").write_text(IO_MODEL_SCRIPT)
    subprocess.run([sys.executable, str(root / "build.py"), str(root / "io_model")], check=True,
                   capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return str(root / "io_model")


def flag_combinations(model_dir: str) -> list[dict[str, object]]:
    import smrt

    combos: list[dict[str, object]] = [
        {}, {"op_denylist": "AddV2, Mul,MatMul"}, {"op_denylist": ","}, {"op_denylist": ""},
        {"op_denylist": "ReadFile,Const"},
    ]
    for meta in smrt.inspect(model_dir).meta_graphs:
        tag_set = ",".join(meta.tags)
        combos += [{"tag_set": tag_set}, {"tag_set": tag_set, "op_denylist": "Identity,Foo"},
                   {"tag_set": tag_set, "op_denylist": "NoSuchOp"}]
    return combos


@pytest.fixture(scope="module")
def golden(zoo: Zoo, io_model: str) -> list[tuple[list[str], str]]:
    """(smrt argv, saved_model_cli's output) for every model and flag combination."""
    dirs = [zoo.path(name) for name in MODELS] + [io_model]
    requests = [(d, combo) for d in dirs for combo in flag_combinations(d)]
    texts = saved_model_cli_outputs([("scan", d, c) for d, c in requests])
    return [(cli_argv("scan", d, c), text) for (d, c), text in zip(requests, texts, strict=True)]


def comparable(text: str) -> list[list[object]]:
    """Lines, with each printed set sorted (saved_model_cli prints them in hash order)."""
    lines: list[list[object]] = []
    for line in text.rstrip("\n").split("\n"):
        head, sep, ops = line.partition(" ops: ")
        items = sorted(ops.strip("{}").split(", ")) if ops != "set()" else []
        lines.append([head, items] if sep else [line])
    return lines


def _found(line: list[object]) -> set[str]:
    """The ops a comparable() scan line reports found."""
    head, items = line
    assert isinstance(head, str)
    assert isinstance(items, list)
    return {op.strip("'") for op in items} if "contains the following" in head else set()


def test_scan_matches_saved_model_cli(golden: list[tuple[list[str], str]],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """saved_model_cli's line per MetaGraph, exactly, unless smrt finds more: then only ops
    saved_model_cli cannot see (in branches, loop bodies...) are added. Each found op then gets
    one indented line saying where it is."""
    import smrt

    for argv, expected in golden:
        code = main(argv)
        lines = capsys.readouterr().out.rstrip("\n").split("\n")
        ours = comparable("\n".join(line for line in lines if not line.startswith("  ")))
        theirs = comparable(expected)
        assert len(ours) == len(theirs), argv
        info = smrt.inspect(argv[2], ops=True)
        for our, their in zip(ours, theirs, strict=True):
            if our == their:
                continue
            assert "contains the following denylisted" in str(our[0]), argv
            meta = info.meta_graph(ast.literal_eval(str(our[0]).split(" tag set ")[1].split("]")[0]
                                                    + "]"))
            extra = _found(our) - _found(their)
            assert extra, argv
            assert _found(their) <= _found(our), argv
            assert meta.reachable_ops is not None
            assert meta.ops is not None
            assert all(op in meta.reachable_ops and op not in meta.ops for op in extra), argv
        where = [line for line in lines if line.startswith("  ")]
        assert len(where) == sum(len(_found(line)) for line in ours), argv
        assert all(" is in: " in line for line in where), argv
        assert code == (1 if any(_found(line) for line in ours) else 0), argv


def test_scan_finds_the_default_ops(io_model: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--dir", io_model]) == 1
    first, *where = capsys.readouterr().out.rstrip("\n").split("\n")
    assert first == ("MetaGraph with tag set ['serve'] contains the following denylisted ops: "
                     "{'PrintV2', 'ReadFile'}")
    assert len(where) == 2
    assert re.fullmatch(r"  'PrintV2' is in: function '__inference_serve_\d+'", where[0])
    assert re.fullmatch(r"  'ReadFile' is in: function '__inference_serve_\d+'", where[1])


def test_scan_sees_reads_in_branches_loop_bodies_and_datasets(
        zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    """saved_model_cli's scan misses tf.io.read_file in a tf.cond branch, a tf.while_loop body
    or a tf.data function; smrt's finds each and names the function that holds it."""
    import smrt

    path = zoo.path("hidden_file_reads")
    (theirs,) = saved_model_cli_outputs([("scan", path, {})])
    assert "does not contain the default denylisted ops" in theirs
    for flags in ([], ["--strict"], ["--op_denylist", "ReadFile"]):
        assert main(["scan", "--dir", path, *flags]) == 1, flags
        first, where = capsys.readouterr().out.rstrip("\n").split("\n")
        assert first == ("MetaGraph with tag set ['serve'] contains the following denylisted "
                         "ops: {'ReadFile'}"), flags
        assert where.startswith("  'ReadFile' is in: function '")
        holders = re.findall(r"function '([^']+)'", where)
        assert len(holders) == 3
        assert any(re.fullmatch(r"cond_true_\d+", h) for h in holders), holders
        assert any(re.fullmatch(r"while_body_\d+", h) for h in holders), holders
        assert any("Dataset_map" in h for h in holders), holders
    meta = smrt.inspect(path, ops=True).meta_graph()
    assert meta.ops is not None
    assert "ReadFile" not in meta.ops  # saved_model_cli's count, kept for --list_ops
    assert meta.reachable_ops is not None
    assert list(meta.reachable_ops["ReadFile"]) == sorted(holders)
    assert set(meta.ops) <= set(meta.reachable_ops)


def test_scan_clean_model_exits_0(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--dir", zoo.path("add_one")]) == 0
    assert capsys.readouterr().out == (
        "MetaGraph with tag set ['serve'] does not contain the default denylisted ops: "
        "{'PrintV2', 'ReadFile', 'WriteFile'}\n")


def test_strict(zoo: Zoo, io_model: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Every SavedModel's saver uses checkpoint ops: --strict does not count them.
    for name in MODELS:
        assert main(["scan", "--dir", zoo.path(name), "--strict"]) == 0, name
    out = capsys.readouterr().out
    assert "'SaveV2'" not in out
    # One short line per clean MetaGraph, not the hundred-odd ops of the strict list.
    for line in out.splitlines():
        assert len(line) < 150, line
        assert re.fullmatch(r"MetaGraph with tag set \[.*\] does not contain any of the "
                            r"\d+ denylisted ops \(--strict; see smrt.op_policy\)", line)
    assert main(["scan", "--dir", io_model, "--strict"]) == 1
    first, *where = capsys.readouterr().out.rstrip("\n").split("\n")
    assert first == ("MetaGraph with tag set ['serve'] contains the following denylisted ops: "
                     "{'MatchingFiles', 'PrintV2', 'ReadFile'}")
    assert [line.split(" is in: ")[0] for line in where] == [
        "  'MatchingFiles'", "  'PrintV2'", "  'ReadFile'"]
    # --strict adds to --op_denylist, which still names checkpoint ops if asked.
    assert main(["scan", "--dir", zoo.path("add_one"), "--strict", "--op_denylist", "SaveV2"]) == 1
    assert "{'SaveV2'}" in capsys.readouterr().out


def test_strict_ops_by_name() -> None:
    added = strict_ops(["GrpcFetch", "MyHttpGet", "TryRpc", "SaveV2", "AddV2"])
    assert {"GrpcFetch", "MyHttpGet", "TryRpc"} <= added
    assert "AddV2" not in added
    assert not added & CHECKPOINT_OPS
    assert DEFAULT_OPS <= STRICT_OPS


@pytest.mark.parametrize(("argv", "message"), [
    (["--dir", "/nonexistent/model"], "does not exist"),
    (["--tag_set", "train"], "tag-set"),
    (["--tag_set", " , "], "--tag_set"),
])
def test_scan_errors_are_one_line(zoo: Zoo, capsys: pytest.CaptureFixture[str],
                                  argv: list[str], message: str) -> None:
    full = ["scan", "--dir", zoo.path("add_one"), *argv] if argv[0] != "--dir" else ["scan", *argv]
    assert main(full) == 1
    err = capsys.readouterr().err
    assert err.startswith("smrt scan: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_scan_does_not_load_libtensorflow(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import smrt
from smrt.cli import main
main(["scan", "--dir", {zoo.path("keras_mobilenet")!r}, "--strict"])
print(smrt.runtime_info().loaded, "libtensorflow" in open("/proc/self/maps").read())
""")
    assert out.split()[-2:] == ["False", "False"]  # found, not loaded


def test_scan_exit_code_from_the_command_line(zoo: Zoo) -> None:
    """`python -m smrt scan` exits 1 on a hit, for CI."""
    result = subprocess.run([sys.executable, "-m", "smrt", "scan", "--dir", zoo.path("add_one"),
                             "--op_denylist", "AddV2"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "{'AddV2'}" in result.stdout
    assert result.stderr == ""
