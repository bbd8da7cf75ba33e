"""``smrt scan``: report denylisted ops in a SavedModel, as ``saved_model_cli scan`` does.

Reads saved_model.pb only; libtensorflow is never loaded. The ops are counted exactly as
saved_model_cli counts them (the graph and its function library), and each MetaGraph gets the
same line saved_model_cli prints, with the op sets sorted rather than in hash order.

Unlike saved_model_cli, which always exits 0, ``smrt scan`` exits 1 when any MetaGraph
contains a denylisted op, so it can gate a CI pipeline.

``--strict`` adds :data:`STRICT_OPS` and any op whose name contains one of
:data:`STRICT_NAME_PARTS`: ops that read or write files, print, log summaries, run Python, or
talk to other processes. Checkpoint ops (:data:`CHECKPOINT_OPS`) and vocabulary-file table
initializers (:data:`ASSET_OPS`) are not counted even then: every SavedModel's saver uses the
first (``SaveV2``, ``RestoreV2``...), models with vocabularies use the second on their own
asset files, and a scan of op names cannot tell those uses from a signature that calls them
directly. Name them in ``--op_denylist`` to check for them anyway.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Set
from typing import Any

from smrt.saved_model import MetaGraphInfo, inspect

from .show import tags_from_flag

DEFAULT_OPS = frozenset({"ReadFile", "WriteFile", "PrintV2"})
"""saved_model_cli's default denylist (its ``_OP_DENYLIST``)."""

STRICT_OPS = frozenset({
    # files
    "ReadFile", "WriteFile", "MatchingFiles", "ImmutableConst", "FileSystemSetConfiguration",
    "LoadAndRemapMatrix", "GenerateVocabRemapping", "RecordInput",
    # printing, debugging and summaries
    "Print", "PrintV2", "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
    "DebugNumericSummary", "DebugNumericSummaryV2", "CreateSummaryFileWriter",
    "CreateSummaryDbWriter", "WriteSummary", "WriteScalarSummary", "WriteHistogramSummary",
    "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary", "WriteRawProtoSummary",
    "FlushSummaryWriter", "CloseSummaryWriter", "ImportEvent", "StatsAggregatorSetSummaryWriter",
    # arbitrary Python
    "PyFunc", "PyFuncStateless", "EagerPyFunc",
    # other devices, processes and hosts
    "RemoteCall", "Send", "Recv", "CollectiveAllToAllV2", "CollectiveAllToAllV3",
    "CollectiveAssignGroupV2", "CollectiveBcastRecv", "CollectiveBcastRecvV2",
    "CollectiveBcastSend", "CollectiveBcastSendV2", "CollectiveGather", "CollectiveGatherV2",
    "CollectiveInitializeCommunicator", "CollectivePermute", "CollectiveReduce",
    "CollectiveReduceScatterV2", "CollectiveReduceV2", "CollectiveReduceV3",
    # tf.data sources and sinks that use files or services
    "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2", "MatchingFilesDataset", "ExperimentalMatchingFilesDataset",
    "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset", "SqlDataset",
    "ExperimentalSqlDataset", "LMDBDataset", "ExperimentalLMDBDataset", "CacheDataset",
    "CacheDatasetV2", "SnapshotDataset", "SnapshotDatasetV2", "SnapshotDatasetReader",
    "SnapshotNestedDatasetReader", "SnapshotChunkDataset", "ListSnapshotChunksDataset",
    "SaveDataset", "SaveDatasetV2", "LoadDataset", "DatasetToTFRecord",
    "ExperimentalDatasetToTFRecord", "DistributedSave", "DataServiceDataset",
    "DataServiceDatasetV2", "DataServiceDatasetV3", "DataServiceDatasetV4", "RegisterDataset",
    "RegisterDatasetV2",
    # TF1 readers
    "TFRecordReader", "TFRecordReaderV2", "TextLineReader", "TextLineReaderV2",
    "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "WholeFileReader",
    "WholeFileReaderV2", "LMDBReader",
})
"""What ``--strict`` adds to the denylist (besides names with :data:`STRICT_NAME_PARTS`)."""

STRICT_NAME_PARTS = ("Rpc", "Grpc", "Http", "Gcs")
"""With ``--strict``, any op whose name contains one of these is denylisted too."""

CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename",
                            "ShardedFilespec", "Save", "SaveSlices", "Restore", "RestoreSlice"})
"""Never added by ``--strict``: every SavedModel's saver function uses them."""

ASSET_OPS = frozenset({"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"})
"""Never added by ``--strict``: they read a model's own vocabulary assets at load time."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan", help="report denylisted ops (exit 1 if there are any)",
        description="Scan MetaGraphs for denylisted ops, as `saved_model_cli scan` does, but "
                    "exit 1 when any is found.",
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


def strict_ops(ops_in_graph: Iterable[str]) -> frozenset[str]:
    """What --strict adds for a graph holding these ops: the fixed list and name matches."""
    by_name = {op for op in ops_in_graph if any(part in op for part in STRICT_NAME_PARTS)}
    return (STRICT_OPS | by_name) - CHECKPOINT_OPS - ASSET_OPS


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
            denylist |= strict_ops(meta.ops or ())
        line, hit = scan_line(meta, denylist)
        print(line)
        found = found or hit
    return 1 if found else 0


def scan_line(meta: MetaGraphInfo, denylist: frozenset[str]) -> tuple[str, bool]:
    """saved_model_cli's line for one MetaGraph, and whether it found denylisted ops."""
    found = denylist & set(meta.ops or ())
    tags = list(meta.tags)
    if found:
        return (f"MetaGraph with tag set {tags!r} contains the following denylisted ops: "
                f"{_set_text(found)}"), True
    return (f"MetaGraph with tag set {tags!r} does not contain the default denylisted ops: "
            f"{_set_text(denylist)}"), False


def _set_text(ops: Set[str]) -> str:
    # saved_model_cli prints a Python set, in hash order; smrt sorts it.
    return "{" + ", ".join(repr(op) for op in sorted(ops)) + "}" if ops else "set()"

