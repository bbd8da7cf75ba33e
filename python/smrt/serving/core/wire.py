"""Writing protobuf's wire format for the small messages the server builds in Python (config
protos, gRPC status and metadata replies). Tensors are encoded in C++
(``smrt._core.encode_*``). No protobuf runtime: the server holds libtensorflow, which carries
its own, and never imports TensorFlow's Python package."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """A varint; negative numbers as their 64-bit two's complement (10 bytes), as protobuf
    writes int32/int64/enum fields."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint_field(number: int, value: int) -> bytes:
    """A varint field (int32, int64, bool, enum)."""
    return varint(number << 3) + varint(value)


def bytes_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: bytes, a UTF-8 string, or an embedded message."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def string_field(number: int, text: str) -> bytes:
    return bytes_field(number, text.encode("utf-8"))


def double_field(number: int, value: float) -> bytes:
    import struct

    return varint(number << 3 | 1) + struct.pack("<d", value)


def float_field(number: int, value: float) -> bytes:
    import struct

    return varint(number << 3 | 5) + struct.pack("<f", value)
