"""Finding and loading libtensorflow, the one native dependency, at run time.

Search order: an explicit path (argument, or the ``SMRT_LIBTENSORFLOW`` environment variable),
the library an already-imported ``tensorflow`` package loaded, the installed ``tensorflow`` /
``tensorflow-cpu`` wheel (located without importing it), then a system libtensorflow C library
on the loader's search path. TensorFlow's Python package is never imported.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from . import _core
from .errors import LibraryNotFoundError

ENV_VAR = "SMRT_LIBTENSORFLOW"

# File names of the C API library: the wheel's first, then the C distribution's.
if sys.platform == "darwin":
    _LIBRARY_NAMES = ("libtensorflow_cc.2.dylib", "libtensorflow.2.dylib")
else:
    _LIBRARY_NAMES = ("libtensorflow_cc.so.2", "libtensorflow.so.2")

_INSTALL_HINT = (
    "Install TensorFlow's CPU wheel with `pip install smrt[tf]` (or `pip install tensorflow-cpu`; "
    "`tensorflow` for GPUs), or set SMRT_LIBTENSORFLOW to a libtensorflow.so.2 from a "
    "TensorFlow C library distribution."
)


@dataclass(frozen=True)
class RuntimeInfo:
    """Which libtensorflow smrt runs on."""

    path: str
    """The shared library the C API was loaded from."""
    version: str
    """TensorFlow's version, as ``TF_Version()`` reports it."""
    source: str
    """How it was found: "explicit", "environment", "imported tensorflow", "tensorflow wheel",
    "system" or "preloaded"."""


_source: str = "preloaded"


def _in_directory(directory: Path) -> Path | None:
    for sub in (directory, directory / "lib"):
        for name in _LIBRARY_NAMES:
            if (sub / name).is_file():
                return sub / name
    return None


def _resolve_explicit(path: str | os.PathLike[str], origin: str) -> str:
    p = Path(path).expanduser()
    if p.is_dir():
        found = _in_directory(p)
        if found is None:
            raise LibraryNotFoundError(
                f"{origin} names the directory '{p}', which holds none of "
                + ", ".join(_LIBRARY_NAMES)
            )
        return str(found)
    if not p.exists():
        if os.sep not in os.fspath(path):
            return os.fspath(path)  # a bare file name: the dynamic loader's search path decides
        raise LibraryNotFoundError(f"{origin} names '{p}', which does not exist")
    return str(p)


def _tensorflow_directory() -> tuple[Path, str] | None:
    module = sys.modules.get("tensorflow")
    if module is not None and getattr(module, "__file__", None):
        return Path(module.__file__).parent, "imported tensorflow"  # type: ignore[arg-type]
    try:
        spec = importlib.util.find_spec("tensorflow")  # finds, does not import
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))), "tensorflow wheel"


def _candidates(path: str | os.PathLike[str] | None) -> list[tuple[str, str]]:
    """(path, source) pairs to try, best first. An explicit choice is the only candidate."""
    if path is not None:
        return [(_resolve_explicit(path, "the library path given"), "explicit")]
    env = os.environ.get(ENV_VAR)
    if env:
        return [(_resolve_explicit(env, f"${ENV_VAR}"), "environment")]
    found = _tensorflow_directory()
    if found is not None:
        library = _in_directory(found[0])
        if library is not None:
            return [(str(library), found[1])]
    return [(name, "system") for name in reversed(_LIBRARY_NAMES)]


def load_library(path: str | os.PathLike[str] | None = None) -> RuntimeInfo:
    """Load libtensorflow's C API, if it is not loaded yet, and say which library it is.

    ``path`` may name the library file or a directory holding it; without it the search order
    in this module's docstring applies. One process holds one libtensorflow: asking for another
    path once one is loaded raises :class:`~smrt.errors.LibraryNotFoundError`.
    """
    global _source
    already_loaded = _core.runtime_info() is not None
    if already_loaded and path is None:
        return runtime_info()  # type: ignore[return-value]
    errors = []
    for candidate, source in _candidates(path):
        try:
            _core.load_library(candidate)
        except LibraryNotFoundError as e:
            if already_loaded:
                raise  # "another library is loaded": installing one would not help
            errors.append(str(e))
            continue
        if not already_loaded:
            _source = source
        return runtime_info()  # type: ignore[return-value]
    raise LibraryNotFoundError(
        "no usable libtensorflow found. " + _INSTALL_HINT + "\nTried:\n  " + "\n  ".join(errors)
    )


def runtime_info() -> RuntimeInfo | None:
    """The libtensorflow smrt has loaded, or None before the first :func:`smrt.load`."""
    loaded = _core.runtime_info()
    if loaded is None:
        return None
    return RuntimeInfo(path=loaded[0], version=loaded[1], source=_source)
