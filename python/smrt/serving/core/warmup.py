"""Model warmup: TF Serving's ``assets.extra/tf_serving_warmup_requests``.

TensorFlow initializes much of a session lazily (graph optimization, kernels, memory pools), so
the first requests to a freshly loaded version are slow. A SavedModel may carry sample requests
(a TFRecord file of ``PredictionLog``: predict, classify, regress and multi-inference logs);
when a version loads, :func:`warm_up` replays each ``iterations`` times before the version is
reported AVAILABLE, as TF Serving does (``--enable_model_warmup``,
``--num_request_iterations_for_warmup``). A record that cannot be read or run fails the load,
with a message naming the record. At most :data:`MAX_RECORDS` records, as in TF Serving.

The records are decoded by smrt's own wire reader (``smrt._core.decode_*``), never by
TensorFlow's Python protos: the server does not import TensorFlow.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Iterator
from typing import BinaryIO

from smrt import _core
from smrt import errors as smrt_errors

from .inference import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    check_examples_signature,
    output_fetch,
    signature_for,
)
from .versions import ServedVersion

log = logging.getLogger("smrt.serve")

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000
"""TF Serving's WarmupConsts::kMaxNumRecords."""

MAX_DECODED_BYTES = 1 << 30
"""What one warmup record may decode to (the file is the model's, not a client's)."""


def warm_up(served: ServedVersion, iterations: int = 1) -> int:
    """Replays the version's warmup requests, each ``iterations`` times; returns how many
    records there were (0 without a warmup file). Raises the record's error, prefixed with
    which record of which file failed."""
    path = os.path.join(served.model.path, WARMUP_FILE)
    if not os.path.isfile(path):
        return 0
    start = time.perf_counter()
    count = 0
    with open(path, "rb") as f:
        for index, record in enumerate(read_records(f, path)):
            if index >= MAX_RECORDS:
                raise smrt_errors.InvalidArgumentError(
                    f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
            try:
                for _ in range(max(1, iterations)):
                    _replay(served, record)
            except smrt_errors.Error as e:
                raise type(e)(f"warmup record {index} of {path}: {e}") from None
            except Exception as e:  # e.g. a MemoryError: still the record's fault
                raise smrt_errors.InvalidArgumentError(
                    f"warmup record {index} of {path}: {type(e).__name__}: {e}") from None
            count += 1
    log.info("version %d: %d warmup records replayed %d time(s) in %.3f s from %s",
             served.version, count, max(1, iterations), time.perf_counter() - start, path)
    return count


def read_records(f: BinaryIO, path: str) -> Iterator[bytes]:
    """TFRecord framing: length (uint64, little-endian), masked CRC-32C of the length, data,
    masked CRC-32C of the data. Both checksums are checked; a corrupt or truncated file is a
    DataLossError naming the byte it failed at."""
    size = f.seek(0, os.SEEK_END)  # a header's length is checked against it before reading
    offset = f.seek(0)
    while True:
        header = f.read(12)
        if not header:
            return
        if len(header) < 12:
            raise _data_loss(path, offset, "truncated record header")
        (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
        if _core.masked_crc32c(header[:8]) != crc:
            raise _data_loss(path, offset, "corrupted record length (checksum mismatch)")
        if length > size - offset - 16:  # reading it would allocate `length` bytes first
            raise _data_loss(path, offset, f"truncated record (its header says {length} bytes)")
        data = f.read(length)
        footer = f.read(4)
        if len(data) < length or len(footer) < 4:
            raise _data_loss(path, offset, "truncated record")
        if _core.masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            raise _data_loss(path, offset, "corrupted record (checksum mismatch)")
        yield data
        offset += 16 + length


def _data_loss(path: str, offset: int, what: str) -> smrt_errors.DataLossError:
    return smrt_errors.DataLossError(
        f"{path}: {what} at byte {offset}. Please verify your warmup data is in TFRecord "
        "format.")


def _replay(served: ServedVersion, record: bytes) -> None:
    kind, request = _core.decode_prediction_log(record)
    if kind == "predict":
        spec, inputs, output_filter = _core.decode_predict_request(request, MAX_DECODED_BYTES)
        signature = signature_for(served, spec[3])
        signature.run(inputs, fetch=output_fetch(signature, output_filter))
    elif kind in ("classify", "regress", "multi_inference"):
        tasks, examples = _core.decode_examples_request(request, kind == "multi_inference",
                                                        MAX_DECODED_BYTES)
        for spec, method in tasks:
            api_name = kind if kind != "multi_inference" else _task_api(method)
            signature = signature_for(served, spec[3])
            check_examples_signature(signature, api_name)
            signature.run({"inputs": examples})
    else:
        raise smrt_errors.InvalidArgumentError(
            f"Unsupported log_type for warmup: {kind or 'none'} (predict, classify, regress "
            "and multi_inference logs are replayed)")


def _task_api(method: str) -> str:
    if method == CLASSIFY_METHOD:
        return "classify"
    if method == REGRESS_METHOD:
        return "regress"
    raise smrt_errors.InvalidArgumentError(f"Unsupported signature method_name: {method}")
