"""JSON <-> NumPy for TF Serving's REST API: predict requests in, tensors out.

Inputs (``instances`` rows or ``inputs`` columns) become arrays of the signature's dtypes:

* numbers: JSON integers fit any numeric tensor (range-checked); numbers with a fraction or
  exponent only floating-point ones; ``true``/``false`` only bool tensors; ``NaN``,
  ``Infinity`` and ``-Infinity`` are accepted, as TF Serving does;
* strings: a JSON string is its UTF-8 bytes, ``{"b64": "..."}`` the decoded bytes;
* nested lists must be rectangular; their nesting is the tensor's shape.

Outputs are written as TF Serving writes them: nested lists, strings as text, and
``{"b64": "..."}`` for outputs whose name ends in ``_bytes`` (and for any string that is
not valid UTF-8, which JSON cannot carry as text).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import orjson

from smrt import _core
from smrt.model import Signature
from smrt.saved_model import TensorSpec
from smrt.serving.core.errors import BadRequestError

Json = Any
"""A value as ``json.loads`` returns it."""

MAX_RANK = 32
"""Deeper nesting is refused (NumPy arrays have at most 64 dimensions)."""

_UNSUPPORTED = {"complex64", "complex128", "resource", "variant", "qint8", "quint8", "qint16",
                "quint16", "qint32"}


def loads(body: bytes) -> dict[str, Json]:
    """Parses a request body that must be a JSON object (NaN and Infinity allowed)."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # the standard parser takes what orjson does not: NaN, Infinity, huge integers
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequestError(f"the request body is not valid JSON: {e}") from None
        except RecursionError:
            raise BadRequestError("the request body nests too deeply") from None
    if not isinstance(request, dict):
        raise BadRequestError("the request body must be a JSON object")
    return request


def dumps(reply: Json) -> bytes:
    """Serializes a reply without non-finite floats (see :func:`dumps_tensors` for those)."""
    return orjson.dumps(reply, option=orjson.OPT_SERIALIZE_NUMPY)


# --- requests -------------------------------------------------------------------------------


def is_b64(value: Json) -> bool:
    """``{"b64": "..."}``: binary data, base64-encoded."""
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def decode_b64(value: dict[str, Json], where: str) -> bytes:
    text = value["b64"]
    if not isinstance(text, str):
        raise BadRequestError(f"{where}: the value of 'b64' must be a base64 string")
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequestError(f"{where}: invalid base64 ({e})") from None


_FAST_DTYPES = {"float16", "float32", "float64"}
"""Input dtypes the native fast path reads (JSON numbers are doubles, narrowed as below)."""


def parse_predict(body: bytes, signature_for: Callable[[dict[str, Json]], Signature],
                  ) -> tuple[Signature, dict[str, np.ndarray], bool]:
    """A predict body's signature (``signature_for(request)``), input arrays and format.

    A body that is only ``instances`` or ``inputs`` (and maybe ``signature_name``) holding a
    rectangular nest of numbers, for a signature with one floating-point input, is read
    natively (``_core.parse_numeric_predict``): no Python object per number. Its arrays are
    exactly the general path's; anything else takes the general path, with its errors.
    """
    fast = _core.parse_numeric_predict(body, MAX_RANK)
    if fast is not None:
        field, name, values = fast
        signature = signature_for({} if name is None else {"signature_name": name})
        if len(signature.inputs) == 1:
            ((key, spec),) = signature.inputs.items()
            if spec.dtype in _FAST_DTYPES:
                return signature, {key: _narrow(values, spec, f"input '{key}'")}, \
                    field == "instances"
    request = loads(body)
    signature = signature_for(request)
    inputs, rows = predict_inputs(request, signature.inputs)
    return signature, inputs, rows


def predict_inputs(request: dict[str, Json], inputs: Mapping[str, TensorSpec],
                   ) -> tuple[dict[str, np.ndarray], bool]:
    """The arrays a predict request feeds, by input key, and whether it used the row format."""
    has_rows, has_columns = "instances" in request, "inputs" in request
    if has_rows == has_columns:
        raise BadRequestError("a predict request needs either 'instances' (row format) or "
                              "'inputs' (columnar format), and not both")
    unknown = sorted(request.keys() - {"instances", "inputs", "signature_name"})
    if unknown:
        raise BadRequestError(f"unknown field(s) in the request: {', '.join(unknown)}")
    if has_rows:
        return _rows(request["instances"], inputs), True
    return _columns(request["inputs"], inputs), False


