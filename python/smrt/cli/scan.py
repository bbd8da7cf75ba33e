"""``smrt scan``: report denylisted ops in a SavedModel, in ``saved_model_cli scan``'s format.

Reads saved_model.pb only; libtensorflow is never loaded. Unlike saved_model_cli, which counts
only the graph's nodes and the functions they call directly (``PartitionedCall``'s ``f``), smrt
checks every op the MetaGraph can run (:attr:`smrt.MetaGraphInfo.reachable_ops`): ops inside
``tf.cond`` branches, ``tf.while_loop`` bodies, ``tf.data`` functions and any other function a
function-valued attr names, transitively, and the object graph's concrete functions. Each
MetaGraph gets the line saved_model_cli prints (with the op sets sorted rather than in hash
order), then one indented line per denylisted op saying where it is: the graph itself and/or
the library functions that hold it.

Unlike saved_model_cli, which always exits 0, ``smrt scan`` exits 1 when any MetaGraph
contains a denylisted op, so it can gate a CI pipeline.

``--strict`` adds the ops of :func:`smrt.op_policy.strict_ops`: ops that read or write files,
print, log summaries, run Python, or talk to other processes. Checkpoint ops
(:data:`~smrt.op_policy.CHECKPOINT_OPS`) and vocabulary-file table initializers
(:data:`~smrt.op_policy.ASSET_OPS`) are not counted even then (see :mod:`smrt.op_policy`);
name them in ``--op_denylist`` to check for them anyway. ``smrt.load(..., op_policy=...)``
and ``--op_policy`` on ``run``, ``bench`` and ``serve`` refuse such models with the same lists.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from smrt.op_policy import DEFAULT_OPS, findings, strict_ops, where
from smrt.saved_model import MetaGraphInfo, inspect

from .common import set_text, tags_from_flag


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan", help="report denylisted ops (exit 1 if there are any)",
        description="Scan MetaGraphs for denylisted ops, as `saved_model_cli scan` does, but "
                    "count every op that can run (in any function, branch or loop body), say "
                    "where each one is, and exit 1 when any is found.",
    )
    parser.add_argument("--dir", required=True, help="the SavedModel directory")
    parser.add_argument("--tag_set", help="scan only this MetaGraph (tags comma-separated)")
    parser.add_argument("--op_denylist",
                        help="comma-separated ops to look for (default: "
                             + ",".join(sorted(DEFAULT_OPS)) + ")")
    parser.add_argument("--strict", action="store_true",
                        help="also look for ops that use files, printing, Python or the network "
                             "(checkpoint and vocabulary-asset ops excepted)")
    parser.set_defaults(func=run)


def denylist_from_flag(op_denylist: str | None) -> frozenset[str]:
    """saved_model_cli's --op_denylist: comma-separated, blanks dropped.

    As in saved_model_cli, an absent or empty flag means the default list (so ``","`` is the
    way to ask for an empty one).
    """
    if not op_denylist:
        return DEFAULT_OPS
    return frozenset(op.strip() for op in op_denylist.split(",") if op.strip())


def run(args: argparse.Namespace) -> int:
    info = inspect(args.dir, ops=True)
    if args.tag_set:  # as in saved_model_cli, an empty --tag_set means every MetaGraph
        metas: Iterable[MetaGraphInfo] = [info.meta_graph(tags_from_flag(args.tag_set))]
    else:
        metas = info.meta_graphs
    found = False
    for meta in metas:
        denylist = denylist_from_flag(args.op_denylist)
        if args.strict:
            denylist |= strict_ops(meta.reachable_ops or ())
        lines, hit = scan_lines(meta, denylist, summarize=args.strict)
        print("\n".join(lines))
        found = found or hit
    return 1 if found else 0


def scan_lines(meta: MetaGraphInfo, denylist: frozenset[str],
               summarize: bool = False) -> tuple[list[str], bool]:
    """saved_model_cli's line for one MetaGraph, then where each denylisted op is; and whether
    any was found. A clean MetaGraph's line lists the denylist, as saved_model_cli's does,
    unless ``summarize`` (``--strict``'s hundred-odd ops would make one very long line)."""
    hits = findings(meta, denylist)
    tags = list(meta.tags)
    if not hits:
        if summarize:
            return [f"MetaGraph with tag set {tags!r} does not contain any of the "
                    f"{len(denylist)} denylisted ops (--strict; see smrt.op_policy)"], False
        return [f"MetaGraph with tag set {tags!r} does not contain the default denylisted ops: "
                f"{set_text(denylist)}"], False
    return [f"MetaGraph with tag set {tags!r} contains the following denylisted ops: "
            f"{set_text(hits.keys())}",
            *(f"  {op!r} is in: {where(holders)}" for op, holders in hits.items())], True
