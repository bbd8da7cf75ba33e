"""smrt.model_uri: local paths read in place, fsspec URLs copied once to a local cache."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import smrt
from smrt import model_uri
from smrt.errors import ModelFetchError, ModelURIError

from .conftest import Zoo, assert_same

fsspec = pytest.importorskip("fsspec")


@pytest.fixture
def memfs() -> Iterator[object]:
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/smrt-tests", recursive=True) if fs.exists("/smrt-tests") else None


def _upload(fs: object, local: Path, remote: str) -> None:
    for path in local.rglob("*"):
        if path.is_file():
            fs.pipe(f"{remote}/{path.relative_to(local)}", path.read_bytes())  # type: ignore[attr-defined]


def test_a_local_directory_is_used_in_place(zoo: Zoo) -> None:
    assert model_uri.fetch(zoo.path("add_one")) == Path(zoo.path("add_one"))
    assert model_uri.fetch("file://" + zoo.path("add_one")) == Path(zoo.path("add_one"))


def test_a_local_tf_serving_base_path_gives_its_highest_version(zoo: Zoo, tmp_path: Path) -> None:
    for version in ("1", "10", "9"):
        (tmp_path / version).symlink_to(zoo.path("add_one"))
    (tmp_path / "11").mkdir()  # no saved_model.pb: not a version
    (tmp_path / "tmp_12").symlink_to(zoo.path("add_one"))  # not a number: not a version
    assert model_uri.fetch(tmp_path) == tmp_path / "10"
    assert model_uri.resolve(tmp_path).version == 10


def test_a_url_is_copied_once_and_runs_as_tensorflow_did(
        zoo: Zoo, memfs: object, tmp_path: Path) -> None:
    _upload(memfs, Path(zoo.path("add_one")), "/smrt-tests/add_one")
    first = model_uri.fetch("memory://smrt-tests/add_one", cache_dir=tmp_path)
    assert first.parent == tmp_path
    assert model_uri.fetch("memory://smrt-tests/add_one", cache_dir=tmp_path) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]
    with smrt.load(first) as model:
        for case in zoo.cases("add_one"):
            out = model.signatures[case.signature](**case.inputs)
            assert_same(out["y"], case.outputs["y"], "y")


def test_a_url_base_path_gives_its_highest_version(
        zoo: Zoo, memfs: object, tmp_path: Path) -> None:
    _upload(memfs, Path(zoo.path("half_plus_two")), "/smrt-tests/hp/1")
    _upload(memfs, Path(zoo.path("half_plus_three")), "/smrt-tests/hp/2")
    assert model_uri.resolve("memory://smrt-tests/hp") == model_uri.ResolvedModel(
        "memory://smrt-tests/hp/2", 2)
    with smrt.load(model_uri.fetch("memory://smrt-tests/hp", cache_dir=tmp_path)) as model:
        y = model.signatures["serving_default"](x=np.array([2.0], np.float32))["y"]
    assert y.tolist() == [4.0]  # half_plus_three


def test_a_model_rewritten_in_place_is_fetched_again(
        zoo: Zoo, memfs: object, tmp_path: Path) -> None:
    _upload(memfs, Path(zoo.path("half_plus_two")), "/smrt-tests/m")
    before = model_uri.fetch("memory://smrt-tests/m", cache_dir=tmp_path)
    _upload(memfs, Path(zoo.path("half_plus_three")), "/smrt-tests/m")
    after = model_uri.fetch("memory://smrt-tests/m", cache_dir=tmp_path)
    assert after != before
    with smrt.load(after) as model:
        assert model.signatures["serving_default"](x=np.array([2.0], np.float32))["y"] == [4.0]


def test_concurrent_fetches_share_one_complete_copy(
        zoo: Zoo, memfs: object, tmp_path: Path) -> None:
    _upload(memfs, Path(zoo.path("keras_dense")), "/smrt-tests/dense")
    barrier = threading.Barrier(6)
    results: list[Path | BaseException] = []

    def fetch() -> None:
        barrier.wait()
        try:
            results.append(model_uri.fetch("memory://smrt-tests/dense", cache_dir=tmp_path))
        except BaseException as e:  # reported below
            results.append(e)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1, results
    (path,) = set(results)
    assert isinstance(path, Path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no partial copies left
    expected = sorted(p.relative_to(zoo.path("keras_dense")).as_posix()
                      for p in Path(zoo.path("keras_dense")).rglob("*") if p.is_file())
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) == \
        expected


def test_the_cache_directory_comes_from_smrt_cache_dir(
        zoo: Zoo, memfs: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMRT_CACHE_DIR", str(tmp_path / "cache"))
    _upload(memfs, Path(zoo.path("add_one")), "/smrt-tests/a")
    assert model_uri.fetch("memory://smrt-tests/a").parent == tmp_path / "cache"


@pytest.mark.parametrize("uri", ["memory://smrt-tests/none", "/no/such/model/dir"])
def test_nothing_there_is_model_not_found(uri: str, tmp_path: Path) -> None:
    with pytest.raises(smrt.ModelNotFoundError, match="no such directory") as e:
        model_uri.fetch(uri, cache_dir=tmp_path)
    assert uri in str(e.value)
    assert isinstance(e.value, FileNotFoundError)


def test_a_directory_without_a_model_is_model_not_found(memfs: object, tmp_path: Path) -> None:
    memfs.pipe("/smrt-tests/empty/README", b"no model here")  # type: ignore[attr-defined]
    (tmp_path / "x").mkdir()
    for uri in ("memory://smrt-tests/empty", str(tmp_path / "x")):
        with pytest.raises(smrt.ModelNotFoundError, match=r"no saved_model\.pb in it, nor in a "
                                                          "numbered version directory"):
            model_uri.fetch(uri, cache_dir=tmp_path)


def test_an_unknown_protocol_is_a_model_uri_error(tmp_path: Path) -> None:
    with pytest.raises(ModelURIError, match=r"nosuchproto://m.*Protocol not known") as e:
        model_uri.fetch("nosuchproto://m", cache_dir=tmp_path)
    assert isinstance(e.value, ValueError)
    assert isinstance(e.value, smrt.Error)


def test_an_unwritable_cache_is_a_model_fetch_error(
        zoo: Zoo, memfs: object, tmp_path: Path) -> None:
    _upload(memfs, Path(zoo.path("add_one")), "/smrt-tests/a")
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    with pytest.raises(ModelFetchError, match=r"cannot write the model cache .*cache") as e:
        model_uri.fetch("memory://smrt-tests/a", cache_dir=blocker)
    assert isinstance(e.value, OSError)


@pytest.mark.parametrize("key", ["../../escaped.txt", "/abs-escaped.txt", "variables/./x",
                                 "a\\b"])
def test_a_key_that_would_write_outside_the_copy_is_refused(
        zoo: Zoo, memfs: object, tmp_path: Path, key: str) -> None:
    _upload(memfs, Path(zoo.path("add_one")), "/smrt-tests/evil")
    memfs.pipe(f"/smrt-tests/evil/{key}", b"written by the model's owner")  # type: ignore[attr-defined]
    cache = tmp_path / "a" / "b"
    with pytest.raises(ModelFetchError, match="written outside the model's copy") as e:
        model_uri.fetch("memory://smrt-tests/evil", cache_dir=cache)
    assert repr(key) in str(e.value)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == []


def test_a_model_rewritten_during_the_copy_is_copied_again(
        zoo: Zoo, memfs: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _upload(memfs, Path(zoo.path("half_plus_two")), "/smrt-tests/m")
    get_file = type(memfs).get_file
    rewritten: list[bool] = []

    def get_file_while_rewritten(self: object, *args: object, **kwargs: object) -> object:
        result = get_file(self, *args, **kwargs)
        if not rewritten:  # the owner publishes new weights halfway through the first copy
            rewritten.append(True)
            _upload(memfs, Path(zoo.path("half_plus_three")), "/smrt-tests/m")
        return result

    renames: list[str] = []
    rename = os.rename

    def recorded_rename(source: str, target: str) -> None:
        renames.append(Path(target).name)
        rename(source, target)

    monkeypatch.setattr(type(memfs), "get_file", get_file_while_rewritten)
    monkeypatch.setattr(model_uri.os, "rename", recorded_rename)
    path = model_uri.fetch("memory://smrt-tests/m", cache_dir=tmp_path)
    assert rewritten
    assert renames == [path.name]  # the mixed copy was never put where a worker could load it
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    three = Path(zoo.path("half_plus_three"))
    assert {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()} == \
        {p.relative_to(three): p.read_bytes() for p in three.rglob("*") if p.is_file()}
    with smrt.load(path) as model:
        assert model.signatures["serving_default"](x=np.array([2.0], np.float32))["y"] == [4.0]


def test_a_copy_is_readable_by_other_users_of_the_cache(
        zoo: Zoo, memfs: object, tmp_path: Path) -> None:
    _upload(memfs, Path(zoo.path("add_one")), "/smrt-tests/a")
    umask = os.umask(0o077)  # this user's files private by default
    try:
        path = model_uri.fetch("memory://smrt-tests/a", cache_dir=tmp_path)
    finally:
        os.umask(umask)
    modes = {p.relative_to(path).as_posix(): p.stat().st_mode & 0o777 for p in path.rglob("*")}
    assert path.stat().st_mode & 0o777 == model_uri.CACHE_MODE
    assert modes["variables"] == model_uri.CACHE_MODE
    assert modes["saved_model.pb"] == modes["variables/variables.index"] == model_uri.FILE_MODE


def test_copies_left_by_killed_workers_are_removed_once_stale(
        zoo: Zoo, memfs: object, tmp_path: Path) -> None:
    _upload(memfs, Path(zoo.path("add_one")), "/smrt-tests/a")
    stale, live = tmp_path / ".x-1.abc.partial", tmp_path / ".x-2.def.partial"
    for partial in (stale, live):
        (partial / "variables").mkdir(parents=True)
    old = time.time() - model_uri.STALE_PARTIAL_SECONDS - 60
    os.utime(stale, (old, old))
    path = model_uri.fetch("memory://smrt-tests/a", cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, path.name])
