"""``smrt run`` prints what ``saved_model_cli run`` prints, and refuses what it should."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smrt.cli import main

from .conftest import Zoo
from .golden import cli_argv, saved_model_cli_outputs

SERVE = {"tag_set": "serve", "signature_def": "serving_default"}


def run_cases(tmp: Path) -> list[tuple[str, dict[str, object]]]:
    """(model, flags) pairs, flags as saved_model_cli takes them."""
    np.save(tmp / "x.npy", np.array([[1.0, 2.0], [3.0, 4.5]], np.float32))
    np.savez(tmp / "xz.npz", x=np.ones((2, 4, 3), np.float32), z=np.arange(3.0, dtype=np.float32))
    return [
        ("multiple_signatures", {**SERVE, "input_exprs": "string_input='3.'"}),
        ("multiple_signatures", {"tag_set": "serve", "signature_def": "from_float",
                                 "input_exprs": "x=3."}),
        ("add_one", {**SERVE, "input_exprs": "x=[[1.0, 2.0], [3.0, 4.5]]"}),
        ("add_one", {**SERVE, "inputs": f"x={tmp / 'x.npy'}"}),
        ("add_one", {**SERVE, "inputs": f"x={tmp / 'x.npy'}", "input_exprs": "x=[[9.0]]"}),
        ("dynamic_shapes", {**SERVE, "inputs": f"x={tmp / 'xz.npz'}[x];z={tmp / 'xz.npz'}[z]"}),
        ("parse_example", {**SERVE, "input_examples":
                           'examples=[{"x":[1.5],"ids":[1,2],"name":["a"]},{"x":[3.5],"ids":[7]}]'}),
        ("all_dtypes", {"tag_set": "serve", "signature_def": "scalars",
                        "input_exprs": "a=1.5;b=7;c='hello'"}),
        ("control_flow", {**SERVE, "input_exprs": "x=5"}),
        ("all_dtypes", {**SERVE, "input_exprs": ";".join(  # every dtype, cast from literals
            [f"{k}=[1, 2]" for k in ("f16", "f32", "f64", "bf16", "i8", "i16", "i32", "i64",
                                     "u8", "u16", "u32", "u64", "c64", "c128")]
            + ["b=[True, False]", "s=['a', 'bc']"])}),
        ("keras_mobilenet", {**SERVE, "input_exprs": "keras_tensor=" + repr(
            np.linspace(0, 1, 224 * 224 * 3).reshape(1, 224, 224, 3).round(3).tolist())}),
    ]


@pytest.fixture(scope="module")
def golden(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[list[str], str]]:
    tmp = tmp_path_factory.mktemp("run")
    cases = run_cases(tmp)
    texts = saved_model_cli_outputs([("run", zoo.path(n), flags) for n, flags in cases])
    return [(cli_argv("run", zoo.path(n), flags), text)
            for (n, flags), text in zip(cases, texts, strict=True)]


def test_run_matches_saved_model_cli(golden: list[tuple[list[str], str]],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in golden:
        assert main(argv) == 0, argv
        assert capsys.readouterr().out == expected, argv


def test_outdir_and_overwrite(zoo: Zoo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--dir", zoo.path("add_one"), "--tag_set", "serve", "--signature_def",
            "serving_default", "--input_exprs", "x=np.ones((2, 3))", "--outdir", str(tmp_path)]
    assert main(argv) == 0
    assert f"Output y is saved to {tmp_path / 'y.npy'}" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.full((2, 3), 2, np.float32))
    assert main(argv) == 1  # exists: refused before running
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv[:-2], "--input_exprs", "x=np.zeros((1, 1))", "--outdir", str(tmp_path),
                 "--overwrite"]) == 0
    assert np.load(tmp_path / "y.npy").tolist() == [[1.0]]


def test_outdir_refuses_output_keys_that_are_paths(zoo: Zoo, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    outdir = tmp_path / "out"
    argv = ["run", "--dir", zoo.path("path_output_keys"), "--tag_set", "serve",
            "--signature_def", "serving_default", "--input_exprs", "x=[1.0]",
            "--outdir", str(outdir)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "is not a plain file name" in err
    assert "'../escape'" in err or "'/abs'" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # nothing written anywhere


def test_outdir_refuses_to_write_through_a_symlink(zoo: Zoo, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    outdir, target = tmp_path / "out", tmp_path / "elsewhere.npy"
    outdir.mkdir()
    (outdir / "y.npy").symlink_to(target)
    argv = ["run", "--dir", zoo.path("add_one"), "--tag_set", "serve", "--signature_def",
            "serving_default", "--input_exprs", "x=[[1.0]]", "--outdir", str(outdir),
            "--overwrite"]
    assert main(argv) == 1
    assert "symbolic link" in capsys.readouterr().err
    assert not target.exists()


def test_numpy_constructors_in_expressions(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    exprs = "x=np.full((2, 2), -1.5, dtype=np.float32)"
    assert main(["run", "--dir", zoo.path("add_one"), "--tag_set", "serve",
                 "--signature_def", "serving_default", "--input_exprs", exprs]) == 0
    assert capsys.readouterr().out == "Result for output key y:\n[[-0.5 -0.5]\n [-0.5 -0.5]]\n"


def test_pickles_need_allow_pickle(zoo: Zoo, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "s.npy", np.array(b"2.5", dtype=object), allow_pickle=True)
    argv = ["run", "--dir", zoo.path("multiple_signatures"), "--tag_set", "serve",
            "--signature_def", "serving_default", "--inputs", f"string_input={tmp_path / 's.npy'}"]
    assert main(argv) == 1
    assert "--allow_pickle" in capsys.readouterr().err
    assert main([*argv, "--allow_pickle"]) == 0
    assert capsys.readouterr().out == "Result for output key output_0:\n2.5\n"


@pytest.mark.parametrize(("flags", "message"), [
    ({"input_exprs": "x=__import__('os').system('true')"}, "is not allowed"),
    ({"input_exprs": "x=np.load('/etc/passwd')"}, "np.load(...) is not allowed"),
    ({"input_exprs": "x=open('/etc/passwd')"}, "is not allowed"),
    ({"input_exprs": "x=np.lib.npyio.load"}, "is not allowed"),
    ({"input_exprs": "x=(lambda: 1)()"}, "is not allowed"),
    ({"input_exprs": "x=[1, 2"}, "not valid Python"),
    ({"input_exprs": "x=np.ones((100000, 100000))"}, "too large"),
    # Sizes by keyword and wide dtypes are capped too.
    ({"input_exprs": "x=np.arange(stop=10000000000)"}, "too large"),
    ({"input_exprs": "x=np.eye(N=100000)"}, "too large"),
    ({"input_exprs": "x=np.zeros(shape=(100000, 100000))"}, "too large"),
    ({"input_exprs": "x=np.linspace(0, 1, num=10000000000)"}, "too large"),
    ({"input_exprs": "x=np.ones(4, dtype='S1000000000')"}, "too large"),
    ({"input_exprs": "x=np.array([b'a'], dtype='S2000000000')"}, "too large"),
    ({"input_exprs": "x=np.full((1000000,), '" + "a" * 300 + "')"}, "too large"),
    ({"input_exprs": "x=np.ones(3, like=1)"}, "unexpected keyword argument 'like'"),
    # ... and arrays that inner calls made count with their own size.
    ({"input_exprs": "x=np.linspace(np.zeros(1048576), 1, 1024)"}, "too large"),
    ({"input_exprs": "x=np.array(np.zeros(1048576), dtype='S100000')"}, "too large"),
    ({"input_exprs": "x=np.asarray([" + ", ".join(["np.zeros(1048576)"] * 300) + "])"},
     "more than 1024 MiB of arrays"),
    ({"input_exprs": "x"}, "'<key>=<value>'"),
    ({"inputs": "x=/nonexistent/file.npy"}, "cannot read"),
    ({"inputs": "x:file.npy"}, "--inputs"),
    ({"input_exprs": "nope=[1.0]"}, "'nope' is not an input"),
    ({"input_exprs": "x=[['a']]"}, "cannot be float32"),
    ({}, "at least one of --inputs"),
    ({"input_examples": "examples={'x': [1.0]}"}, "list of feature dicts"),
    # The same lookup and message as smrt show's (cli/common.py).
    ({"signature_def": "nope", "input_exprs": "x=[1.0]"},
     "no SignatureDef 'nope' in the MetaGraph with tags ['serve']; its SignatureDefs are: "
     "__saved_model_init_op, serving_default"),
])
def test_refusals_print_one_line(zoo: Zoo, capsys: pytest.CaptureFixture[str],
                                 flags: dict[str, str], message: str) -> None:
    name = "parse_example" if "input_examples" in flags else "add_one"
    assert main(cli_argv("run", zoo.path(name), {**SERVE, **flags})) == 1
    err = capsys.readouterr().err
    assert err.startswith("smrt run: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_debug_shows_the_traceback(zoo: Zoo) -> None:
    with pytest.raises(Exception, match="is not allowed"):
        main(["--debug", *cli_argv("run", zoo.path("add_one"), {**SERVE, "input_exprs": "x=f()"})])


def test_show_and_run_as_console_script(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import subprocess, sys
args = ["--dir", {zoo.path("add_one")!r}, "--tag_set", "serve",
        "--signature_def", "serving_default"]
shown = subprocess.run(["smrt", "show", *args, "--json"],
                       capture_output=True, text=True, check=True)
ran = subprocess.run([sys.executable, "-m", "smrt", "run", *args, "--input_exprs", "x=[[1.0]]"],
                     capture_output=True, text=True, check=True)
print(ran.stdout + shown.stdout)
""")
    assert out.startswith("Result for output key y:\n[[2.]]\n")
    assert json.loads(out.split("\n", 2)[2])["tags"] == ["serve"]


