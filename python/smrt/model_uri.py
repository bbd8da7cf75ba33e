"""Model URIs for distributed engines: a local path or any fsspec URL, as a local directory.

Beam and Spark run the same handler on many workers, and each worker needs the SavedModel on
its own disk. :func:`fetch` turns a URI into a local SavedModel directory:

- A local path (or a ``file://`` URL) is used in place; nothing is copied.
- Any other URL (``gs://``, ``s3://``, ``hdfs://``, ``memory://``... whatever fsspec and its
  plug-ins read) is copied once per machine into a cache directory
  (``$SMRT_CACHE_DIR``, else ``$XDG_CACHE_HOME/smrt/models``, else ``~/.cache/smrt/models``),
  keyed by the URI of the version directory and a fingerprint of its files' listing (names,
  sizes and whatever change markers the file system lists: modification time, ETag,
  checksum), so a model rewritten in place is fetched again. The copy is written to a
  temporary directory beside the cache entry and renamed into place, so workers fetching the
  same model at once never see half a copy: the first rename wins and the others discard
  theirs.
- A directory without ``saved_model.pb`` whose numbered subdirectories hold one is a TF
  Serving base path: its highest version is used, as TF Serving serves by default.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelFetchError, ModelNotFoundError, ModelURIError
from .library import pip_install

SAVED_MODEL_FILE = "saved_model.pb"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model URI's SavedModel is."""

    uri: str
    """The SavedModel directory's URI (a version directory for a TF Serving base path)."""
    version: int | None
    """The version number picked from a TF Serving base path, else None."""


