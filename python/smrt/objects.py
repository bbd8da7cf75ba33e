"""``model.root``: the object tree ``tf.saved_model.load`` restores, run through smrt's session.

Attribute access follows the SavedObjectGraph's children (``model.root.layer.kernel``).
Variables read as NumPy, always their current value. Functions are callable with NumPy or
Python values, positionally or by keyword, and dispatch to the first concrete function whose
input signature fits, as TensorFlow's restored functions do; outputs keep their saved structure.
Functions and signatures share the session's variables, so each sees the other's writes.
"""

from __future__ import annotations

import functools
import os
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _core
from .errors import InputTypeError, NoMatchingFunctionError
from .saved_model import OpaqueValue, TensorSpecValue, numpy_dtype


class _NoMatch(Exception):
    """The arguments do not fit one concrete function."""


_TreeData = tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]


class _Tree:
    """The decoded tree, and one Python object per node while it is in use (aliases give the
    same object)."""

    def __init__(self, native: _core.NativeModel, tree: _TreeData, model_dir: str) -> None:
        self.native = native
        self.model_dir = model_dir
        self.nodes, self.concrete = tree
        # Weak: each object holds the tree, so strong values would make a cycle that kept the
        # session alive after its Model was dropped, until the cyclic GC ran.
        self.objects: weakref.WeakValueDictionary[int, RestoredObject] = \
            weakref.WeakValueDictionary()
        self.copying: set[str] = set()  # concrete functions that kept a lent input: copy for them
        self.functions: dict[str, _core.NativeConcreteFunction] = {}  # resolved at first call
        # Each node's (parent, name) on its shortest path, breadth first; paths are spelled out
        # only when asked (a deep chain of nodes would make all of them quadratic).
        self.parents: dict[int, tuple[int, str]] = {0: (-1, "root")}
        queue = [0]
        for node in queue:
            for name, child in self.nodes[node]["children"]:
                if child >= 0 and child not in self.parents:
                    self.parents[child] = (node, name)
                    queue.append(child)

    def function(self, name: str) -> _core.NativeConcreteFunction:
        """Concrete function ``name``, resolved once (its call added to the graph then)."""
        function = self.functions.get(name)
        if function is None:
            function = self.functions[name] = self.native.concrete_function(name)
        return function

    def path(self, node: int) -> str:
        """The shortest path from the root to ``node`` ("root.inner.f")."""
        if node not in self.parents:
            return f"object {node}"
        names: list[str] = []
        while node >= 0:
            node, name = self.parents[node]
            names.append(name)
        return ".".join(reversed(names))

    def get(self, node: int) -> RestoredObject:
        obj = self.objects.get(node)
        if obj is None:
            kind = self.nodes[node]["kind"]
            cls: type[RestoredObject] = (
                Variable if kind == "variable"
                else Function if kind in ("function", "bare_concrete_function")
                else Asset if kind == "asset"
                else RestoredObject
            )
            obj = self.objects[node] = cls(self, node)
        return obj


class RestoredObject:
    """A node of the restored object tree; its saved children are its attributes."""

    def __init__(self, tree: _Tree, node: int) -> None:
        self._tree = tree
        self._node = node

    @property
    def _children(self) -> dict[str, int]:
        return dict(self._tree.nodes[self._node]["children"])

    def __getattribute__(self, name: str) -> Any:
        # obj.__call__ is the saved function (as in TensorFlow), obj(...) still calls it.
        if name == "__call__":
            child = object.__getattribute__(self, "_children").get("__call__")
            if child is not None and child >= 0:
                return object.__getattribute__(self, "_tree").get(child)
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__call__":
            raise AttributeError(name)
        child = self._children.get(name)
        if child is None or child < 0:
            raise AttributeError(f"{self._tree.path(self._node)} has no saved child {name!r}; "
                                 f"its children are: {sorted(self._children)}")
        return self._tree.get(child)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._children))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call = self._children.get("__call__")
        if call is None or call < 0:
            raise TypeError(f"{self._tree.path(self._node)} is not callable: "
                            "it has no saved __call__")
        return self._tree.get(call)(*args, **kwargs)

    def __repr__(self) -> str:
        children = sorted(self._children)
        return f"<smrt restored object {self._tree.path(self._node)} children={children}>"


class Variable(RestoredObject):
    """A restored variable: ``np.asarray(v)`` or ``v.numpy()`` read its current value."""

    @property
    def dtype(self) -> np.dtype[Any]:
        return numpy_dtype(self._tree.nodes[self._node]["dtype"])

    @property
    def shape(self) -> tuple[int | None, ...] | None:
        shape: tuple[int | None, ...] | None = self._tree.nodes[self._node]["shape"]
        return shape

    @property
    def name(self) -> str:
        name: str = self._tree.nodes[self._node]["name"]
        return name

    def numpy(self) -> np.ndarray:
        """The variable's current value (a fresh array each time)."""
        return self._tree.native.read_variable(self._node)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        value = self.numpy()
        return value if dtype is None else value.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return (f"<smrt restored variable {self._tree.path(self._node)} name={self.name!r} "
                f"dtype={self.dtype} shape={self.shape}>")


