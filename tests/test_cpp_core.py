"""The C++ core's own tests (cpp/tests, run by ctest), built with AddressSanitizer and
UndefinedBehaviorSanitizer: error paths, caller-owned memory, strings, threads, and a bounded
mutation run over the SavedModel reader. Any sanitizer report fails the run."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from .conftest import Zoo, libtensorflow

ROOT = Path(__file__).resolve().parent.parent
TEXT_OPS = Path(next(iter(importlib.util.find_spec("tensorflow_text").submodule_search_locations)),
                "python", "ops")


def test_core_under_sanitizers(zoo: Zoo, tmp_path: Path) -> None:
    cmake, ctest = shutil.which("cmake"), shutil.which("ctest")
    assert cmake
    assert ctest
    build = tmp_path / "build"
    subprocess.run([cmake, "-S", str(ROOT), "-B", str(build), "-DSMRT_BUILD_TESTS=ON",
                    "-DSMRT_SANITIZE=address,undefined", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
                   check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(build), "-j2"], check=True, capture_output=True)
    # TensorFlow's own start-up allocations live for the whole process; they are not ours.
    suppressions = tmp_path / "lsan.supp"
    suppressions.write_text("leak:libtensorflow\nleak:tensorflow_text\n")
    env = {
        **os.environ,
        "SMRT_TEST_ZOO": str(Path(zoo.path("add_one")).parent),
        "SMRT_LIBTENSORFLOW": libtensorflow(),
        "SMRT_TEST_TEXT_OPS": str(TEXT_OPS),
        "ASAN_OPTIONS": "detect_odr_violation=0:halt_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "LSAN_OPTIONS": f"suppressions={suppressions}",
    }
    done = subprocess.run([ctest, "--output-on-failure"], cwd=build, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ERROR: AddressSanitizer" not in done.stdout + done.stderr
    assert "runtime error:" not in done.stdout + done.stderr
