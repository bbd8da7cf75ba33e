"""``--op_policy``, shared by the commands that load a model (``run``, ``bench``, ``serve``)."""

from __future__ import annotations

import argparse
from typing import Any

from smrt.op_policy import OpPolicy, policy_from_flag


def add_op_policy_argument(parser: Any) -> None:
    """Adds ``--op_policy``; its value (``args.op_policy``) is what ``smrt.load`` takes."""
    parser.add_argument(
        "--op_policy", type=_policy, metavar="POLICY",
        help="refuse the model, before TensorFlow loads it, if it can run an op the policy "
             "denies (in any function, branch or loop body): 'default' (saved_model_cli's "
             "denylist), 'strict' (also files, printing, Python, the network) or "
             "comma-separated op names (default: no check)")


def _policy(text: str) -> OpPolicy:
    try:
        return policy_from_flag(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
