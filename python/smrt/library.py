"""Finding and loading libtensorflow, the one native dependency, at run time.

Search order: an explicit path (argument, or the ``SMRT_LIBTENSORFLOW`` environment variable),
the library an already-imported ``tensorflow`` package loaded, the installed ``tensorflow`` /
``tensorflow-cpu`` wheel (located without importing it), a tensorflow wheel installed beside
smrt, then a system libtensorflow C library on the loader's search path. TensorFlow's Python
package is never imported. The search itself is the C++ core's (``smrt::runtime``), so C++
programs find libraries the same way; this module adds what only Python knows.

Custom op libraries (tensorflow-text's, tensorflow-addons'...) are loaded with
:func:`load_op_library`, ``smrt.load(..., op_libraries=...)`` or the ``SMRT_OP_LIBRARIES``
environment variable; tensorflow-text's are loaded by themselves when a model needs them.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import _core
from .errors import LibraryNotFoundError

DISTRIBUTION: str = _core.DISTRIBUTION
"""The name pip installs smrt by (``import smrt`` and the ``smrt`` command keep theirs): one home,
pyproject.toml's ``name``, compiled into the core so C++ hints print it too."""


def pip_install(extra: str) -> str:
    """The command that installs smrt with an extra, as every install hint prints it."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


ENV_VAR = "SMRT_LIBTENSORFLOW"
OP_LIBRARIES_ENV_VAR = "SMRT_OP_LIBRARIES"
"""Op libraries to load before every model, separated by ``os.pathsep``."""

# Packages whose op libraries smrt loads by itself when a model needs their ops (located
# without importing them: importing tensorflow_text would import TensorFlow).
_OP_PACKAGES = ("tensorflow_text",)


@dataclass(frozen=True)
class RuntimeInfo:
    """Which libtensorflow smrt runs on."""

    path: str
    """The shared library the C API was (or would be) loaded from."""
    version: str
    """TensorFlow's version: ``TF_Version()`` once loaded; before, the installed wheel's
    version from its package metadata, or "" when there is none (a C library distribution)."""
    source: str
    """How it was found: "explicit", "environment", "imported tensorflow", "tensorflow wheel",
    "found at install" (the wheel found when smrt was installed) or "system"."""
    loaded: bool = True
    """Whether smrt has loaded it (False: it is the library the next load would use)."""


def _tensorflow_package() -> list[tuple[str, str]]:
    """The tensorflow package's directory, as a (directory, source) hint for the core's search:
    the one already imported (two libtensorflows in one process abort), else the installed one,
    located without importing it."""
    module_file = getattr(sys.modules.get("tensorflow"), "__file__", None)
    if module_file:
        return [(os.path.dirname(module_file), "imported tensorflow")]
    try:
        spec = importlib.util.find_spec("tensorflow")  # finds, does not import
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [(next(iter(spec.submodule_search_locations)), "tensorflow wheel")]


def load_library(path: str | os.PathLike[str] | None = None) -> RuntimeInfo:
    """Load libtensorflow's C API, if it is not loaded yet, and say which library it is.

    ``path`` may name the library file or a directory holding it; without it the search order
    in this module's docstring applies. One process holds one libtensorflow: asking for another
    path once one is loaded raises :class:`~smrt.errors.LibraryNotFoundError`.
    """
    if path is not None:
        _core.load_library(os.fspath(Path(path).expanduser()))
    elif _core.runtime_info() is None:
        _core.ensure_loaded(_tensorflow_package())
    return runtime_info()  # type: ignore[return-value]


def runtime_info() -> RuntimeInfo | None:
    """The libtensorflow smrt has loaded, or, before anything is loaded, the one it would load,
    found by the same search without loading it (``loaded`` is False then, and ``version``
    comes from the wheel's metadata). None if no library can be found: :func:`load_library`
    raises :class:`~smrt.errors.LibraryNotFoundError` saying what was tried."""
    try:
        found = _core.find_library(_tensorflow_package())
    except LibraryNotFoundError:  # SMRT_LIBTENSORFLOW names nothing: load_library says so
        return None
    if found is None:
        return None
    path, version, source = found
    if _core.runtime_info() is not None:
        return RuntimeInfo(path, version, source)
    return RuntimeInfo(path, _wheel_version(path), source, loaded=False)


def _wheel_version(library: str) -> str:
    """The version of the tensorflow distribution that installed ``library``, or ""."""
    for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly", "tf-nightly-cpu"):
        try:
            found = importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        owned = found.locate_file("tensorflow")
        if os.path.dirname(os.path.realpath(library)) == os.path.realpath(str(owned)):
            return found.version
    return ""


@functools.cache
def _op_package_roots() -> tuple[str, ...]:
    """The site-packages directories holding packages whose op libraries smrt knows, found
    without importing them, registered once with the core."""
    roots = []
    for package in _OP_PACKAGES:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.submodule_search_locations:
            root = os.path.dirname(next(iter(spec.submodule_search_locations)))
            _core.add_op_package_root(root)
            roots.append(root)
    return tuple(roots)


def prepare_op_libraries(paths: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Before a model loads: lets the core find installed op packages, and loads ``paths``."""
    _op_package_roots()
    for path in paths:
        load_op_library(path)


def load_op_library(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Load a custom op library (``TF_LoadLibrary``) into the process, loading libtensorflow
    first if needed; returns the ops it registers.

    ``path`` is the shared library, or a directory whose ``.so`` files are all loaded. Each path
    is loaded once per process (later calls return the same ops). Models loaded afterwards may
    use its ops. Raises :class:`~smrt.errors.LibraryNotFoundError` naming the path if it does not
    exist or does not load (for example, built for another TensorFlow).
    """
    load_library()
    return tuple(_core.load_op_library(os.fspath(Path(path).expanduser())))