class Asset(RestoredObject):
    """A restored ``tf.saved_model.Asset``: its file in the SavedModel's ``assets/`` directory,
    which is also what a function capturing it receives."""

    @property
    def asset_path(self) -> str:
        filename: str = self._tree.nodes[self._node]["asset_filename"]
        # Joined as TensorFlow joins it (and as functions receive it): a leading "/" stays
        # inside assets/.
        return os.path.join(self._tree.model_dir, "assets", filename.lstrip("/"))

    def __repr__(self) -> str:
        return f"<smrt restored asset {self._tree.path(self._node)} {self.asset_path!r}>"


def _param_names(fullargspec: Any) -> tuple[list[str], list[Any]]:
    """The positional parameters (without ``self``) and their defaults, from a FullArgSpec."""
    args = list(getattr(fullargspec, "args", None) or [])
    if args[:1] == ["self"]:
        args = args[1:]
    defaults = list(getattr(fullargspec, "defaults", None) or [])
    return args, defaults


def _fits(value: Any, spec: TensorSpecValue) -> Any:
    """``value`` as what smrt feeds for ``spec``, or _NoMatch. Arrays must have its dtype;
    Python values and lists of them fit when their kind converts (the core then converts them
    as a signature's inputs, refusing integers out of the dtype's range)."""
    try:
        want: np.dtype[Any] | None = numpy_dtype(spec.dtype.name)
    except InputTypeError:  # resource, variant...: no value of the caller's fits; try the next
        raise _NoMatch from None
    if want is not None and want.kind == "O":
        want = None  # a string tensor: str, bytes, or arrays of them
    fed: Any = value  # what the core converts: the caller's array itself, so it can be lent
    if isinstance(value, (np.ndarray, np.generic)):
        array = fed = np.asarray(value)
        if want is None:
            if array.dtype.kind not in "OSU":
                raise _NoMatch
        elif array.dtype != want:
            raise _NoMatch
    elif isinstance(value, Variable):
        array = fed = value.numpy()
        if want is not None and array.dtype != want:
            raise _NoMatch
    else:
        try:
            text = isinstance(value, (str, bytes))
            array = np.asarray(value, dtype=object) if text else np.asarray(value)
        except (ValueError, TypeError):
            raise _NoMatch from None
        got = array.dtype.kind
        if want is None:
            if got not in "OSU":
                raise _NoMatch
        elif got in "OSU" or not (got == want.kind or (got in "biu" and want.kind in "fc")
                                  or (got == "f" and want.kind == "c")
                                  or (got in "iu" and want.kind in "iu")):
            raise _NoMatch
    dims = spec.shape.dims
    if dims is not None and (array.ndim != len(dims) or any(
            d not in (None, -1) and d != n for d, n in zip(dims, array.shape, strict=True))):
        raise _NoMatch
    return fed


def _flatten(value: Any, spec: Any, out: list[Any]) -> None:
    """Appends ``value``'s tensors to ``out`` in TensorFlow's nest order, checking that it fits
    ``spec``'s structure; raises _NoMatch when it does not. The caller's own arrays are
    appended as they are (so they can be lent without a copy), anything else converted."""
    if isinstance(spec, TensorSpecValue):
        out.append(_fits(value, spec))
    elif isinstance(spec, OpaqueValue):
        raise _NoMatch
    elif isinstance(spec, Mapping):
        if not isinstance(value, Mapping) or set(value) != set(spec):
            raise _NoMatch
        for key in sorted(spec):
            _flatten(value[key], spec[key], out)
    elif isinstance(spec, (tuple, list)):
        if (isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence)
                or len(value) != len(spec)):
            raise _NoMatch
        for item, item_spec in zip(value, spec, strict=True):
            _flatten(item, item_spec, out)
    else:  # a Python value the function was traced with: only that value fits
        if type(value) is not type(spec) or value != spec:
            raise _NoMatch


def _is_given(array: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether ``array`` is one of the caller's own arrays, at any depth of the arguments."""
    stack: list[Any] = [*args, *kwargs.values()]
    while stack:
        value = stack.pop()
        if value is array:
            return True
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, (tuple, list)):
            stack.extend(value)
    return False


def _rebuild(spec: Any, outputs: list[np.ndarray]) -> Any:
    """The output structure ``spec`` with its TensorSpecs replaced by ``outputs`` in order."""
    if isinstance(spec, TensorSpecValue):
        return outputs.pop(0)
    if isinstance(spec, Mapping):
        return {key: _rebuild(spec[key], outputs) for key in sorted(spec)} if spec else {}
    if isinstance(spec, tuple) and hasattr(spec, "_fields"):
        return type(spec)(*(_rebuild(item, outputs) for item in spec))
    if isinstance(spec, (tuple, list)):
        return type(spec)(_rebuild(item, outputs) for item in spec)
    return spec


