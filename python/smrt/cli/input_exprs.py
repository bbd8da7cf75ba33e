"""Safe evaluation of ``--input_exprs`` / ``--input_examples`` values: parsed, never ``eval``'d.

Allowed: Python literals (numbers, strings, bytes, booleans, None, lists, tuples, dicts, with
unary minus/plus) and these NumPy constructors called with such literals as arguments:
``np.array``, ``np.asarray``, ``np.ones``, ``np.zeros``, ``np.full``, ``np.arange``, ``np.eye``
and ``np.linspace`` (sizes are capped, so a typo cannot eat the machine). Dtypes may be written
``np.float32`` (any NumPy scalar type name) or as strings; ``np.nan``, ``np.inf``, ``np.pi`` and
``np.e`` are constants. ``numpy.`` works as well as ``np.``. Anything else is refused.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .errors import CliError

CONSTRUCTORS: dict[str, Callable[..., Any]] = {
    "array": np.array, "asarray": np.asarray, "ones": np.ones, "zeros": np.zeros,
    "full": np.full, "arange": np.arange, "eye": np.eye, "linspace": np.linspace,
}
CONSTANTS = {"nan": np.nan, "inf": np.inf, "pi": np.pi, "e": np.e}
MODULE_NAMES = ("np", "numpy")
MAX_ELEMENTS = 1 << 28  # a typo like np.ones((10**9,)) should fail fast, not eat the machine
MAX_BYTES = 1 << 30  # and so should np.ones(4, dtype="S1000000000")


def evaluate(text: str) -> Any:
    """The value of one expression; raises CliError naming what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise CliError(f"expression {text!r} is not valid Python: {e.msg}") from None
    return _eval(tree.body, text, [0])


def _eval(node: ast.AST, text: str, made: list[int]) -> Any:
    # ``made``: bytes of the arrays built so far, so that many calls, each within the caps,
    # cannot add up past them.
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval(e, text, made) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise CliError(f"'**' is not allowed in {text!r}")
        pairs = zip(node.keys, node.values, strict=True)
        return {_eval(k, text, made): _eval(v, text, made) for k, v in pairs}  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _eval(node.operand, text, made)
        if isinstance(operand, (int, float, complex)) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.Attribute) and _is_numpy(node.value):
        return _numpy_name(node.attr, text)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and _is_numpy(node.func.value)):
        return _call(node, text, made)
    raise CliError(
        f"{ast.unparse(node)!r} is not allowed in {text!r}: use Python literals and "
        f"np.{', np.'.join(CONSTRUCTORS)} with literal arguments"
    )


