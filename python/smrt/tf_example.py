"""Encode serialized ``tf.train.Example`` protos without TensorFlow or protobuf.

For signatures that take a batch of serialized examples (TF Serving classify/regress,
estimator parsing signatures)::

    from smrt import tf_example
    batch = tf_example.encode_batch([{"age": 42, "tags": ["a", "b"]}, {"age": 7, "tags": "c"}])

Each feature value becomes one ``Feature``:

* floats (Python ``float``, NumPy floating) -> ``float_list`` (float32 on the wire);
  ints mixed with floats in a list are promoted to floats, as NumPy does;
* ints (Python ``int``/``bool``, NumPy integer/bool) -> ``int64_list``; values outside
  the int64 range (e.g. large ``uint64``) raise :class:`~smrt.errors.InvalidInputError`;
* ``bytes``/``str`` (``str`` is encoded UTF-8) -> ``bytes_list``; mixing them with numbers
  raises :class:`~smrt.errors.InputTypeError`.

A value may be a list, tuple or NumPy array of any shape (flattened in C order), or a
single scalar (a one-element list). A NumPy array's dtype decides its list type, so an
empty typed array such as ``np.array([], np.float32)`` gives an empty list of that type.
An empty Python list (or empty object array) has no type and raises
:class:`~smrt.errors.InputTypeError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import InputTypeError, InvalidInputError

__all__ = ["FeatureValue", "encode", "encode_batch", "encode_columns"]

FeatureValue = bytes | str | int | float | bool | np.generic | np.ndarray | Sequence[Any]
"""What :func:`encode` accepts as one feature's value."""