def _describe(signature: Any) -> str:
    if isinstance(signature, tuple) and len(signature) == 2:
        args, kwargs = signature
        lines = [f"  Positional arguments ({len(args)} total):"]
        lines += [f"    * {arg!r}" for arg in args]
        lines.append(f"  Keyword arguments: {kwargs!r}")
        return "\n".join(lines)
    return f"  {signature!r}"


class Function(RestoredObject):
    """A restored ``tf.function`` (or bare concrete function). Calling it runs the first of its
    concrete functions whose input signature fits the arguments."""

    @functools.cached_property
    def concrete_functions(self) -> list[str]:
        """The names of its concrete functions, in dispatch order."""
        names = self._tree.nodes[self._node]["concrete_functions"]
        return [name for name in names if name in self._tree.concrete]

    @functools.cached_property
    def _traces(self) -> list[tuple[str, dict[str, Any]]]:
        """(name, decoded SavedConcreteFunction) of each concrete function, in dispatch order."""
        return [(name, self._tree.concrete[name]) for name in self.concrete_functions]

    @functools.cached_property
    def _params(self) -> tuple[list[str], list[Any]]:
        """Its positional parameters (without ``self``) and their defaults."""
        node = self._tree.nodes[self._node]
        if node["kind"] == "bare_concrete_function":
            return list(node["argument_keywords"]), []
        return _param_names(node["fullargspec"])

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any], signature: Any) -> list[Any]:
        """The flat inputs of a concrete function with ``signature`` for this call, or _NoMatch."""
        if not (isinstance(signature, tuple) and len(signature) == 2):
            raise _NoMatch
        spec_args, spec_kwargs = signature
        params, defaults = self._params
        if len(args) > len(spec_args) or not isinstance(spec_kwargs, Mapping):
            raise _NoMatch
        values: list[Any] = list(args)
        kwargs = dict(kwargs)
        first_default = len(params) - len(defaults)
        # Positional parameters past the given ones: by keyword, else their defaults.
        for i in range(len(values), len(spec_args)):
            name = params[i] if i < len(params) else None
            if name is not None and name in kwargs:
                values.append(kwargs.pop(name))
            elif name is not None and i >= first_default:
                values.append(defaults[i - first_default])
            else:
                raise _NoMatch
        if set(kwargs) != set(spec_kwargs):
            raise _NoMatch
        flat: list[Any] = []
        _flatten(tuple(values), spec_args, flat)
        _flatten(kwargs, spec_kwargs, flat)
        return flat

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for name, concrete in self._traces:
            try:
                flat = self._bind(args, kwargs, concrete["input_signature"])
            except _NoMatch:
                continue
            lend = name not in self._tree.copying
            outputs, returned = self._tree.function(name)(flat, lend)
            if not returned:
                self._kept_input(name, [a for a in flat if isinstance(a, np.ndarray)
                                        and _is_given(a, args, kwargs)])
            if not concrete["has_outputs"]:
                return None
            return _rebuild(concrete["output_signature"], outputs)
        raise self._no_match(args, kwargs)

    def _kept_input(self, name: str, given: list[np.ndarray]) -> None:
        """TensorFlow kept a lent input (say, assigned it to a variable): copy from now on, and
        tell the caller if one of the arrays lent was theirs (``given``)."""
        self._tree.copying.add(name)
        if given:
            warnings.warn(
                f"{self._tree.path(self._node)} kept a reference to an input array after the call "
                "(for example, it assigned the input to a variable), so the model may now share "
                "that array's memory: do not modify it. smrt copies this function's inputs from "
                "now on.",
                RuntimeWarning, stacklevel=3)

    def _no_match(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> NoMatchingFunctionError:
        """The error listing the traced input signatures, as TensorFlow's loader words it."""
        options = [self._tree.concrete[name]["input_signature"] for name in self.concrete_functions]
        got = _describe((args, kwargs))
        listed = "\n\n".join(f"Option {i}:\n{_describe(option)}"
                             for i, option in enumerate(options, 1))
        return NoMatchingFunctionError(
            f"{self._tree.path(self._node)}: no concrete function traced before saving matches the "
            f"call. Got:\n{got}\n\nExpected these arguments to match one of the following "
            f"{len(options)} option(s):\n\n{listed}"
        )

    def __repr__(self) -> str:
        traced = len(self.concrete_functions)
        return f"<smrt restored function {self._tree.path(self._node)} ({traced} traced)>"


def restore(native: _core.NativeModel, model_dir: str) -> RestoredObject | None:
    """The root of ``native``'s object tree (loaded from ``model_dir``), or None for a
    SavedModel without one (TF1)."""
    tree = native.object_tree()
    if tree is None or not tree[0]:
        return None
    return _Tree(native, tree, model_dir).get(0)