def default_cache_dir() -> Path:
    """The cache directory :func:`fetch` copies remote models to by default."""
    if os.environ.get("SMRT_CACHE_DIR"):
        return Path(os.environ["SMRT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "smrt" / "models"


def is_local(model_uri: str | os.PathLike[str]) -> bool:
    """Whether ``model_uri`` is a local path (or a ``file://`` URL), read in place."""
    text = os.fspath(model_uri)
    return text.startswith("file://") or ("://" not in text and "::" not in text)


def fetch(model_uri: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None
          ) -> Path:
    """The local SavedModel directory for ``model_uri``, copied to the cache if it is remote.

    Raises:
        ModelNotFoundError: nothing at the URI, or no saved_model.pb in it nor in a numbered
            version directory.
        ModelURIError: fsspec cannot read the URI (unknown protocol, plug-in not installed).
        ModelFetchError: copying a file failed.
    """
    text = os.fspath(model_uri)
    if is_local(text):
        return _local_saved_model(Path(text.removeprefix("file://")), text)
    fs, resolved = _resolve_remote(text)
    return _cached_copy(fs, resolved, Path(cache_dir) if cache_dir else default_cache_dir())


def resolve(model_uri: str | os.PathLike[str]) -> ResolvedModel:
    """Where ``model_uri``'s SavedModel is, without copying it (errors as :func:`fetch`)."""
    text = os.fspath(model_uri)
    if is_local(text):
        path = _local_saved_model(Path(text.removeprefix("file://")), text)
        return ResolvedModel(str(path), _version_of(path.name, path.parent, text))
    return _resolve_remote(text)[1]


def read_saved_model_pb(model_uri: str | os.PathLike[str]) -> bytes:
    """The bytes of ``model_uri``'s saved_model.pb, without copying the rest of the model
    (a driver reads signatures this way before its workers fetch the model)."""
    text = os.fspath(model_uri)
    if is_local(text):
        return (fetch(text) / SAVED_MODEL_FILE).read_bytes()
    fs, resolved = _resolve_remote(text)
    path = _join(_strip(fs, resolved.uri), SAVED_MODEL_FILE)
    try:
        with fs.open(path, "rb") as f:
            data: bytes = f.read()
    except OSError as e:
        raise ModelFetchError(f"cannot read {resolved.uri}/{SAVED_MODEL_FILE}: {e}") from e
    return data


# --- local paths -----------------------------------------------------------------------------


def _local_saved_model(path: Path, uri: str) -> Path:
    if (path / SAVED_MODEL_FILE).is_file():
        return path
    if not path.is_dir():
        raise ModelNotFoundError(f"model URI {uri!r}: no such directory")
    versions = [int(p.name) for p in path.iterdir()
                if _is_version(p.name) and (p / SAVED_MODEL_FILE).is_file()]
    if not versions:
        raise ModelNotFoundError(_no_model_message(uri))
    return path / str(max(versions))


def _version_of(name: str, parent: Path, uri: str) -> int | None:
    # A version directory picked from a base path, not the directory the URI named itself.
    named = Path(uri.removeprefix("file://"))
    return int(name) if _is_version(name) and parent == named else None


def _is_version(name: str) -> bool:
    # TF Serving's rule: a version directory's name is a non-negative decimal integer.
    return name.isascii() and name.isdigit()


def _no_model_message(uri: str) -> str:
    return (f"model URI {uri!r}: no {SAVED_MODEL_FILE} in it, nor in a numbered version "
            "directory (a TF Serving base path)")


# --- remote URLs through fsspec --------------------------------------------------------------


def _filesystem(uri: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as e:
        raise ModelURIError(
            f"model URI {uri!r} needs fsspec: {pip_install('beam')} or {pip_install('spark')}"
        ) from e
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as e:  # unknown protocol, plug-in not installed
        raise ModelURIError(f"model URI {uri!r}: {e}") from e
    return fs, str(path)


def _resolve_remote(uri: str) -> tuple[Any, ResolvedModel]:
    fs, path = _filesystem(uri)
    base = uri.rstrip("/")
    versions: list[int] = []
    try:
        if fs.isfile(_join(path, SAVED_MODEL_FILE)):
            return fs, ResolvedModel(base, None)
        exists = fs.isdir(path)
        for entry in fs.ls(path, detail=False) if exists else ():
            name = str(entry).rstrip("/").rsplit("/", 1)[-1]
            if _is_version(name) and fs.isfile(_join(_join(path, name), SAVED_MODEL_FILE)):
                versions.append(int(name))
    except FileNotFoundError:
        exists = False
    except OSError as e:
        raise ModelFetchError(f"model URI {uri!r}: cannot list it: {e}") from e
    if not exists:
        raise ModelNotFoundError(f"model URI {uri!r}: no such directory")
    if not versions:
        raise ModelNotFoundError(_no_model_message(uri))
    version = max(versions)
    return fs, ResolvedModel(f"{base}/{version}", version)


FETCH_ATTEMPTS = 3
"""Copies tried before giving up on a model that keeps changing while it is fetched."""

CACHE_MODE = 0o755
"""A finished copy's directories, readable by every user sharing the cache (mkdtemp makes
them 0700, and a umask may make subdirectories so)."""

FILE_MODE = 0o644
"""A finished copy's files, likewise."""

STALE_PARTIAL_SECONDS = 24 * 3600
"""A copy in progress this much older than now was left by a killed worker: removed."""


def _listing(fs: Any, root: str, uri: str) -> dict[str, dict[str, Any]]:
    """The model's files, by their safe path under `root`, with their listing details."""
    try:
        listing = fs.find(root, detail=True)
    except OSError as e:
        raise ModelFetchError(f"model URI {uri!r}: cannot list it: {e}") from e
    return {_safe_relative(uri, _relative(root, str(path))): info
            for path, info in listing.items() if info.get("type") != "directory"}


def _cached_copy(fs: Any, resolved: ResolvedModel, cache_dir: Path) -> Path:
    root = _strip(fs, resolved.uri)
    files = _listing(fs, root, resolved.uri)
    for _ in range(FETCH_ATTEMPTS):
        final = cache_dir / _cache_key(resolved.uri, files)
        if _is_complete(final):
            return final
        changed = _copy(fs, root, resolved.uri, files, final)
        if changed is None:
            return final
        files = changed
    raise ModelFetchError(f"model URI {resolved.uri!r} changed while it was being copied, "
                          f"{FETCH_ATTEMPTS} times in a row; try again once it is written")


def _is_complete(final: Path) -> bool:
    try:
        return (final / SAVED_MODEL_FILE).is_file()
    except OSError as e:  # e.g. another user's copy this user may not enter
        raise ModelFetchError(f"cannot read the model cache {str(final)!r}: {e}") from e


def _copy(fs: Any, root: str, uri: str, files: dict[str, dict[str, Any]],
          final: Path) -> dict[str, dict[str, Any]] | None:
    """Copies `files` and renames the copy to `final`, named after their listing; or, if the
    listing taken after the copy differs (the model was rewritten meanwhile, so the copy may
    mix old and new files), discards the copy and returns the new listing."""
    cache_dir = final.parent
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(cache_dir)
        partial = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial",
                                        dir=cache_dir))
    except OSError as e:
        raise ModelFetchError(f"cannot write the model cache {str(cache_dir)!r}: {e}") from e
    try:
        for relative in files:
            target = partial / relative
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(_join(root, relative), str(target))
            except OSError as e:
                raise ModelFetchError(f"cannot copy {uri}/{relative}: {e}") from e
        again = _listing(fs, root, uri)
        if _cache_key(uri, again) != final.name:
            return again
        try:
            _make_readable(partial)
            os.rename(partial, final)  # atomic: the directory appears complete or not at all
        except OSError as e:
            if not _is_complete(final):
                raise ModelFetchError(f"cannot write the model cache {str(final)!r}: {e}") from e
            # Another worker renamed its copy first; it has the same files.
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return None


def _make_readable(copy: Path) -> None:
    """Directories CACHE_MODE and files FILE_MODE, whatever the umask: other users of the
    cache read the copy too."""
    os.chmod(copy, CACHE_MODE)
    for directory, subdirectories, names in os.walk(copy):
        for name in subdirectories:
            os.chmod(os.path.join(directory, name), CACHE_MODE)
        for name in names:
            os.chmod(os.path.join(directory, name), FILE_MODE)


def _remove_stale_partials(cache_dir: Path) -> None:
    """Removes copies in progress that no live worker can still be writing."""
    now = time.time()
    for entry in cache_dir.glob(".*.partial"):
        try:
            if now - entry.stat().st_mtime > STALE_PARTIAL_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:  # gone already, or another user's
            pass


def _safe_relative(uri: str, relative: str) -> str:
    """`relative` if it names a file inside the copy, else ModelFetchError: an object store
    key may hold '..', '.', empty parts ('a//b') or a backslash, and joined to the cache
    directory those would write outside it."""
    parts = relative.split("/")
    if (not relative or "\\" in relative or "\0" in relative
            or any(part in ("", ".", "..") for part in parts)):
        raise ModelFetchError(f"model URI {uri!r} holds a file named {relative!r}, which would be "
                              "written outside the model's copy; refusing to fetch it")
    return relative


def _cache_key(uri: str, files: dict[str, dict[str, Any]]) -> str:
    listing = json.dumps(sorted((name, _change_markers(info)) for name, info in files.items()),
                         default=str)
    digest = hashlib.sha256(f"{uri}\n{listing}".encode()).hexdigest()[:24]
    # A readable prefix (the last two path parts) for people looking into the cache.
    tail = "_".join(uri.rstrip("/").split("/")[-2:])
    tail = "".join(c if c.isalnum() or c in "-_" else "_" for c in tail)
    return f"{tail[:40]}-{digest}"


def _change_markers(info: dict[str, Any]) -> dict[str, Any]:
    """The listing fields that change when a file is rewritten, as each file system names them."""
    keys = ("size", "mtime", "created", "LastModified", "last_modified", "updated", "ETag",
            "etag", "md5Hash", "crc32c", "checksum", "modificationTime")
    return {k: info[k] for k in keys if k in info}


def _strip(fs: Any, uri: str) -> str:
    return str(fs._strip_protocol(uri))


def _join(path: str, name: str) -> str:
    return f"{path.rstrip('/')}/{name}"


def _relative(root: str, path: str) -> str:
    root_s = root.rstrip("/") + "/"
    stripped = path.lstrip("/") if not root_s.startswith("/") else path
    return stripped[len(root_s):] if stripped.startswith(root_s) else stripped.rsplit("/", 1)[-1]
