"""The README's commands run as written, after its first command (examples/roundtrip.py)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLE_DIR = "/tmp/smrt-example"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/roundtrip.py's models, in a directory of the test's own."""
    work = tmp_path_factory.mktemp("smrt-example")
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "roundtrip.py"), str(work)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("round trip OK")
    return work


@pytest.mark.slow
def test_the_python_quick_start_runs(workdir: Path, run_python) -> None:
    (snippet,) = [b for b in _blocks("python") if "smrt.load(path)" in b]
    out = run_python(snippet.replace(EXAMPLE_DIR, str(workdir)))
    assert out.startswith("[('serve',)] [")
    assert "'serving_default'" in out


@pytest.mark.slow
def test_the_command_line_examples_run(workdir: Path) -> None:
    (block,) = [b for b in _blocks("bash") if b.startswith("smrt show")]
    commands = block.replace("\\\n", " ").replace(EXAMPLE_DIR, str(workdir)).splitlines()
    assert len(commands) == 9
    for command in commands:
        argv = shlex.split(command, comments=True)
        assert argv[0] == "smrt"
        done = subprocess.run([sys.executable, "-m", "smrt", *argv[1:]], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout, command



@pytest.mark.slow
def test_the_run_example_gives_the_guides_answer(workdir: Path) -> None:
    (block,) = [b for b in _blocks("bash") if b.startswith("smrt show")]
    run_line = block.replace("\\\n", " ").replace(EXAMPLE_DIR, str(workdir))
    (command,) = [line for line in run_line.splitlines()
                  if line.startswith("smrt run") and "--signature_def" in line]
    done = subprocess.run([sys.executable, "-m", "smrt", *shlex.split(command)[1:]],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Result for output key output_0:\n3.0\n"


@pytest.mark.slow
def test_the_object_tree_example_runs(workdir: Path, run_python) -> None:
    (snippet,) = [b for b in _blocks("python") if "model.root.mutate" in b]
    lines = snippet.replace(EXAMPLE_DIR, str(workdir)).splitlines()
    # Print each expression's value, then compare with the value its comment says.
    kept = ("import", "model.root.mutate")
    code = "\n".join(line if not line or " = " in line or line.startswith(kept)
                     else f"print(repr(({line.split('  #')[0].strip()})))" for line in lines)
    out = run_python(code).splitlines()
    assert out == ["array(3., dtype=float32)", "array(6., dtype=float32)",
                   "{'output_0': array(6., dtype=float32)}",
                   "(array(2., dtype=float32), array(2., dtype=float32))"]


@pytest.mark.slow
def test_the_beam_example_runs(workdir: Path, run_python) -> None:
    pytest.importorskip("apache_beam")
    (snippet,) = [b for b in _blocks("python") if "RunInference(ModelHandlerNumpy" in b]
    printed = run_python(snippet.replace(EXAMPLE_DIR, str(workdir))).split()
    assert len(printed) == 4, printed
    assert len(set(printed)) == 1, printed  # four equal images
    assert 0 <= int(printed[0]) < 1000


@pytest.mark.slow
def test_the_spark_example_runs(workdir: Path, run_python) -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java (.ci/run installs it)")
    (snippet,) = [b for b in _blocks("python") if "predict_batch_udf(" in b]
    out = run_python(snippet.replace(EXAMPLE_DIR, str(workdir)))
    rows = [line for line in out.splitlines() if line.startswith("|[0.5, 0.5")]
    assert len(rows) == 4, out
