"""A tiny protobuf wire-format encoder/decoder for the tests: enough to take saved_model.pb
apart, edit it and put it back together without TensorFlow or a protobuf runtime."""

from __future__ import annotations

from collections.abc import Callable, Sequence

Field = tuple[int, int, bytes]
"""(field number, wire type, raw value): a payload for length-delimited fields, the encoded
bytes otherwise."""


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def read_varint(data: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7


def fields(message: bytes) -> list[Field]:
    """The top-level fields of a message, in order."""
    out, i = [], 0
    while i < len(message):
        tag, i = read_varint(message, i)
        number, wire = tag >> 3, tag & 7
        if wire == 2:
            size, i = read_varint(message, i)
            out.append((number, wire, message[i:i + size]))
            i += size
        elif wire == 0:
            start = i
            _, i = read_varint(message, i)
            out.append((number, wire, message[start:i]))
        else:
            size = 8 if wire == 1 else 4
            out.append((number, wire, message[i:i + size]))
            i += size
    return out


def join(parts: Sequence[Field]) -> bytes:
    return b"".join(field(n, v) if w == 2 else varint(n << 3 | w) + v for n, w, v in parts)


def edit(message: bytes, path: Sequence[int], change: Callable[[bytes], list[bytes]]) -> bytes:
    """``message`` with every message field at ``path`` (field numbers from the top, e.g.
    ``(2, 2)`` = each MetaGraphDef's graph_def) replaced by the occurrences ``change`` returns
    for its payload, in its place."""
    out: list[Field] = []
    for number, wire, value in fields(message):
        if number != path[0] or wire != 2:
            out.append((number, wire, value))
        elif len(path) == 1:
            out += [(number, wire, payload) for payload in change(value)]
        else:
            out.append((number, wire, edit(value, path[1:], change)))
    return join(out)


def halves(payload: bytes) -> list[bytes]:
    """A message's fields split into two messages that merge back into it."""
    parts = fields(payload)
    return [join(parts[:len(parts) // 2]), join(parts[len(parts) // 2:])]
