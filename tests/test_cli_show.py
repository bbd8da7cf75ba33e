"""``smrt show`` prints what ``saved_model_cli show`` prints, line for line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smrt.cli import main

from .conftest import Zoo

GOLDEN_SCRIPT = Path(__file__).with_name("saved_model_cli_golden.py")
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


def saved_model_cli_outputs(requests: list[tuple[str, str, dict[str, object]]]) -> list[str]:
    """What saved_model_cli printed for each (command, model_dir, flags), from one TF process."""
    result = subprocess.run(
        [sys.executable, str(GOLDEN_SCRIPT)], input=json.dumps(requests),
        capture_output=True, text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def cli_argv(command: str, model_dir: str, combo: dict[str, object]) -> list[str]:
    argv = [command, "--dir", model_dir]
    for flag, value in combo.items():
        argv += [f"--{flag}"] if value is True else [f"--{flag}", str(value)]
    return argv


def smrt_show(capsys: pytest.CaptureFixture[str], model_dir: str, combo: dict[str, object]) -> str:
    assert main(cli_argv("show", model_dir, combo)) == 0
    return capsys.readouterr().out


def comparable(text: str) -> list[str]:
    """Lines, with each op listing sorted (saved_model_cli prints a set, in hash order), and
    without the Concrete Functions section, which smrt does not print yet."""
    text = text.split("\nConcrete Functions:")[0]
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
print(smrt.runtime_info(), "libtensorflow" in open("/proc/self/maps").read())
""")
    assert out.split()[-2:] == ["None", "False"]
