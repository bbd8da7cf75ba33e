"""Custom op libraries: loading them, tensorflow-text's found by themselves, and a clear error
for ops nothing registers. Each load happens in a fresh process: op libraries never unload."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import smrt

from .conftest import Zoo, assert_same

TEXT_OPS = Path(next(iter(importlib.util.find_spec("tensorflow_text").submodule_search_locations)),
                "python", "ops")
TEXT_LIBRARIES = [str(TEXT_OPS / "_whitespace_tokenizer_v2.so"),
                  str(TEXT_OPS / "_fast_wordpiece_tokenizer.so")]
# Makes importlib.util.find_spec("tensorflow_text") return None: as if it were not installed.
HIDE_TEXT = "import sys; sys.modules['tensorflow_text'] = None\n"


def _run_cases(run_python, zoo: Zoo, tmp_path: Path, load: str, prelude: str = "",
               env: dict[str, str] | None = None) -> None:
    """Runs the text model's cases in a fresh process loading it with `load`; checks every
    output against TensorFlow's and that no TensorFlow Python package was imported."""
    out = tmp_path / "outputs.npz"
    run_python(prelude + f"""
import sys, numpy as np, smrt
model = {load}
cases = np.load({str(zoo.root / "text_tokenizers.cases.npz")!r}, allow_pickle=True)
outputs = {{}}
for i in range(2):
    got = model.signatures["serving_default"](text=cases[f"c{{i}}/serving_default/in/text"])
    outputs.update({{f"c{{i}}/{{k}}": v for k, v in got.items()}})
np.savez({str(out)!r}, **outputs)
assert sys.modules.get("tensorflow") is sys.modules.get("tensorflow_text") is None, "imported TF"
""", env=env)
    with np.load(out, allow_pickle=True) as got:
        for i, case in enumerate(zoo.cases("text_tokenizers")):
            for key, expected in case.outputs.items():
                assert_same(got[f"c{i}/{key}"], expected, key)


def test_tensorflow_text_model_loads_by_itself(zoo: Zoo, run_python, tmp_path: Path) -> None:
    _run_cases(run_python, zoo, tmp_path, f"smrt.load({zoo.path('text_tokenizers')!r})")


def test_op_libraries_argument_loads_them(zoo: Zoo, run_python, tmp_path: Path) -> None:
    _run_cases(run_python, zoo, tmp_path,
               f"smrt.load({zoo.path('text_tokenizers')!r}, op_libraries={TEXT_LIBRARIES!r})",
               prelude=HIDE_TEXT)


def test_environment_variable_loads_them(zoo: Zoo, run_python, tmp_path: Path) -> None:
    _run_cases(run_python, zoo, tmp_path, f"smrt.load({zoo.path('text_tokenizers')!r})",
               prelude=HIDE_TEXT, env={"SMRT_OP_LIBRARIES": os.pathsep.join(TEXT_LIBRARIES)})


def test_load_op_library_once_per_path_and_errors_name_the_path(run_python) -> None:
    out = run_python(HIDE_TEXT + f"""
import json, smrt
first = smrt.load_op_library({TEXT_LIBRARIES[0]!r})
again = smrt.load_op_library({TEXT_LIBRARIES[0]!r})
errors = []
for bad in ["/nonexistent/_ops.so", "libm.so.6", {str(TEXT_OPS.parent)!r}]:
    try:
        smrt.load_op_library(bad)
    except smrt.LibraryNotFoundError as e:
        errors.append([isinstance(e, ImportError), bad in str(e)])
print(json.dumps([first, again, errors]))
""")
    first, again, errors = json.loads(out)
    assert first == again == ["TFText>WhitespaceTokenizeWithOffsetsV2"]
    assert errors == [[True, True]] * 3


def test_missing_ops_are_a_typed_error_naming_op_function_and_package(zoo: Zoo) -> None:
    # TensorFlow itself would fail inside TF_LoadSessionFromSavedModel with "Op type not
    # registered 'Addons>NoSuchOp' in binary running on ...", naming one op and no function.
    with pytest.raises(smrt.MissingOpError) as info:
        smrt.load(zoo.path("unknown_ops"))
    error = info.value
    assert isinstance(error, smrt.NotFoundError)
    assert isinstance(error, LookupError)
    lines = str(error).splitlines()
    assert zoo.path("unknown_ops") in lines[0]
    assert "2 ops" in lines[0]
    addons = next(line for line in lines if "'Addons>NoSuchOp'" in line)
    assert "function '__inference_serve_" in addons
    assert "tensorflow-addons" in addons
    unknown = next(line for line in lines if "'NoSuchOpAnywhere'" in line)
    assert "function '__inference_serve_" in unknown
    assert "op_libraries=" in lines[-1]


def test_missing_text_ops_name_tensorflow_text_when_not_installed(zoo: Zoo, run_python) -> None:
    out = run_python(HIDE_TEXT + f"""
import smrt
try:
    smrt.load({zoo.path("text_tokenizers")!r})
except smrt.MissingOpError as e:
    print(e)
""")
    for op in ["TFText>WhitespaceTokenizeWithOffsetsV2", "FastWordpieceTokenizeWithOffsets"]:
        line = next(line for line in out.splitlines() if f"'{op}'" in line)
        assert "tensorflow-text package, which is not installed" in line, line


def test_op_table_matches_the_installed_tensorflow_text(run_python) -> None:
    # The static table (cpp/src/op_packages.cc) against what each library registers.
    out = run_python(f"""
import glob, json, smrt
paths = sorted(glob.glob({str(TEXT_OPS)!r} + "/_*.so"))
print(json.dumps({{p: smrt.load_op_library(p) for p in paths}}))
""")
    registered = {op: "tensorflow_text/python/ops/" + Path(path).name
                  for path, ops in json.loads(out).items() for op in ops}
    table = {op: library for op, (package, library) in smrt._core.known_op_libraries().items()
             if package == "tensorflow-text"}
    assert table == registered


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    code = HIDE_TEXT + f"from smrt.cli import main; sys.exit(main({args!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def test_run_takes_op_library_flags(zoo: Zoo) -> None:
    flags = [a for path in TEXT_LIBRARIES for a in ("--op_library", path)]
    result = _cli(["run", "--dir", zoo.path("text_tokenizers"), "--tag_set", "serve",
                   "--signature_def", "serving_default", "--input_exprs", "text=['fox jumps']",
                   *flags])
    assert result.returncode == 0, result.stderr
    assert "Result for output key ids:\n[4 5 6]" in result.stdout


@pytest.mark.parametrize("command", ["run", "run --function", "bench", "serve"])
def test_a_bad_op_library_flag_names_the_path(zoo: Zoo, command: str, tmp_path: Path) -> None:
    (tmp_path / "1").symlink_to(zoo.path("add_one"))
    model = {"run": ["--dir", zoo.path("add_one"), "--tag_set", "serve", "--signature_def",
                     "serving_default", "--input_exprs", "x=[[1.0]]"],
             "run --function": ["--dir", zoo.path("module_guide"), "--tag_set", "serve",
                                "--function", "__call__", "--input_exprs", "x=2.0"],
             "bench": ["--dir", zoo.path("text_tokenizers"), "--iterations", "1"],
             "serve": ["--model_base_path", str(tmp_path), "--rest_api_port", "0"]}[command]
    result = _cli([command.split()[0], *model, "--op_library", "/nonexistent/_ops.so"])
    assert result.returncode == 1
    assert "/nonexistent/_ops.so" in result.stderr
    assert "Traceback" not in result.stderr
