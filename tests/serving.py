"""A real ``smrt serve`` process for the REST tests: started on a free port, its log kept."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import requests

T = TypeVar("T")

READY = re.compile(r"REST API at (http://\S+) ")
GRPC_READY = re.compile(r"gRPC API at (\S+?)(?: and unix:\S+)? \(")


def free_port() -> int:
    """A TCP port free on loopback now (for flags that must name one)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m smrt serve --rest_api_port 0 --port 0 ARGS``; waits until it listens.
    ``url`` is the REST API's, ``grpc_target`` the gRPC API's (``host:port``)."""

    def __init__(self, *args: str, timeout: float = 120.0) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smrt", "serve", "--rest_api_port", "0", "--port", "0",
             *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        self.grpc_target = ""
        threading.Thread(target=self._read_log, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                time.sleep(0.1)  # let the reader thread take the last lines
                raise RuntimeError(f"smrt serve did not start (exit {self.process.returncode}):"
                                   f"\n{self.log}")
        self.session = requests.Session()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            grpc_match = GRPC_READY.search(line)
            if grpc_match:
                self.grpc_target = grpc_match.group(1)
            match = READY.search(line)
            if match:
                self.url = match.group(1)
                self._ready.set()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Waits until a log line matches ``pattern``; returns the match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = re.search(pattern, line)
                if match:
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no log line matches {pattern!r}:\n{self.log}")

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.get(self.url + path, timeout=60, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.post(self.url + path, timeout=60, **kwargs)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signals the server and waits for it to exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def version_dir(base: Path, version: int, source: str, copy: bool = False) -> Path:
    """``base/<version>`` holding the SavedModel at ``source`` (a symlink, or a copy)."""
    import shutil

    target = base / str(version)
    base.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copytree(source, target)
    else:
        target.symlink_to(source, target_is_directory=True)
    return target


def version_with_files(base: Path, version: int, source: str,
                       files: dict[str, bytes | Path]) -> Path:
    """``base/<version>``: the SavedModel at ``source`` (its entries symlinked) plus ``files``
    (relative path -> content, or a file to copy) in the version directory."""
    import shutil

    target = base / str(version)
    target.mkdir(parents=True)
    for entry in Path(source).iterdir():
        (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    for name, content in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, path)
        else:
            path.write_bytes(content)
    return target


# --- the server process's memory and gauges -----------------------------------------------------


def rss(pid: int) -> int:
    """The process's resident set size, in bytes."""
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def peak_rss_growth(pid: int, action: Callable[[], T]) -> tuple[int, T]:
    """How far the process's resident set rose above its size before ``action`` (at its
    peak, not just after: memory freed at once would hide from a before/after look), and what
    ``action`` returned. Linux: the peak (VmHWM) is reset through /proc/PID/clear_refs."""
    before = rss(pid)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := the current RSS
    result = action()
    return _status_kib(pid, "VmHWM") * 1024 - before, result


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def gauge(url: str, name: str) -> float:
    """A metric's value from ``GET /metrics`` (a line without labels)."""
    text = requests.get(f"{url}/metrics", timeout=60).text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, text
    return float(match.group(1))
