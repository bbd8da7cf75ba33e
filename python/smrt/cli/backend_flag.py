"""``--backend``, shared by the commands that load a model (``run``, ``bench``, ``serve``)."""

from __future__ import annotations

from typing import Any

from smrt.library import pip_install

BACKENDS = ("tensorflow", "openvino", "auto")


def add_backend_argument(parser: Any) -> None:
    """Adds ``--backend``; its value (``args.backend``) is what ``smrt.load`` takes."""
    parser.add_argument(
        "--backend", choices=BACKENDS, default="tensorflow",
        help="the runtime that runs the signatures: 'tensorflow' (default), 'openvino' "
             f"({pip_install('openvino')}; its TensorFlow frontend converts serving_default, "
             "anything it cannot run stays on TensorFlow) or 'auto' (OpenVINO where it matches "
             "TensorFlow on a probe input)")
