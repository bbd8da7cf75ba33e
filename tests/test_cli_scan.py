"""``smrt scan`` prints what ``saved_model_cli scan`` prints, and exits 1 on denylisted ops."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from smrt.cli import main
from smrt.cli.scan import CHECKPOINT_OPS, DEFAULT_OPS, STRICT_OPS, strict_ops

from .conftest import Zoo
from .test_cli_show import cli_argv, saved_model_cli_outputs

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


def test_scan_matches_saved_model_cli(golden: list[tuple[list[str], str]],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in golden:
        code = main(argv)
        out = capsys.readouterr().out
        assert comparable(out) == comparable(expected), argv
        assert code == (1 if "contains the following denylisted ops" in expected else 0), argv


def test_scan_finds_the_default_ops(io_model: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--dir", io_model]) == 1
    assert capsys.readouterr().out == ("MetaGraph with tag set ['serve'] contains the following "
                                       "denylisted ops: {'PrintV2', 'ReadFile'}\n")


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
    assert "'TFRecordDataset'" in out
    assert main(["scan", "--dir", io_model, "--strict"]) == 1
    assert capsys.readouterr().out == (
        "MetaGraph with tag set ['serve'] contains the following denylisted ops: "
        "{'MatchingFiles', 'PrintV2', 'ReadFile'}\n")
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
print(smrt.runtime_info(), "libtensorflow" in open("/proc/self/maps").read())
""")
    assert out.split()[-2:] == ["None", "False"]


def test_scan_exit_code_from_the_command_line(zoo: Zoo) -> None:
    """`python -m smrt scan` exits 1 on a hit, for CI."""
    result = subprocess.run([sys.executable, "-m", "smrt", "scan", "--dir", zoo.path("add_one"),
                             "--op_denylist", "AddV2"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "{'AddV2'}" in result.stdout
    assert result.stderr == ""