_BYTES, _FLOAT, _INT = 1, 2, 3  # Feature's oneof field numbers
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _packed_varints(values: np.ndarray) -> bytes:
    """Varint-encode int64 values (negatives as 10-byte two's complement), vectorized."""
    u = values.astype(np.int64).ravel().view(np.uint64)
    if u.size < 32:  # a Python loop beats NumPy's per-call overhead on short lists
        return b"".join(_varint(v) for v in u.tolist())
    if u.max() < 0x80:  # common case: small non-negative ids and flags
        return u.astype(np.uint8).tobytes()
    sizes = np.ones(u.shape, np.intp)  # bytes per value: one per started 7-bit group
    for k in range(1, 10):
        sizes += u >= np.uint64(1 << 7 * k)
    starts = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), np.uint8)
    for k in range(int(sizes.max())):
        m = sizes > k
        group = (u[m] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (sizes[m] > k + 1).astype(np.uint64) << np.uint64(7)  # continuation bit
        out[starts[m] + k] = group | more
    return out.tobytes()


def _numeric_feature(field: int, packed: bytes) -> bytes:
    return _field(field, _field(1, packed) if packed else b"")


def _utf8(text: str, key: str) -> bytes:
    """`text` in UTF-8; a lone surrogate (which UTF-8 cannot hold) names feature `key`."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInputError(f"feature {key!r}: {text!r} is not valid Unicode ({e.reason} "
                                f"at index {e.start}); pass bytes for binary data") from e


def _bytes_feature(key: str, values: Iterable[bytes | str]) -> bytes:
    items = (_utf8(v, key) if isinstance(v, str) else bytes(v) for v in values)
    return _field(_BYTES, b"".join(_field(1, v) for v in items))


def _array_feature(key: str, arr: np.ndarray) -> bytes:
    kind = arr.dtype.kind
    if kind == "f":
        return _numeric_feature(_FLOAT, arr.astype("<f4").tobytes())
    if kind in "iub":
        if kind == "u" and arr.size and int(arr.max()) > _INT64_MAX:
            raise InvalidInputError(f"feature {key!r}: {int(arr.max())} is out of int64 range")
        return _numeric_feature(_INT, _packed_varints(arr))
    if kind in "SU":
        return _bytes_feature(key, arr.ravel().tolist())
    if kind == "O":
        return _list_feature(key, _flatten(arr.ravel().tolist(), []))
    raise InputTypeError(f"feature {key!r}: unsupported dtype {arr.dtype} (shape {arr.shape})")


def _flatten(values: Iterable[Any], out: list[Any]) -> list[Any]:
    for v in values:
        if isinstance(v, (list, tuple)):
            _flatten(v, out)
        elif isinstance(v, np.ndarray):
            out.extend(v.ravel().tolist())
        else:
            out.append(v)
    return out


def _scalar_kind(v: Any) -> int | None:
    if isinstance(v, (bytes, str)):
        return _BYTES
    if isinstance(v, (int, np.integer, np.bool_)):
        return _INT
    if isinstance(v, (float, np.floating)):
        return _FLOAT
    return None


def _type_error(key: str, value: Any) -> InputTypeError:
    return InputTypeError(f"feature {key!r}: cannot encode a value of type {type(value).__name__}")


def _list_feature(key: str, values: list[Any]) -> bytes:
    kinds = set()
    for v in values:
        kind = _scalar_kind(v)
        if kind is None:
            raise _type_error(key, v)
        kinds.add(kind)
    if not kinds:
        raise InputTypeError(
            f"feature {key!r}: cannot infer the type of an empty list; "
            "pass a NumPy array with a dtype, e.g. np.array([], np.float32)"
        )
    if _BYTES in kinds:
        if len(kinds) > 1:
            types = ", ".join(sorted({type(v).__name__ for v in values}))
            raise InputTypeError(f"feature {key!r}: mixes bytes/str and numbers ({types})")
        return _bytes_feature(key, values)
    if _FLOAT in kinds:
        try:
            return _array_feature(key, np.array(values, dtype=np.float64))
        except OverflowError:
            raise InvalidInputError(f"feature {key!r}: an int is too large for a float") from None
    ints = [int(v) for v in values]
    bad = [v for v in ints if not _INT64_MIN <= v <= _INT64_MAX]
    if bad:
        raise InvalidInputError(f"feature {key!r}: {bad[0]} is out of int64 range")
    return _array_feature(key, np.array(ints, dtype=np.int64))


def _feature(key: str, value: Any) -> bytes:
    """The serialized ``Feature`` for one value."""
    if isinstance(value, np.ndarray):
        return _array_feature(key, value)
    if isinstance(value, np.generic):
        return _array_feature(key, np.asarray(value))
    if isinstance(value, (list, tuple)):
        return _list_feature(key, _flatten(value, []))
    if _scalar_kind(value) is not None:
        return _list_feature(key, [value])
    raise _type_error(key, value)


def _check_keys(mapping: Any, what: str) -> None:
    if not isinstance(mapping, Mapping):
        raise InputTypeError(f"{what} must be a mapping, got {type(mapping).__name__}")
    for key in mapping:
        if not isinstance(key, str):
            raise InvalidInputError(f"feature keys must be str, got {type(key).__name__} {key!r}")


def encode(features: Mapping[str, FeatureValue]) -> bytes:
    """Serialize one ``tf.train.Example`` holding ``features``.

    Keys must be ``str``; values are encoded as described in this module's docstring.
    Map entries are written sorted by key (by UTF-8 bytes, like protobuf's deterministic
    serialization in C++), so equal inputs give equal bytes.

    Raises:
        InputTypeError: ``features`` is not a mapping, or a value has an unsupported,
            mixed or (empty list) unknown type.
        InvalidInputError: a key is not a ``str``, a key or string is not valid Unicode (a
            lone surrogate), or an integer is outside the int64 range.
    """
    _check_keys(features, "features")
    entries = b"".join(
        _field(1, _field(1, _utf8(key, key)) + _field(2, _feature(key, features[key])))
        for key in sorted(features)
    )
    return _field(1, entries)  # Example.features holding the Features.feature map entries


def encode_batch(rows: Iterable[Mapping[str, FeatureValue]]) -> np.ndarray:
    """Serialize one ``tf.train.Example`` per row, as :func:`encode` does.

    Returns a 1-D object array of ``bytes``, ready to feed to a string input such as
    ``examples``. Errors are those of :func:`encode`, with the row index prepended.
    """
    encoded = []
    for i, row in enumerate(rows):
        try:
            encoded.append(encode(row))
        except (InputTypeError, InvalidInputError) as exc:
            raise type(exc)(f"row {i}: {exc}") from exc
    out = np.empty(len(encoded), dtype=object)
    out[:] = encoded
    return out


def encode_columns(
    columns: Mapping[str, Sequence[Any]], batch_size: int | None = None
) -> np.ndarray:
    """Serialize a batch given by column: row ``i`` is ``{key: column[i]}`` for each column.

    Each column is a list, tuple or NumPy array with one entry per row (for an array, along
    its first axis); an entry is any value :func:`encode` accepts. ``batch_size``, if given,
    must equal the columns' length; it is required when there are no columns.
    Returns a 1-D object array of ``bytes``, like :func:`encode_batch`.

    Raises:
        InputTypeError: a column is not a list, tuple or array with a first axis, or as
            for :func:`encode`.
        InvalidInputError: column lengths differ from each other or from ``batch_size``,
            or as for :func:`encode`.
    """
    _check_keys(columns, "columns")
    lengths = {}
    for key, column in columns.items():
        if not isinstance(column, (list, tuple, np.ndarray)) or getattr(column, "ndim", 1) == 0:
            raise InputTypeError(
                f"feature {key!r}: a column must be a list, tuple or array with one entry "
                f"per row, got {type(column).__name__}"
            )
        lengths[key] = len(column)
    if batch_size is None:
        if not lengths:
            raise InvalidInputError("encode_columns needs batch_size when there are no columns")
        batch_size = next(iter(lengths.values()))
    for key, n in lengths.items():
        if n != batch_size:
            raise InvalidInputError(
                f"feature {key!r}: column has {n} entries, expected {batch_size} (one per "
                f"row); column lengths: {lengths}"
            )
    rows = ({key: column[i] for key, column in columns.items()} for i in range(batch_size))
    return encode_batch(rows)
