"""What a SavedModel declares, read from saved_model.pb without loading libtensorflow."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from . import _core
from .errors import InputTypeError, NotFoundError

Shape = tuple[int | None, ...] | None
"""A tensor shape: None per unknown dimension; the whole shape None when the rank is unknown."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature."""

    name: str
    """The signature's key for it, e.g. ``"x"``."""
    dtype: str
    """TensorFlow's dtype name: ``"float32"``, ``"string"``, ``"bfloat16"``..."""
    shape: Shape
    """Dimensions, None where unknown; None as a whole for unknown rank."""
    tensor_name: str
    """The graph tensor, e.g. ``"serving_default_x:0"``."""

    @property
    def dtype_enum(self) -> str:
        """The DataType enum name saved_model_cli prints, e.g. ``"DT_FLOAT"``."""
        return _core.dtype_enum_name(self.dtype)

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        """The NumPy dtype smrt feeds and returns for it (``object`` for strings)."""
        return numpy_dtype(self.dtype)


@dataclass(frozen=True)
class SignatureInfo:
    """A SignatureDef: named inputs and outputs, and the method name."""

    key: str
    method_name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]


@dataclass(frozen=True)
class MetaGraphInfo:
    """One MetaGraph: its tag-set and its SignatureDefs (``__saved_model_init_op`` included)."""

    tags: tuple[str, ...]
    signatures: Mapping[str, SignatureInfo]
    ops: tuple[str, ...] | None = None
    """The ops the graph uses, sorted (as ``saved_model_cli --list_ops`` counts them); None
    unless :func:`inspect` was asked for them."""


@dataclass(frozen=True)
class SavedModelInfo:
    """Everything :func:`inspect` read from a SavedModel directory."""

    path: str
    meta_graphs: tuple[MetaGraphInfo, ...]

    @property
    def tag_sets(self) -> list[tuple[str, ...]]:
        """The tag-set of each MetaGraph, in file order."""
        return [meta.tags for meta in self.meta_graphs]

    def meta_graph(self, tags: Iterable[str] = ("serve",)) -> MetaGraphInfo:
        """The MetaGraph with exactly these tags (in any order)."""
        wanted = set(tags)
        for meta in self.meta_graphs:
            if set(meta.tags) == wanted:
                return meta
        available = ", ".join(repr(", ".join(t)) for t in self.tag_sets)
        raise NotFoundError(
            f"the SavedModel at '{self.path}' has no MetaGraph with tag-set "
            f"'{', '.join(sorted(wanted))}'; its tag-sets are: {available}"
        )


def numpy_dtype(dtype: str) -> np.dtype[Any]:
    """The NumPy dtype for a TensorFlow dtype name."""
    if dtype == "string":
        return np.dtype(object)
    if dtype == "bfloat16":
        try:
            import ml_dtypes  # optional: only bfloat16 needs it
        except ImportError:
            raise InputTypeError("bfloat16 tensors need the ml_dtypes package") from None
        return np.dtype(ml_dtypes.bfloat16)  # type: ignore[no-any-return]
    try:
        return np.dtype(dtype)
    except TypeError:
        raise InputTypeError(f"NumPy has no dtype for TensorFlow's {dtype}") from None


def _spec(raw: tuple[str, int, tuple[int | None, ...] | None, str]) -> TensorSpec:
    key, code, shape, tensor_name = raw
    return TensorSpec(key, _core.dtype_name(code), shape, tensor_name)


def signature_info(raw: tuple[str, str, list[Any], list[Any]]) -> SignatureInfo:
    key, method_name, inputs, outputs = raw
    return SignatureInfo(
        key,
        method_name,
        MappingProxyType({s[0]: _spec(s) for s in inputs}),
        MappingProxyType({s[0]: _spec(s) for s in outputs}),
    )


def meta_graph_info(raw: tuple[list[str], list[Any], list[str] | None]) -> MetaGraphInfo:
    tags, signatures, ops = raw
    return MetaGraphInfo(
        tuple(tags),
        MappingProxyType({s[0]: signature_info(s) for s in signatures}),
        None if ops is None else tuple(ops),
    )


def inspect(path: str | os.PathLike[str], *, ops: bool = False) -> SavedModelInfo:
    """Read a SavedModel's tag-sets and signatures from its saved_model.pb.

    With ``ops=True`` each MetaGraph also lists the ops its graph uses (a little slower: the
    whole graph is read). Does not load libtensorflow. Raises
    :class:`~smrt.errors.ModelNotFoundError` for a missing directory or file, and
    :class:`~smrt.errors.DataLossError` for a corrupt one.
    """
    path = os.fspath(path)
    raw = _core.inspect(os.fsencode(path), ops)  # bytes: any file name the OS allows
    return SavedModelInfo(path, tuple(meta_graph_info(m) for m in raw))
