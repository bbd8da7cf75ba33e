"""Compressed request bodies (``Content-Encoding: gzip`` or ``deflate``), decoded with a
bound: a few kilobytes of gzip can inflate to gigabytes, so decoding stops one byte past the
size limit instead of inflating everything first (as aiohttp's own decoding would).
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable
from typing import Any

from aiohttp import web_protocol

from smrt.serving.core.errors import (
    BadRequestError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)

ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
             "deflate": zlib.MAX_WBITS}
"""Content-Encoding -> zlib's wbits (deflate is zlib-wrapped; raw deflate is tried too)."""


def server_options() -> dict[str, Any]:
    """aiohttp server options that hand bodies over undecoded, where aiohttp has the option
    (empty if it has not: then aiohttp decodes, without a bound)."""
    parameters = inspect.signature(web_protocol.RequestHandler.__init__).parameters
    return {"auto_decompress": False} if "auto_decompress" in parameters else {}


def encoding_of(header: str | None) -> str | None:
    """The body's encoding to undo (None for none); UnsupportedMediaTypeError (415) for one
    the server does not decode."""
    encoding = (header or "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding not in ENCODINGS:
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {header!r} is not supported (gzip, deflate or none)")
    return encoding


CHUNK = 1 << 20
"""Inflated bytes made per step: a body past the limit is refused after one more step."""


def decode(body: bytes, encoding: str, limit: int,
           account: Callable[[int], None] = lambda size: None) -> bytes:
    """``body`` inflated; RequestTooLargeError (413) past ``limit`` bytes, BadRequestError
    (400) if it is not valid ``encoding`` data. Inflates a chunk at a time, so refusing a bomb
    costs the limit plus a chunk, not what the bomb would inflate to; ``account(n)`` is told
    of each chunk's size as it is made (and may refuse it by raising)."""
    try:
        return _inflate(body, ENCODINGS[encoding], limit, account)
    except zlib.error as e:
        if encoding != "deflate":
            raise BadRequestError(f"the request body is not valid {encoding} data: {e}") from None
    try:  # some clients send raw deflate, without zlib's header
        return _inflate(body, -zlib.MAX_WBITS, limit, account)
    except zlib.error as e:
        raise BadRequestError(f"the request body is not valid deflate data: {e}") from None


def _inflate(body: bytes, wbits: int, limit: int, account: Callable[[int], None]) -> bytes:
    inflater = zlib.decompressobj(wbits)
    chunks: list[bytes] = []  # not one growing buffer: its reallocations could copy it whole
    size = 0
    pending = body
    while True:
        chunk = inflater.decompress(pending, CHUNK)
        account(len(chunk))
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(
                f"the request body inflates to more than the limit of {limit} bytes")
        pending = inflater.unconsumed_tail
        if inflater.eof or (not pending and len(chunk) < CHUNK):
            break
    if not inflater.eof:
        raise BadRequestError("the request body is truncated compressed data")
    if inflater.unused_data:
        raise BadRequestError("the request body has data after its compressed stream")
    return b"".join(chunks)
