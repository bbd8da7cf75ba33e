"""Which ops a SavedModel may hold: the denylists ``smrt scan`` reports and
``smrt.load(..., op_policy=...)`` enforces.

Ops are checked in :attr:`smrt.MetaGraphInfo.reachable_ops`: every op that can run, wherever
it hides (a ``tf.cond`` branch, a ``tf.while_loop`` body, a ``tf.data`` function, a function
called by a function...), read from saved_model.pb without loading libtensorflow.

A policy is ``"default"`` (:data:`DEFAULT_OPS`, ``saved_model_cli``'s list), ``"strict"``
(that, :data:`STRICT_OPS` and any op whose name contains one of :data:`STRICT_NAME_PARTS`:
ops that read or write files, print, log summaries, run Python, or talk to other processes),
or an iterable of op names to deny. Checkpoint ops (:data:`CHECKPOINT_OPS`) and
vocabulary-file table initializers (:data:`ASSET_OPS`) are not in ``"strict"``: every
SavedModel's saver uses the first (``SaveV2``, ``RestoreV2``...), models with vocabularies use
the second on their own asset files, and a check of op names cannot tell those uses from a
signature that calls them directly. Name them in a denylist to refuse them anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Set

from .errors import OpPolicyError
from .saved_model import MetaGraphInfo

OpPolicy = str | Iterable[str]
"""``"default"``, ``"strict"``, or the op names to deny."""

GRAPH = ""
"""The holder name :attr:`~smrt.saved_model.MetaGraphInfo.reachable_ops` gives the graph itself."""

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
    # a dataset built from a serialized GraphDef tensor: its ops are invisible to a scan
    "DatasetFromGraph",
    # TF1 readers
    "TFRecordReader", "TFRecordReaderV2", "TextLineReader", "TextLineReaderV2",
    "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "WholeFileReader",
    "WholeFileReaderV2", "LMDBReader",
})
"""What ``"strict"`` adds to the default list (besides names with :data:`STRICT_NAME_PARTS`)."""

STRICT_NAME_PARTS = ("Rpc", "Grpc", "Http", "Gcs")
"""With ``"strict"``, any op whose name contains one of these is denied too."""

CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename",
                            "ShardedFilespec", "Save", "SaveSlices", "Restore", "RestoreSlice"})
"""Never added by ``"strict"``: every SavedModel's saver function uses them."""

ASSET_OPS = frozenset({"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"})
"""Never added by ``"strict"``: they read a model's own vocabulary assets at load time."""


def strict_ops(ops_in_graph: Iterable[str]) -> frozenset[str]:
    """What ``"strict"`` adds for a graph holding these ops: the fixed list and name matches."""
    by_name = {op for op in ops_in_graph if any(part in op for part in STRICT_NAME_PARTS)}
    return (STRICT_OPS | by_name) - CHECKPOINT_OPS - ASSET_OPS


def denylist(policy: OpPolicy, ops_in_graph: Iterable[str] = ()) -> frozenset[str]:
    """The ops ``policy`` denies in a graph holding ``ops_in_graph``.

    Raises ValueError for a string other than ``"default"`` or ``"strict"`` (a single op name
    must be given as a list, so that a typo in a policy name never denies nothing).
    """
    if isinstance(policy, str):
        if policy == "default":
            return DEFAULT_OPS
        if policy == "strict":
            return DEFAULT_OPS | strict_ops(ops_in_graph)
        raise ValueError(f"op_policy {policy!r} is not 'default', 'strict' or a list of op names")
    return frozenset(policy)


def policy_from_flag(text: str) -> OpPolicy:
    """The CLI's ``--op_policy``: ``strict``, ``default`` or comma-separated op names."""
    text = text.strip()
    if text in ("strict", "default"):
        return text
    ops = [op.strip() for op in text.split(",") if op.strip()]
    if not ops:
        raise ValueError("--op_policy must be 'strict', 'default' or comma-separated op names")
    return ops


def findings(meta: MetaGraphInfo, denied: Set[str]) -> dict[str, tuple[str, ...]]:
    """The denied ops ``meta`` can run, sorted, each with its holders."""
    if meta.reachable_ops is None:
        raise ValueError("the MetaGraph was inspected without ops=True")
    return {op: holders for op, holders in sorted(meta.reachable_ops.items()) if op in denied}


def where(holders: Iterable[str]) -> str:
    """``"the graph, function 'cond_true_5'"``: holders in words."""
    return ", ".join("the graph" if h == GRAPH else f"function {h!r}" for h in holders)


def check(meta: MetaGraphInfo, policy: OpPolicy, path: str) -> None:
    """Raise :class:`~smrt.errors.OpPolicyError` if ``meta`` (inspected with ``ops=True``, from
    the SavedModel at ``path``) can run an op ``policy`` denies; the message names each op and
    where it is."""
    found = findings(meta, denylist(policy, meta.reachable_ops or ()))
    if found:
        name = repr(policy) if isinstance(policy, str) else "(a denylist)"
        listed = "; ".join(f"{op!r} (in {where(holders)})" for op, holders in found.items())
        raise OpPolicyError(
            f"the SavedModel at '{path}' (MetaGraph {list(meta.tags)!r}) was not loaded: op "
            f"policy {name} denies ops it can run: {listed}", found)