def _rows(instances: Json, inputs: Mapping[str, TensorSpec]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise BadRequestError("'instances' must be a list, one item per instance")
    if not instances:
        raise BadRequestError("'instances' is empty")
    named = [isinstance(x, dict) and not is_b64(x) for x in instances]
    if any(named):
        if not all(named):
            raise BadRequestError("'instances' mixes objects (named inputs) and plain values")
        for i, instance in enumerate(instances):
            _check_keys(instance.keys(), inputs, f"instances[{i}]")
        return {key: to_array([x[key] for x in instances], spec, f"input '{key}'")
                for key, spec in inputs.items()}
    key, spec = _only_input(inputs, "instances")
    return {key: to_array(instances, spec, f"input '{key}'")}


def _columns(columns: Json, inputs: Mapping[str, TensorSpec]) -> dict[str, np.ndarray]:
    if isinstance(columns, dict) and not is_b64(columns):
        _check_keys(columns.keys(), inputs, "'inputs'")
        return {key: to_array(columns[key], spec, f"input '{key}'")
                for key, spec in inputs.items()}
    key, spec = _only_input(inputs, "inputs")
    return {key: to_array(columns, spec, f"input '{key}'")}


_NAMED_FORM = {"instances": "a list of objects", "inputs": "an object"}


def _only_input(inputs: Mapping[str, TensorSpec], field: str) -> tuple[str, TensorSpec]:
    if len(inputs) != 1:
        raise BadRequestError(
            f"the signature has {len(inputs)} inputs ({', '.join(sorted(inputs))}); "
            f"'{field}' must name them ({_NAMED_FORM[field]} keyed by input name)")
    return next(iter(inputs.items()))


def _check_keys(given: Any, inputs: Mapping[str, TensorSpec], where: str) -> None:
    missing = sorted(inputs.keys() - given)
    if missing:
        raise BadRequestError(f"{where}: missing input(s) {', '.join(missing)}")
    unknown = sorted(given - inputs.keys())
    if unknown:
        raise BadRequestError(f"{where}: unknown input(s) {', '.join(unknown)}; the signature "
                              f"takes {', '.join(sorted(inputs))}")


def to_array(value: Json, spec: TensorSpec, where: str) -> np.ndarray:
    """One tensor's JSON value as an array of ``spec``'s dtype.

    The nested lists are checked (rectangular, and every leaf of a kind the dtype takes)
    before any array is built, so memory stays proportional to the body: NumPy never sees,
    say, a long string among numbers (it would make a fixed-width ``<U`` array as wide as
    the longest string for every element).
    """
    if spec.dtype in _UNSUPPORTED:
        raise BadRequestError(f"{where}: {spec.dtype} tensors cannot be sent as JSON")
    shape, leaves, kinds = _flatten(value, where)
    if spec.dtype == "string":
        return _string_array(shape, leaves, kinds, where)
    target = spec.numpy_dtype
    if not kinds:  # no elements
        return np.zeros(shape, target)
    if not kinds <= {int, float, bool}:
        if kinds <= {str, int, float}:
            raise BadRequestError(f"{where}: got strings for a {spec.dtype} tensor")
        raise BadRequestError(f"{where}: expected {spec.dtype} values, got a mix of types, "
                              "null or objects")
    if target.kind == "b":
        if kinds != {bool}:
            raise BadRequestError(f"{where}: got numbers for a bool tensor (use true/false)")
        return np.array(leaves, dtype=bool).reshape(shape)
    if bool in kinds:
        raise BadRequestError(f"{where}: got true/false for a {spec.dtype} tensor")
    if target.kind in "iu":
        if float in kinds:
            raise BadRequestError(f"{where}: got a number with a fraction or exponent for a "
                                  f"{spec.dtype} tensor (expects whole numbers)")
        return _integers(leaves, target, spec.dtype, where).reshape(shape)
    try:
        array = np.array(leaves, dtype=np.float64)
    except OverflowError:
        raise BadRequestError(f"{where}: a value is out of range for {spec.dtype}") from None
    return _narrow(array.reshape(shape), spec, where)


def _narrow(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """float64 values as ``spec``'s floating-point dtype; one that overflows it is refused."""
    target = spec.numpy_dtype
    if target == array.dtype:
        return array
    with np.errstate(over="ignore"):
        narrowed = array.astype(target)
    if np.isinf(narrowed).sum() != np.isinf(array).sum():
        raise BadRequestError(f"{where}: a value is out of range for {spec.dtype}")
    return narrowed


# The leaf kinds _core.flatten_json reports, one bit each.
_KINDS = ((1, float), (2, int), (4, bool), (8, str), (16, dict), (32, type(None)), (64, object))


def _flatten(value: Json, where: str) -> tuple[list[int], list[Json], set[type]]:
    """``value``'s shape, its leaves in C order, and the leaves' Python types.

    Level by level, in C (``_core.flatten_json``): every list of a level must have the same
    length, and a level is either all lists or all leaves. The work and memory are
    proportional to the number of JSON values, which the body's size bounds.
    """
    try:
        shape, leaves, mask = _core.flatten_json(value, MAX_RANK)
    except ValueError as e:
        raise BadRequestError(f"{where}: {e}") from None
    return list(shape), leaves, {kind for bit, kind in _KINDS if mask & bit}


def _integers(leaves: list[int], target: np.dtype[Any], dtype: str, where: str) -> np.ndarray:
    info = np.iinfo(target)
    low, high = min(leaves), max(leaves)  # Python ints: no overflow, whatever their size
    if low < info.min or high > info.max:
        raise BadRequestError(f"{where}: a value is out of range for {dtype} "
                              f"[{info.min}, {info.max}]")
    return np.array(leaves, dtype=target)


def _string_array(shape: list[int], leaves: list[Json], kinds: set[type],
                  where: str) -> np.ndarray:
    """Strings and ``{"b64"}`` objects -> object array of bytes."""
    if not kinds <= {str, dict}:
        got = next(k for k in kinds if k not in (str, dict))
        name = "null" if got is type(None) else got.__name__
        raise BadRequestError(f"{where}: expected strings (or {{\"b64\": ...}} objects) "
                              f"for a string tensor, got {name}")
    flat: list[bytes] = []
    for node in leaves:
        if isinstance(node, str):
            flat.append(node.encode("utf-8", "surrogatepass"))
        elif is_b64(node):
            flat.append(decode_b64(node, where))
        else:
            raise BadRequestError(f"{where}: expected strings (or {{\"b64\": ...}} objects) "
                                  "for a string tensor, got an object other than {\"b64\": ...}")
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape)


# --- replies ---------------------------------------------------------------------------------
# Arrays go to orjson as they are (fast, and it prints float32 as the shortest decimal that
# round-trips, as TF Serving does). orjson writes NaN and infinities as null, so a reply with
# any of those is written by the json module instead, with the NaN/Infinity tokens.


def dumps_tensors(build: Callable[[Callable[[np.ndarray, str], Json]], Json],
                  arrays: Iterable[np.ndarray]) -> bytes:
    """Serializes ``build(convert)``, a reply holding ``convert(array, name)`` for each of
    ``arrays``, choosing the encoder by whether any array holds NaN or an infinity."""
    if any(_non_finite(a) for a in arrays):
        return json.dumps(build(_as_lists), separators=(",", ":"), allow_nan=True).encode()
    return orjson.dumps(build(_as_arrays), option=orjson.OPT_SERIALIZE_NUMPY)


def _non_finite(array: np.ndarray) -> bool:
    if array.dtype.kind == "V":  # ml_dtypes' bfloat16
        array = array.astype(np.float32)
    return array.dtype.kind == "f" and array.size > 0 and not bool(np.isfinite(array).all())


def _as_arrays(array: np.ndarray, name: str) -> Json:
    """For orjson: numbers stay NumPy arrays (or scalars)."""
    return _to_json(array, name, lists=False)


def _as_lists(array: np.ndarray, name: str) -> Json:
    """For the json module: numbers become Python lists."""
    return _to_json(array, name, lists=True)


def _to_json(array: np.ndarray, name: str, lists: bool) -> Json:
    kind = array.dtype.kind
    if kind == "O":
        return _strings_to_json(array, name)
    if kind == "c":
        raise BadRequestError(f"output '{name}': {array.dtype} tensors cannot be written as JSON")
    if lists:
        return (shortest_floats(array) if kind in "fV" else array).tolist()
    if kind == "V" or array.dtype == np.float16:  # orjson takes float32/64 only
        array = array.astype(np.float32)
    return array[()] if array.ndim == 0 else np.ascontiguousarray(array)


def _strings_to_json(array: np.ndarray, name: str) -> Json:
    encode = _b64 if name.endswith("_bytes") else _text
    if array.ndim == 0:
        return encode(array.item())
    return np.frompyfunc(encode, 1, 1)(array).tolist()


def shortest_floats(array: np.ndarray) -> np.ndarray:
    """Float64 values that print (``repr``) as the shortest decimal that round-trips the
    input's own precision, as TF Serving prints them: float32 0.1 as ``0.1``, not as
    ``0.10000000149011612``. float64 stays as it is. Slow (Dragon4 per element): only for
    replies with NaN or infinities."""
    if array.dtype == np.float64:
        return array
    return array.astype(np.float32).astype(str).astype(np.float64)


def _b64(value: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(value).decode("ascii")}


def _text(value: bytes) -> str | dict[str, str]:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return _b64(value)


def predict_body(outputs: Mapping[str, np.ndarray], rows: bool) -> bytes:
    """``{"predictions": ...}`` for a row-format request, ``{"outputs": ...}`` for columnar.

    A single output is written without its name; several as one object per row (row format,
    which needs every output to have the same first dimension) or an object by name.
    """
    names = sorted(outputs)
    if rows and len(names) > 1:
        batch = {outputs[n].shape[0] if outputs[n].ndim else None for n in names}
        if len(batch) != 1 or None in batch:
            sizes = ", ".join(f"{n}: {list(outputs[n].shape)}" for n in names)
            raise BadRequestError(
                "the outputs do not share a first (batch) dimension, so they cannot be written "
                f"as rows ({sizes}); send the request in columnar format ('inputs')")

    def build(convert: Callable[[np.ndarray, str], Json]) -> Json:
        values = [convert(outputs[n], n) for n in names]
        key = "predictions" if rows else "outputs"
        if len(names) == 1:
            return {key: values[0]}
        if not rows:
            return {key: dict(zip(names, values, strict=True))}
        return {key: [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]}

    return dumps_tensors(build, outputs.values())
