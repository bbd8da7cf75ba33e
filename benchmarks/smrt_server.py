"""``smrt serve`` as the serving benchmarks (run_serve.py, run_grpc.py) start it: one process per
backend of their ``--backend`` list, on free loopback ports, with its REST and gRPC addresses
and the runtime that runs the model's serving_default read from its log.

``--backend openvino`` leaves to TensorFlow a signature OpenVINO cannot run, so what was asked
for and what ran can differ; the server logs which ran ("model NAME: serving version N
(serving_default on openvino)"), and the benchmarks report both.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import CHILD_ENV, stop

from smrt.cli.backend_flag import BACKENDS

DEFAULT_BACKENDS = "tensorflow,openvino"


def backend_list(text: str) -> list[str]:
    """``--backend``'s value: a comma-separated list of ``smrt serve --backend`` choices."""
    backends = [b.strip() for b in text.split(",")]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown backend(s) {', '.join(map(repr, unknown))}: choose from "
            f"{', '.join(BACKENDS)}, comma-separated")
    if len(set(backends)) != len(backends):
        raise argparse.ArgumentTypeError(f"a backend is listed twice in {text!r}")
    return backends


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", type=backend_list, default=backend_list(DEFAULT_BACKENDS),
        metavar="LIST", help="comma-separated `smrt serve --backend` values, one server each "
        f"(default: {DEFAULT_BACKENDS}; also: auto)")


@dataclass
class SmrtServer:
    process: subprocess.Popen[bytes]
    backend: str
    """What ``--backend`` asked for."""
    served_by: str
    """The runtime that runs serving_default ("tensorflow" where OpenVINO could not)."""
    runtimes: str
    """The server's whole account of its signatures, with the reason for any fallback."""
    rest_url: str
    """``http://127.0.0.1:PORT``."""
    grpc_target: str
    """``127.0.0.1:PORT``."""


_LOG_LINES = {
    "rest_url": r"REST API at (http://\S+) ",
    "grpc_target": r"gRPC API at (\S+) ",
}


@contextmanager
def smrt_serve(name: str, base_path: Path, backend: str, log_path: Path,
               timeout: float = 300.0) -> Iterator[SmrtServer]:
    """Runs ``smrt serve`` for one model on free ports; yields once both APIs listen."""
    argv = [sys.executable, "-m", "smrt", "serve", "--model_name", name, "--model_base_path",
            str(base_path), "--rest_api_port", "0", "--port", "0", "--access_log=false",
            "--backend", backend]
    patterns = {**_LOG_LINES,
                "runtimes": rf"model {re.escape(name)}: serving version \d+ \((.*)\)$"}
    with open(log_path, "w") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=out, env=CHILD_ENV)
    try:
        found: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(patterns):
            text = log_path.read_text()
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`{' '.join(argv)}` did not start:\n{text[-3000:]}")
            for key, pattern in patterns.items():
                if key not in found and (match := re.search(pattern, text, re.MULTILINE)):
                    found[key] = match.group(1)
            time.sleep(0.1)
        served = re.search(r"(?:^|, )serving_default on (\w+)", found["runtimes"])
        yield SmrtServer(process, backend, served.group(1) if served else "none",
                         found["runtimes"], found["rest_url"], found["grpc_target"])
    finally:
        stop(process, 60)


def backend_label(server_backend: str, served_by: str) -> str:
    """"openvino", or "openvino (ran tensorflow)" when serving_default fell back."""
    if server_backend == served_by:
        return server_backend
    return f"{server_backend} (ran {served_by})"
