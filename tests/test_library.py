"""Finding libtensorflow: explicit path, environment variable, the wheel, and clear failures."""

from __future__ import annotations

from pathlib import Path

import smrt

from .conftest import Zoo


def test_runtime_info_names_the_wheel_library(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import smrt
found = smrt.runtime_info()  # described before anything is loaded, without loading it
assert not found.loaded and "libtensorflow" not in open("/proc/self/maps").read()
smrt.load({zoo.path("add_one")!r})
info = smrt.runtime_info()
assert info.loaded
assert (info.path, info.version, info.source) == (found.path, found.version, found.source)
print(info.source, info.path.endswith("libtensorflow_cc.so.2"), info.version.count(".") >= 2)
""")
    assert out.split() == ["tensorflow", "wheel", "True", "True"]


def test_runtime_info_without_a_library_is_none(run_python) -> None:
    out = run_python("import smrt; print(smrt.runtime_info())",
                     env={"SMRT_LIBTENSORFLOW": "/nonexistent/libtensorflow.so.2"})
    assert out.strip() == "None"


def test_install_hints_name_the_distribution() -> None:
    # PyPI's "smrt" is another project: every hint names smrt's own distribution, whose one
    # home is pyproject.toml (compiled into the core).
    root = Path(__file__).parent.parent
    pyproject = (root / "pyproject.toml").read_text()
    assert f'\nname = "{smrt.library.DISTRIBUTION}"\n' in pyproject
    assert smrt.library.DISTRIBUTION != "smrt"
    assert smrt.library.pip_install("serve") == f"pip install '{smrt.library.DISTRIBUTION}[serve]'"
    # The C++ core's hint (libtensorflow not found) is compiled in: read it from libsmrt.so.
    libsmrt = next(line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                   if line.endswith("/libsmrt.so"))
    assert f"pip install {smrt.library.DISTRIBUTION}[tf]".encode() in Path(libsmrt).read_bytes()
    for path in [*root.glob("python/smrt/**/*.py"), *root.glob("cpp/**/*.cc"),
                 *root.glob("cpp/**/*.h"), root / "README.md", *root.glob("docs/*.md")]:
        assert "smrt[" not in path.read_text(), f"{path} names PyPI's unrelated 'smrt'"


def test_explicit_directory_and_env_var(zoo: Zoo, run_python) -> None:
    code = f"""
import importlib.util, os, smrt
tf_dir = list(importlib.util.find_spec("tensorflow").submodule_search_locations)[0]
if os.environ.get("SMRT_LIBTENSORFLOW") == "dir":
    os.environ["SMRT_LIBTENSORFLOW"] = tf_dir
    smrt.load({zoo.path("add_one")!r})
else:
    smrt.load({zoo.path("add_one")!r}, library=tf_dir)
print(smrt.runtime_info().source)
"""
    assert run_python(code).strip() == "explicit"
    assert run_python(code, env={"SMRT_LIBTENSORFLOW": "dir"}).strip() == "environment"


def test_missing_library_raises_with_install_hint(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import smrt
try:
    smrt.load({zoo.path("add_one")!r})
except smrt.LibraryNotFoundError as e:
    assert isinstance(e, ImportError)
    print("SMRT_LIBTENSORFLOW" in str(e), "/nonexistent/libtensorflow.so.2" in str(e))
""", env={"SMRT_LIBTENSORFLOW": "/nonexistent/libtensorflow.so.2"})
    assert out.split() == ["True", "True"]


def test_not_a_tensorflow_library(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import smrt
try:
    smrt.load({zoo.path("add_one")!r}, library="libm.so.6")
except smrt.LibraryNotFoundError as e:
    print("not a usable libtensorflow" in str(e) or "TF_" in str(e))
""")
    assert out.strip() == "True"


def test_second_library_path_is_refused(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import os, smrt
smrt.load({zoo.path("add_one")!r})
other = os.path.join(os.path.dirname(smrt.runtime_info().path), "libtensorflow_framework.so.2")
try:
    smrt.load_library(other)
except smrt.LibraryNotFoundError as e:
    print("already loaded" in str(e))
""")
    assert out.strip() == "True"


def test_c_library_distribution_layout(zoo: Zoo, run_python, tmp_path) -> None:
    # A TensorFlow C distribution is DIR/lib/libtensorflow.so.2 (+ its framework library);
    # stand one up from the wheel's files and point smrt at DIR.
    out = run_python(f"""
import importlib.util, os, numpy as np, smrt
wheel = list(importlib.util.find_spec("tensorflow").submodule_search_locations)[0]
lib = os.path.join({str(tmp_path)!r}, "lib")
os.makedirs(lib)
os.symlink(os.path.join(wheel, "libtensorflow_cc.so.2"), os.path.join(lib, "libtensorflow.so.2"))
os.symlink(os.path.join(wheel, "libtensorflow_framework.so.2"),
           os.path.join(lib, "libtensorflow_framework.so.2"))
model = smrt.load({zoo.path("add_one")!r}, library={str(tmp_path)!r})
assert (model(np.ones((1, 2), np.float32))["y"] == 2).all()
print(smrt.runtime_info().path == os.path.join(lib, "libtensorflow.so.2"))
""")
    assert out.strip() == "True"


def test_version_and_alignment_come_from_one_place() -> None:
    # pyproject.toml holds the version (CMake reads it); the core holds the alignment.
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert f'\nversion = "{smrt.__version__}"\n' in pyproject
    assert smrt.memory.ALIGNMENT == smrt._core.ALIGNMENT == 64
