"""``--op_library``, shared by the commands that load a model (``run``, ``bench``, ``serve``)."""

from __future__ import annotations

from typing import Any


def add_op_library_argument(parser: Any) -> None:
    """Adds ``--op_library`` (repeatable); ``args.op_library`` is what ``smrt.load`` takes as
    ``op_libraries``."""
    parser.add_argument(
        "--op_library", action="append", default=[], metavar="PATH",
        help="a custom op library the model needs (a .so, or a directory of them), loaded "
             "before the model; repeat for several. tensorflow-text's are found by themselves "
             "when installed; SMRT_OP_LIBRARIES lists more")
