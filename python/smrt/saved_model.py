"""What a SavedModel declares, read from saved_model.pb without loading libtensorflow."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from .errors import InputTypeError, NotFoundError

Shape = tuple[int | None, ...] | None
"""A tensor shape: None per unknown dimension; the whole shape None when the rank is unknown."""


def tf_dims(shape: tuple[int | None, ...]) -> list[int]:
    """A known-rank shape's dimensions as TensorFlow writes them (TensorShapeProto, the CLI,
    TF Serving's metadata): -1 where unknown."""
    return [-1 if d is None else d for d in shape]


def tag_set(tags: Iterable[str] | str) -> tuple[str, ...]:
    """A MetaGraph tag-set as a tuple: a string is comma-separated tags, as
    ``saved_model_cli --tag_set`` takes them (``"serve"`` is one tag, not five letters)."""
    if isinstance(tags, str):
        return tuple(t.strip() for t in tags.split(",") if t.strip())
    return tuple(tags)


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


# --- the root object's functions (MetaGraphDef.object_graph_def), as plain Python values.
# A concrete function's input signature decodes to what TensorFlow's nested_structure_coder
# gives: None, float, int, str, bool, list, tuple, dict, namedtuple, and the classes below in
# place of TensorFlow's TensorShape, DType and TensorSpec (same str() and repr()). smrt._core
# builds every class of this module by keyword (cpp/bindings/py_metadata.cc), so each field is
# defined here only.


@dataclass(frozen=True)
class ShapeValue:
    """A ``tf.TensorShape`` in a function signature."""

    dims: Shape

    def __str__(self) -> str:
        if self.dims is None:
            return "<unknown>"
        if len(self.dims) == 1:
            return f"({self.dims[0]},)"
        return "(" + ", ".join(str(d) for d in self.dims) + ")"

    def __repr__(self) -> str:
        return "TensorShape(None)" if self.dims is None else f"TensorShape({list(self.dims)})"


@dataclass(frozen=True)
class DTypeValue:
    """A ``tf.DType`` in a function signature."""

    name: str

    def __str__(self) -> str:
        return f"<dtype: {self.name!r}>"

    def __repr__(self) -> str:
        return f"tf.{self.name}"


@dataclass(frozen=True)
class TensorSpecValue:
    """A ``tf.TensorSpec`` in a function signature."""

    name: str | None
    shape: ShapeValue
    dtype: DTypeValue

    def __repr__(self) -> str:
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype!r}, name={self.name!r})"


@dataclass(frozen=True)
class OpaqueValue:
    """A signature value smrt does not decode (a BoundedTensorSpec, another TypeSpec, a tensor);
    ``kind`` says which."""

    kind: str
    detail: str = ""

    def __repr__(self) -> str:
        return f"<{self.kind}{' ' + self.detail if self.detail else ''} (not decoded by smrt)>"


@dataclass(frozen=True)
class ConcreteFunctionInfo:
    """One concrete function (one traced signature) of a saved function."""

    name: str
    """Its FunctionDef's name in the graph's library."""
    args: Any
    """The positional part of its input signature, a tuple (None when the file has none)."""
    kwargs: Any
    """The keyword part, a dict (None when the file has none)."""
    argument_keywords: tuple[str, ...] = ()
    """A bare concrete function's argument names."""


@dataclass(frozen=True)
class FunctionInfo:
    """A child of the SavedModel's root object that is a ``tf.function`` (or, with ``bare``,
    a single concrete function)."""

    name: str
    bare: bool
    concrete_functions: tuple[ConcreteFunctionInfo, ...]
    """In the order ``saved_model_cli`` lists them."""


@dataclass(frozen=True)
class ObjectGraphInfo:
    """What ``saved_model_cli show --all`` lists under "Concrete Functions:"."""

    functions: tuple[FunctionInfo, ...]
    """The root's function children, sorted by name."""
    loadable: bool
    """False when the file shows TensorFlow's loader would fail on it."""


@dataclass(frozen=True)
class MetaGraphInfo:
    """One MetaGraph: its tag-set and its SignatureDefs (``__saved_model_init_op`` included)."""

    tags: tuple[str, ...]
    signatures: Mapping[str, SignatureInfo]
    ops: tuple[str, ...] | None = None
    """The ops the graph uses, sorted (as ``saved_model_cli --list_ops`` counts them); None
    unless :func:`inspect` was asked for them."""
    has_object_graph: bool = False
    """Whether it has an object graph (a TF2 SavedModel)."""
    object_graph: ObjectGraphInfo | None = None
    """The root object's functions; None unless :func:`inspect` was asked for them (with
    ``functions=True``) and there is an object graph."""
    reachable_ops: Mapping[str, tuple[str, ...]] | None = None
    """Every op that can run, mapped to what holds it: the names of the library functions that
    contain it, sorted, with ``""`` (:data:`smrt.op_policy.GRAPH`) for the graph itself.
    Reached from every node of the graph (the ops that run at load included) and from the
    object graph's concrete functions, following function calls and every function-valued
    attr (``tf.cond`` / ``tf.while_loop`` branches and bodies, ``PartitionedCall``'s ``f``,
    ``tf.data`` functions...), transitively. A superset of :attr:`ops`, which counts only what
    ``saved_model_cli`` counts; this is what ``smrt scan`` and op policies check. None unless
    :func:`inspect` was asked for ops."""


@dataclass(frozen=True)
class SavedModelInfo:
    """Everything :func:`inspect` read from a SavedModel directory."""

    path: str
    meta_graphs: tuple[MetaGraphInfo, ...]

    @property
    def tag_sets(self) -> list[tuple[str, ...]]:
        """The tag-set of each MetaGraph, in file order."""
        return [meta.tags for meta in self.meta_graphs]

    def meta_graph(self, tags: Iterable[str] | str = ("serve",)) -> MetaGraphInfo:
        """The MetaGraph with exactly these tags (in any order; a string: comma-separated)."""
        wanted = set(tag_set(tags))
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


def inspect(path: str | os.PathLike[str], *, ops: bool = False,
            functions: bool = False) -> SavedModelInfo:
    """Read a SavedModel's tag-sets and signatures from its saved_model.pb.

    With ``ops=True`` each MetaGraph also lists the ops its graph uses, as ``saved_model_cli``
    counts them (:attr:`MetaGraphInfo.ops`), and every op that can run with the functions
    that hold it (:attr:`MetaGraphInfo.reachable_ops`); a little slower: the whole graph is
    read. With ``functions=True`` each MetaGraph with an object graph also lists its root
    object's functions and their concrete functions' input signatures
    (:attr:`MetaGraphInfo.object_graph`). Does not load libtensorflow. The file is parsed as
    protobuf parses it (repeated occurrences of a message merge), and time and memory stay
    linear in its size. Raises :class:`~smrt.errors.ModelNotFoundError` for a missing
    directory or file, :class:`~smrt.errors.DataLossError` for a corrupt one, and
    :class:`~smrt.errors.ResourceExhaustedError` when ``functions=True`` would list far more
    than the file holds (a crafted file that aliases one big function many times).
    """
    path = os.fspath(path)
    metas = _core.inspect(os.fsencode(path), ops, functions)  # bytes: any file name the OS allows
    return SavedModelInfo(path, tuple(metas))
