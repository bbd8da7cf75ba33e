"""``smrt.load(..., op_policy=...)`` and ``--op_policy`` refuse models that can run denied ops,
before libtensorflow is loaded."""

from __future__ import annotations

import re

import numpy as np
import pytest

import smrt
from smrt.cli import main
from smrt.op_policy import DEFAULT_OPS, denylist, policy_from_flag

from .conftest import Zoo


@pytest.mark.parametrize("policy", ["default", "strict", ["ReadFile"], ("Foo", "ReadFile")])
def test_a_hidden_file_read_is_refused(zoo: Zoo, policy: smrt.op_policy.OpPolicy) -> None:
    path = zoo.path("hidden_file_reads")
    with pytest.raises(smrt.OpPolicyError) as caught:
        smrt.load(path, op_policy=policy)
    error = caught.value
    assert isinstance(error, smrt.errors.PermissionDeniedError)
    assert isinstance(error, PermissionError)
    assert isinstance(error, smrt.Error)
    assert list(error.ops) == ["ReadFile"]
    message = str(error)
    assert path in message
    assert "'ReadFile' (in function '" in message
    for holder in (r"cond_true_\d+", r"while_body_\d+", r"__inference_Dataset_map_\w+"):
        assert re.search(f"function '{holder}'", message), (holder, message)


def test_an_allowed_model_loads_and_runs(zoo: Zoo) -> None:
    x = np.ones((1, 4), np.float32)
    for policy in ("default", "strict", ["ReadFile", "PrintV2"], []):
        with smrt.load(zoo.path("add_one"), op_policy=policy) as model:
            np.testing.assert_array_equal(model(x)["y"], x + 1)


def test_the_graph_is_named_as_a_holder(zoo: Zoo) -> None:
    with pytest.raises(smrt.OpPolicyError, match=r"'Placeholder' \(in the graph\)") as caught:
        smrt.load(zoo.path("add_one"), op_policy=["Placeholder", "AddV2"])
    assert caught.value.ops["Placeholder"] == ("",)
    assert re.fullmatch(r"__inference_serve_\d+", caught.value.ops["AddV2"][0])


def test_a_policy_name_typo_is_an_error(zoo: Zoo) -> None:
    with pytest.raises(ValueError, match="'strikt' is not 'default', 'strict'"):
        smrt.load(zoo.path("add_one"), op_policy="strikt")


def test_the_chosen_meta_graph_is_checked(zoo: Zoo) -> None:
    with pytest.raises(smrt.OpPolicyError, match=r"\(MetaGraph \['serve', 'gpu'\]\)"):
        smrt.load(zoo.path("two_tag_sets"), ["gpu", "serve"], op_policy=["MatMul"])
    with pytest.raises(smrt.NotFoundError, match="train"):
        smrt.load(zoo.path("two_tag_sets"), ["train"], op_policy="strict")


def test_refused_before_libtensorflow_loads(zoo: Zoo, run_python) -> None:
    """With SMRT_LIBTENSORFLOW pointing nowhere, the policy error comes first and libtensorflow
    is never mapped; a model the policy allows then fails to find the library."""
    out = run_python(f"""
import smrt
try:
    smrt.load({zoo.path("hidden_file_reads")!r}, op_policy="strict")
except smrt.OpPolicyError as e:
    print("refused", "ReadFile" in str(e))
print(smrt.runtime_info(), "libtensorflow" in open("/proc/self/maps").read())
try:
    smrt.load({zoo.path("add_one")!r}, op_policy="strict")
except smrt.LibraryNotFoundError:
    print("no library")
""", env={"SMRT_LIBTENSORFLOW": "/nonexistent/libtensorflow.so.2"})
    assert out.split("\n")[:3] == ["refused True", "None False", "no library"]


@pytest.mark.parametrize("command", [
    ["run", "--tag_set", "serve", "--signature_def", "in_cond",
     "--input_exprs", "path='/nonexistent';read=False"],
    ["bench", "--signature_def", "in_cond", "--iterations", "1"],
])
@pytest.mark.parametrize("flag", ["strict", "default", "Foo, ReadFile"])
def test_cli_op_policy(zoo: Zoo, capsys: pytest.CaptureFixture[str], command: list[str],
                       flag: str) -> None:
    argv = [command[0], "--dir", zoo.path("hidden_file_reads"), *command[1:]]
    assert main([*argv, "--op_policy", flag]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"smrt {command[0]}: error: the SavedModel at ")
    assert re.search(r"'ReadFile' \(in function .*, function 'cond_true_\d+'", captured.err)
    assert captured.err.count("\n") == 1


def test_cli_op_policy_flag_is_checked_and_documented(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--dir", "m", "--tag_set", "serve", "--signature_def", "s",
              "--op_policy", " , "])
    assert exit_.value.code == 2
    assert "--op_policy must be 'strict', 'default' or comma-separated op names" in \
        capsys.readouterr().err
    for command in ("run", "bench"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--op_policy POLICY" in capsys.readouterr().out


def test_policy_parsing() -> None:
    assert policy_from_flag("strict") == "strict"
    assert policy_from_flag(" default ") == "default"
    assert policy_from_flag("ReadFile, Foo,") == ["ReadFile", "Foo"]
    assert denylist("default") == DEFAULT_OPS
    assert denylist("strict", ["MyGrpcCall", "SaveV2"]) >= DEFAULT_OPS | {"MyGrpcCall"}
    assert "SaveV2" not in denylist("strict", ["SaveV2"])
    assert denylist(["SaveV2"]) == {"SaveV2"}