def _function_run(zoo: Zoo, name: str, *flags: str) -> list[str]:
    return ["run", "--dir", zoo.path(name), "--tag_set", "serve", *flags]


def test_function_runs_the_guides_sequence(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    """--function PATH calls a saved function: each run loads the model afresh, as
    saved_model_cli run does, so mutate's write lives for that run only."""
    tf = zoo.tf_calls("module_guide")
    assert main(_function_run(zoo, "module_guide", "--function", "__call__",
                              "--input_exprs", "x=3.")) == 0
    assert capsys.readouterr().out == f"Result for output key output_0:\n{tf['call']}\n"
    assert main(_function_run(zoo, "module_guide", "--function", "mutate",
                              "--input_exprs", "new_v=2.")) == 0
    assert capsys.readouterr().out == "mutate returned no outputs.\n"
    # A root. prefix is accepted; a nested path reaches a child module's function.
    assert main(_function_run(zoo, "nested_modules", "--function", "root.inner.f",
                              "--input_exprs", "x=np.ones(2)")) == 0
    assert capsys.readouterr().out == "Result for output key output_0:\n[3. 4.]\n"


def test_function_nested_outputs_and_outdir(zoo: Zoo, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    tf = zoo.tf_calls("nested_modules")
    argv = _function_run(zoo, "nested_modules", "--function", "__call__", "--input_exprs",
                         "x=[1.];y=2.", "--outdir", str(tmp_path))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Result for output key s:\n" in out
    assert "Result for output key t.1:\n" in out
    np.testing.assert_array_equal(np.load(tmp_path / "t.1.npy"), tf["call_xy/t/1"])
    np.testing.assert_array_equal(np.load(tmp_path / "t.0.npy"), tf["call_xy/t/0"])


@pytest.mark.parametrize(("flags", "message"), [
    (["--function", "nope", "--input_exprs", "x=1."],
     "--function 'nope': root has no saved child 'nope'; its children are: ['__call__', "
     "'mutate', 'signatures', 'v']"),
    (["--function", "v", "--input_exprs", "x=1."], "is <smrt restored variable root.v"),
    (["--function", "mutate..x", "--input_exprs", "x=1."], "not a dotted path"),
    (["--function", "mutate", "--signature_def", "serving_default", "--input_exprs", "x=1."],
     "give one of --signature_def or --function"),
    (["--input_exprs", "x=1."], "give one of --signature_def or --function"),
])
def test_function_refusals(zoo: Zoo, capsys: pytest.CaptureFixture[str], flags: list[str],
                           message: str) -> None:
    assert main(_function_run(zoo, "module_guide", *flags)) == 1
    err = capsys.readouterr().err
    assert err.startswith("smrt run: error: ")
    assert message in err


def test_function_without_a_matching_trace_lists_the_traced_ones(
        zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_function_run(zoo, "module_guide", "--function", "__call__",
                              "--input_exprs", "x=[3.]")) == 1
    err = capsys.readouterr().err
    assert "no concrete function traced before saving matches the call" in err
    assert "TensorSpec(shape=(), dtype=tf.float32, name='x')" in err


def test_function_on_a_tf1_model(zoo: Zoo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--dir", zoo.path("two_tag_sets"), "--tag_set", "serve",
                 "--function", "f", "--input_exprs", "x=1."]) == 1
    assert "no object graph" in capsys.readouterr().err
