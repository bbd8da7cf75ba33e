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
from collections.abc import Callable
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


def evaluate(text: str) -> Any:
    """The value of one expression; raises CliError naming what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise CliError(f"expression {text!r} is not valid Python: {e.msg}") from None
    return _eval(tree.body, text)


def _eval(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval(e, text) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise CliError(f"'**' is not allowed in {text!r}")
        pairs = zip(node.keys, node.values, strict=True)
        return {_eval(k, text): _eval(v, text) for k, v in pairs}  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _eval(node.operand, text)
        if isinstance(operand, (int, float, complex)) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.Attribute) and _is_numpy(node.value):
        return _numpy_name(node.attr, text)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and _is_numpy(node.func.value)):
        return _call(node, text)
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


def _call(node: ast.Call, text: str) -> Any:
    name = node.func.attr  # type: ignore[attr-defined]
    constructor = CONSTRUCTORS.get(name)
    if constructor is None:
        raise CliError(f"np.{name}(...) is not allowed in {text!r}; "
                       f"allowed: np.{', np.'.join(CONSTRUCTORS)}")
    if (any(isinstance(a, ast.Starred) for a in node.args)
            or any(k.arg is None for k in node.keywords)):
        raise CliError(f"'*' and '**' arguments are not allowed in {text!r}")
    args = [_eval(a, text) for a in node.args]
    kwargs = {str(k.arg): _eval(k.value, text) for k in node.keywords}
    _check_size(name, args, kwargs, text)
    try:
        return constructor(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise CliError(f"np.{name} in {text!r} failed: {e}") from None


def _check_size(name: str, args: list[Any], kwargs: dict[str, Any], text: str) -> None:
    shape: Any = None
    if name in ("ones", "zeros", "full"):
        shape = args[0] if args else kwargs.get("shape")
    elif name == "eye" and args:
        shape = (args[0], args[1] if len(args) > 1 and args[1] is not None else args[0])
    elif name == "linspace":
        shape = (args[2] if len(args) > 2 else kwargs.get("num", 50),)
    elif name == "arange" and args and all(isinstance(a, (int, float)) for a in args):
        start, stop = (0, args[0]) if len(args) == 1 else (args[0], args[1])
        step = args[2] if len(args) > 2 else 1
        shape = (max(0, int((stop - start) / step)) if step else 0,)
    if shape is None:
        return
    dims = shape if isinstance(shape, (list, tuple)) else (shape,)
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise CliError(f"np.{name} in {text!r} needs whole-number dimensions")
    if int(np.prod([max(d, 0) for d in dims], dtype=object)) > MAX_ELEMENTS:
        raise CliError(f"np.{name} in {text!r} is too large (more than {MAX_ELEMENTS} elements)")
