"""A C++ program embeds smrt through the installed headers, library and CMake package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from smrt.cli import cmake_dir

from .conftest import Zoo, libtensorflow

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cpp"


@pytest.fixture(scope="module")
def smrt_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/cpp built with find_package(smrt) against the installed package."""
    cmake = shutil.which("cmake")
    assert cmake, "cmake is needed (pip install cmake)"
    build = tmp_path_factory.mktemp("cpp-example")
    subprocess.run([cmake, "-S", str(EXAMPLE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                    f"-DCMAKE_PREFIX_PATH={cmake_dir()}"], check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(build), "-j2"], check=True, capture_output=True)
    return build / "smrt_run"


def test_readme_commands_build_and_run_the_example(zoo: Zoo, tmp_path: Path) -> None:
    # The README's block as written, on the zoo's MobileNet export and a build directory of the
    # test's own; without SMRT_LIBTENSORFLOW: libsmrt finds the library by itself.
    readme = (EXAMPLE.parent.parent / "README.md").read_text()
    (block,) = [b for b in readme.split("```bash\n")[1:] if b.startswith("cmake -S examples/cpp")]
    script = block.split("```")[0].replace("/tmp/smrt-example/mobilenet/1",
                                           zoo.path("keras_mobilenet"))
    script = script.replace("/tmp/smrt-cpp", str(tmp_path / "build"))
    script = script.replace("python3", sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "SMRT_LIBTENSORFLOW"}
    done = subprocess.run(["bash", "-ec", script], cwd=EXAMPLE.parent.parent, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    # The CMake package exports the libtensorflow found at install time.
    assert f"libtensorflow at its install: {libtensorflow()}" in done.stdout
    assert "20 calls on 2 thread(s)" in done.stdout


def test_finds_the_libtensorflow_found_at_install(smrt_run: Path, zoo: Zoo) -> None:
    # Installed into an environment that sees TensorFlow elsewhere (a venv with system site
    # packages): the path recorded at install is searched before the system's.
    env = {k: v for k, v in os.environ.items() if k != "SMRT_LIBTENSORFLOW"}
    done = subprocess.run([str(smrt_run), zoo.path("add_one"), "--iterations", "1"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    beside = (Path(cmake_dir()).parents[3] / "tensorflow").is_dir()
    source = "tensorflow wheel" if beside else "found at install"
    assert f"({source}: " in first, first


def run(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SMRT_LIBTENSORFLOW": libtensorflow()})


def test_cmake_dir_is_printed_by_the_module() -> None:
    out = subprocess.run([sys.executable, "-m", "smrt", "--cmake-dir"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == cmake_dir()
    assert (Path(out) / "smrtConfig.cmake").is_file()


def test_runs_a_model_from_npy_input_on_threads(smrt_run: Path, zoo: Zoo, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.array([[1.0, 2.0, 3.0]], np.float32))
    done = run(smrt_run, zoo.path("add_one"), "--input", f"x={tmp_path / 'x.npy'}",
               "--iterations", "400", "--threads", "4")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "y: float32 (1, 3) [2, 3, 4]"
    assert lines[2].startswith("400 calls on 4 thread(s): p50 ")


def test_generates_inputs_and_reads_string_outputs(smrt_run: Path, zoo: Zoo) -> None:
    done = run(smrt_run, zoo.path("all_dtypes"), "--signature", "scalars", "--iterations", "5")
    assert done.returncode == 0, done.stderr
    assert 'o_c: string () ["example 0"]' in done.stdout


def test_quickstart_uses_the_documented_api(smrt_run: Path, zoo: Zoo) -> None:
    done = run(smrt_run.with_name("quickstart"), zoo.path("add_one"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "input x: float32, rank 2, serving_default_x:0",
        "y (2x3): 2 3 4 5 6 7",
    ]


def test_errors_exit_nonzero_with_smrt_message(smrt_run: Path, zoo: Zoo) -> None:
    done = run(smrt_run, zoo.path("add_one"), "--signature", "nope")
    assert done.returncode == 1
    assert "no callable signature 'nope'" in done.stderr
    done = run(smrt_run, "/nonexistent/model")
    assert done.returncode == 1
    assert "does not exist" in done.stderr


def test_finds_the_tensorflow_wheel_installed_beside_it(smrt_run: Path, zoo: Zoo) -> None:
    # No SMRT_LIBTENSORFLOW: libsmrt looks for site-packages/tensorflow next to its own smrt/.
    site_packages = Path(cmake_dir()).parents[3]  # .../site-packages/smrt/share/cmake/smrt
    if not (site_packages / "tensorflow" / "libtensorflow_cc.so.2").is_file():
        pytest.skip("smrt is not installed beside the tensorflow wheel (an editable install?)")
    env = {k: v for k, v in os.environ.items() if k != "SMRT_LIBTENSORFLOW"}
    done = subprocess.run([str(smrt_run.with_name("quickstart")), zoo.path("add_one")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "y (2x3): 2 3 4 5 6 7"


def test_library_directory_in_the_environment(smrt_run: Path, zoo: Zoo) -> None:
    env = {**os.environ, "SMRT_LIBTENSORFLOW": str(Path(libtensorflow()).parent)}
    done = subprocess.run([str(smrt_run.with_name("quickstart")), zoo.path("add_one")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    env["SMRT_LIBTENSORFLOW"] = str(Path(zoo.path("add_one")))  # a directory without one
    done = subprocess.run([str(smrt_run.with_name("quickstart")), zoo.path("add_one")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1
    assert "$SMRT_LIBTENSORFLOW names the directory" in done.stderr


def test_help_and_usage_errors(smrt_run: Path) -> None:
    done = run(smrt_run, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: smrt_run MODEL_DIR [options]\n")
    assert "--input KEY=FILE.npy" in done.stdout
    done = run(smrt_run)
    assert done.returncode == 2
    assert done.stderr.startswith("smrt_run: no MODEL_DIR given\nusage: smrt_run")
