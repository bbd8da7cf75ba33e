"""Finding and loading libtensorflow, the one native dependency, at run time.

Search order: an explicit path (argument, or the ``SMRT_LIBTENSORFLOW`` environment variable),
the library an already-imported ``tensorflow`` package loaded, the installed ``tensorflow`` /
``tensorflow-cpu`` wheel (located without importing it), a tensorflow wheel installed beside
smrt, then a system libtensorflow C library on the loader's search path. TensorFlow's Python
package is never imported. The search itself is the C++ core's (``smrt::runtime``), so C++
programs find libraries the same way; this module adds what only Python knows.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from . import _core

ENV_VAR = "SMRT_LIBTENSORFLOW"
OPENVINO_ENV_VAR = "SMRT_LIBOPENVINO"


@dataclass(frozen=True)
class RuntimeInfo:
    """Which libtensorflow smrt runs on."""

    path: str
    """The shared library the C API was loaded from."""
    version: str
    """TensorFlow's version, as ``TF_Version()`` reports it."""
    source: str
    """How it was found: "explicit", "environment", "imported tensorflow", "tensorflow wheel"
    or "system"."""


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
    """The libtensorflow smrt has loaded, or None before the first :func:`smrt.load`."""
    loaded = _core.runtime_info()
    return None if loaded is None else RuntimeInfo(*loaded)


def _package_dir(name: str) -> list[tuple[str, str]]:
    """An installed package's directory as a (directory, source) hint, found without importing."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return [(next(iter(spec.submodule_search_locations)), f"{name} wheel")]


def load_openvino() -> RuntimeInfo:
    """Load OpenVINO's C API (``libopenvino_c``, from the ``openvino`` wheel) for the
    ``"openvino"`` and ``"auto"`` backends of :func:`smrt.load`, if it is not loaded yet.

    Search order: ``SMRT_LIBOPENVINO`` (the library or its directory), the installed
    ``openvino`` wheel (located without importing it), one installed beside smrt, then the
    loader's search path. Raises :class:`~smrt.errors.LibraryNotFoundError` saying to
    ``pip install smrt[openvino]`` when there is none.
    """
    if _core.openvino_info() is None:
        _core.ensure_openvino_loaded(_package_dir("openvino"))
    return RuntimeInfo(*_core.openvino_info())  # type: ignore[misc]