def _is_numpy(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in MODULE_NAMES


def _numpy_name(name: str, text: str) -> Any:
    if name in CONSTANTS:
        return CONSTANTS[name]
    scalar_type = getattr(np, name, None)
    if isinstance(scalar_type, type) and issubclass(scalar_type, np.generic):
        return scalar_type
    raise CliError(f"np.{name} is not allowed in {text!r}: only dtypes and {', '.join(CONSTANTS)}")


def _call(node: ast.Call, text: str, made: list[int]) -> Any:
    name = node.func.attr  # type: ignore[attr-defined]
    constructor = CONSTRUCTORS.get(name)
    if constructor is None:
        raise CliError(f"np.{name}(...) is not allowed in {text!r}; "
                       f"allowed: np.{', np.'.join(CONSTRUCTORS)}")
    if (any(isinstance(a, ast.Starred) for a in node.args)
            or any(k.arg is None for k in node.keywords)):
        raise CliError(f"'*' and '**' arguments are not allowed in {text!r}")
    args = [_eval(a, text, made) for a in node.args]
    kwargs = {str(k.arg): _eval(k.value, text, made) for k in node.keywords}
    _check_size(name, args, kwargs, text)
    try:
        result = constructor(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise CliError(f"np.{name} in {text!r} failed: {e}") from None
    made[0] += int(getattr(result, "nbytes", 0))
    if made[0] > MAX_BYTES:
        raise CliError(f"{text!r} builds more than {MAX_BYTES >> 20} MiB of arrays")
    return result


# Each constructor's parameters as NumPy names them, so a size passed by keyword
# (np.arange(stop=10**10), np.eye(N=10**5)) is bound and capped like a positional one.
def _array(object: Any, dtype: Any = None, *, copy: Any = True, order: Any = "K",
           subok: Any = False, ndmin: Any = 0) -> None: ...
def _asarray(a: Any, dtype: Any = None, order: Any = None, *, copy: Any = None) -> None: ...
def _ones(shape: Any, dtype: Any = None, order: Any = "C") -> None: ...
def _full(shape: Any, fill_value: Any, dtype: Any = None, order: Any = "C") -> None: ...
def _eye(N: Any, M: Any = None, k: Any = 0, dtype: Any = float, order: Any = "C") -> None: ...
def _linspace(start: Any, stop: Any, num: Any = 50, endpoint: Any = True, retstep: Any = False,
              dtype: Any = None, axis: Any = 0) -> None: ...
def _arange(start: Any = None, stop: Any = None, step: Any = None, dtype: Any = None) -> None: ...


_STUBS: dict[str, Callable[..., None]] = {
    "array": _array, "asarray": _asarray, "ones": _ones, "zeros": _ones, "full": _full,
    "eye": _eye, "linspace": _linspace, "arange": _arange,
}
_PARAMETERS = {name: inspect.signature(stub) for name, stub in _STUBS.items()}


def _check_size(name: str, args: list[Any], kwargs: dict[str, Any], text: str) -> None:
    """Refuses a call whose result would hold more than MAX_ELEMENTS elements or MAX_BYTES."""
    try:
        bound = _PARAMETERS[name].bind(*args, **kwargs)
    except TypeError as e:
        raise CliError(f"np.{name} in {text!r}: {e}") from None
    bound.apply_defaults()
    given = bound.arguments
    if name == "arange" and len(args) == 1 and not {"start", "stop"} & kwargs.keys():
        given["start"], given["stop"] = 0, given["start"]  # np.arange(stop): one positional
    count = _element_count(name, given, text)
    try:
        dtype = np.dtype(given["dtype"]) if given["dtype"] is not None else None
    except (TypeError, ValueError) as e:
        raise CliError(f"np.{name} in {text!r}: bad dtype: {e}") from None
    data = given.get("fill_value")
    if name in ("array", "asarray"):
        data = given["object" if name == "array" else "a"]
    itemsize = _itemsize(dtype, data)
    if count > MAX_ELEMENTS or count * itemsize > MAX_BYTES:
        raise CliError(f"np.{name} in {text!r} is too large (more than {MAX_ELEMENTS} elements "
                       f"or {MAX_BYTES >> 20} MiB)")


def _element_count(name: str, given: dict[str, Any], text: str) -> int:
    if name in ("array", "asarray"):
        return _leaves(given["object" if name == "array" else "a"])
    if name in ("ones", "zeros", "full"):
        shape = given["shape"]
        return _product(shape if isinstance(shape, (list, tuple)) else (shape,), name, text)
    if name == "eye":
        n, m = given["N"], given["M"]
        return _product((n, n if m is None else m), name, text)
    if name == "linspace":
        width = max(_leaves(given["start"]), _leaves(given["stop"]))
        return _product((given["num"],), name, text) * width
    start, stop, step = given["start"], given["stop"], given["step"]  # arange
    bounds = [v for v in (start, stop, step) if v is not None]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bounds):
        raise CliError(f"np.arange in {text!r} needs numeric bounds")
    start, stop, step = start or 0, 0 if stop is None else stop, 1 if step is None else step
    if step == 0 or not all(math.isfinite(v) for v in (start, stop, step)):
        return 0  # NumPy raises for these itself
    return max(0, math.ceil((stop - start) / step))


def _product(dims: Any, name: str, text: str) -> int:
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise CliError(f"np.{name} in {text!r} needs whole-number dimensions")
    return math.prod(max(d, 0) for d in dims)


def _leaves(value: Any) -> int:
    """How many elements a nested value holds: literals (bounded by the text) and arrays that
    inner constructor calls made (``np.array([np.zeros(1000000)] ...)``)."""
    if isinstance(value, (list, tuple)):
        return sum(_leaves(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic)):
        return int(np.size(value))
    return 1


def _itemsize(dtype: np.dtype[Any] | None, data: Any) -> int:
    """Bytes per element. A flexible dtype (``"S"``, ``"U"``, or none given) takes its size
    from the data, so one long string among many short ones counts for all of them."""
    if dtype is not None and dtype.itemsize:
        return dtype.itemsize
    longest = max(_lengths(data), default=0)
    return max(8, 4 * longest)


def _lengths(value: Any) -> Iterator[int]:
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _lengths(v)
    elif isinstance(value, (str, bytes)):
        yield len(value)
    elif isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "SU":
        yield value.dtype.itemsize // (4 if value.dtype.kind == "U" else 1)
