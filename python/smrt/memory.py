"""64-byte-aligned NumPy arrays, which TensorFlow takes without copying.

TensorFlow's C API copies any input whose data is not aligned to ``TF_TensorDefaultAlignment()``
(64 bytes), and NumPy's default allocator returns 16-byte-aligned memory for most arrays. Arrays
from :func:`empty`, :func:`zeros`, :func:`aligned`, or made inside :func:`aligned_allocation`,
are fed in place; any other input costs exactly one copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _core

ALIGNMENT: int = _core.ALIGNMENT
_HANDLER = _core.aligned_handler()


@contextlib.contextmanager
def aligned_allocation() -> Iterator[None]:
    """Within this block, every NumPy array allocated (in this thread or context) is 64-byte
    aligned. Arrays keep their allocator after the block ends, so they may outlive it."""
    previous = _core.set_handler(_HANDLER)
    try:
        yield
    finally:
        _core.set_handler(previous)


def is_aligned(array: np.ndarray) -> bool:
    """True if TensorFlow can take ``array`` without a copy: C-contiguous, native byte order
    and 64-byte aligned."""
    return (bool(array.flags.c_contiguous) and array.dtype.isnative
            and array.ctypes.data % ALIGNMENT == 0)


def empty(shape: int | tuple[int, ...], dtype: DTypeLike = float) -> np.ndarray:
    """Like ``numpy.empty``, 64-byte aligned."""
    with aligned_allocation():
        return np.empty(shape, dtype)


def zeros(shape: int | tuple[int, ...], dtype: DTypeLike = float) -> np.ndarray:
    """Like ``numpy.zeros``, 64-byte aligned."""
    with aligned_allocation():
        return np.zeros(shape, dtype)


def aligned(array: ArrayLike, dtype: DTypeLike | None = None) -> np.ndarray:
    """``array`` itself if it is already aligned and C-contiguous (and of ``dtype``), else an
    aligned C-contiguous copy."""
    source: Any = np.asarray(array, dtype=dtype)
    if is_aligned(source):
        return source  # type: ignore[no-any-return]
    out = empty(source.shape, source.dtype.newbyteorder("="))
    np.copyto(out, source)
    return out
