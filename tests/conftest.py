"""Shared fixtures. The test SavedModels are built by tests/model_zoo.py with TensorFlow's
Python API in a subprocess (TensorFlow is never imported here), once per version of that
script, and cached under pytest's cache directory."""

from __future__ import annotations

import collections
import functools
import hashlib
import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import smrt

ZOO_SCRIPT = Path(__file__).with_name("model_zoo.py")
PROTOS_SCRIPT = Path(__file__).with_name("tf_serving_protos.py")


@dataclass
class Case:
    """One call TensorFlow made and what it returned."""

    signature: str
    inputs: dict[str, Any]
    outputs: dict[str, np.ndarray]


def _restore_bfloat16(array: np.ndarray) -> np.ndarray:
    # .npy files cannot name ml_dtypes' bfloat16; the zoo's bfloat16 arrays come back as |V2.
    return array.view(ml_dtypes.bfloat16) if array.dtype == np.dtype("V2") else array


class Zoo:
    """The built models: ``zoo.path(name)`` and ``zoo.cases(name)``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> str:
        return str(self.root / name)

    def cases(self, name: str) -> list[Case]:
        with np.load(self.root / f"{name}.cases.npz", allow_pickle=True) as data:
            cases: dict[str, Case] = {}
            for key in data.files:
                case, signature, direction, tensor = key.split("/", 3)
                entry = cases.setdefault(case, Case(signature, {}, {}))
                array = _restore_bfloat16(data[key])
                (entry.inputs if direction == "in" else entry.outputs)[tensor] = array
        return [cases[k] for k in sorted(cases, key=lambda c: int(c[1:]))]

    def tf_calls(self, name: str) -> dict[str, np.ndarray]:
        """What TensorFlow's restored object tree returned for the calls the zoo made on
        ``name`` (model_zoo.py ``_record_calls``), by call and nested position."""
        with np.load(self.root / f"{name}.tf_calls.npz", allow_pickle=False) as data:
            return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def zoo(request: pytest.FixtureRequest) -> Zoo:
    digest = hashlib.sha256(ZOO_SCRIPT.read_bytes()).hexdigest()[:16]
    root = Path(request.config.cache.mkdir(f"smrt-zoo-{digest}"))
    if not (root / "all.done").exists():
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run([sys.executable, str(ZOO_SCRIPT), str(root)], check=True, env=env)
        (root / "all.done").touch()
    return Zoo(root)


@pytest.fixture(scope="session")
def tf_protos(request: pytest.FixtureRequest) -> Path:
    """TF Serving messages and warmup files made by TensorFlow (tests/tf_serving_protos.py, in
    a subprocess), cached like the zoo."""
    digest = hashlib.sha256(PROTOS_SCRIPT.read_bytes()).hexdigest()[:16]
    root = Path(request.config.cache.mkdir(f"smrt-protos-{digest}"))
    if not (root / "all.done").exists():
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run([sys.executable, str(PROTOS_SCRIPT), str(root)], check=True, env=env)
        (root / "all.done").touch()
    return root


class ZooServer:
    """The zoo's directory served over HTTP on loopback (Python's file server, whose directory
    listings fsspec's HTTP file system reads): remote model URIs for smrt.model_uri."""

    def __init__(self, root: Path) -> None:
        self.requests: collections.Counter[str] = collections.Counter()
        """Requests so far by URL path (GET and HEAD)."""
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def send_head(self) -> Any:
                requests[self.path] += 1
                return super().send_head()

        handler = functools.partial(Handler, directory=str(root))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def zoo_server(zoo: Zoo) -> Iterator[ZooServer]:
    server = ZooServer(zoo.root)
    yield server
    server.close()


@pytest.fixture(scope="session")
def zoo_url(zoo_server: ZooServer) -> str:
    """The URL of the zoo's directory on loopback HTTP (see ZooServer)."""
    return zoo_server.url


@pytest.fixture(scope="module")
def loaded(zoo: Zoo) -> Iterator[Callable[[str], smrt.Model]]:
    """One loaded model per zoo name, shared by this module's tests (all stateless)."""
    models: dict[str, smrt.Model] = {}

    def get(name: str) -> smrt.Model:
        if name not in models:
            models[name] = smrt.load(zoo.path(name))
        return models[name]

    yield get
    for model in models.values():
        model.close()


@pytest.fixture
def run_python(tmp_path: Path) -> Any:
    """Runs a Python snippet in a fresh interpreter; returns its stdout, fails on error."""

    def run(code: str, env: dict[str, str] | None = None) -> str:
        script = tmp_path / "snippet.py"
        script.write_text(code)
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True,
            env={**os.environ, **(env or {})}, timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run


def assert_same(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Same dtype, shape and values (exact for ints/strings, close for floats)."""
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if expected.dtype.kind in "fc" or expected.dtype == ml_dtypes.bfloat16:
        wide = np.complex128 if expected.dtype.kind == "c" else np.float64
        np.testing.assert_allclose(actual.astype(wide), expected.astype(wide),
                                   rtol=1e-5, atol=1e-6, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def libtensorflow() -> str:
    """The libtensorflow_cc.so.2 of the installed tensorflow wheel, for the C++ tests."""
    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None
    assert spec.submodule_search_locations
    return str(Path(next(iter(spec.submodule_search_locations))) / "libtensorflow_cc.so.2")
