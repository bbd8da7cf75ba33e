"""TF Serving's gRPC replies built as protobuf wire bytes: model status, metadata
(``Any(SignatureDefMap)``), classification, regression and multi-inference results. Predict
replies carry tensors and are encoded in C++ (``smrt._core.encode_predict_response``).

Field numbers are those of tensorflow_serving/apis/*.proto and tensorflow/core/protobuf/
meta_graph.proto, which the official ``tensorflow-serving-api`` client decodes."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from smrt import _core
from smrt.saved_model import SignatureInfo, TensorSpec
from smrt.serving.core.inference import classification_outputs
from smrt.serving.core.wire import bytes_field, float_field, string_field, varint_field

STATES = {"START": 10, "LOADING": 20, "AVAILABLE": 30, "UNLOADING": 40, "END": 50}
"""ModelVersionStatus.State values."""

SIGNATURE_DEF_MAP_TYPE = "type.googleapis.com/tensorflow.serving.SignatureDefMap"

_DTYPES = {_core.dtype_name(code): code for code in range(1, 24)}


def model_spec(name: str, version: int | None, signature_name: str = "") -> bytes:
    """ModelSpec{name = 1, version = 2 (Int64Value{value = 1}), signature_name = 3}."""
    body = string_field(1, name) if name else b""
    if version is not None:
        body += bytes_field(2, varint_field(1, version) if version else b"")
    if signature_name:
        body += string_field(3, signature_name)
    return body


def status_response(statuses: list[tuple[int, str, int, str]]) -> bytes:
    """GetModelStatusResponse{model_version_status = 1 {version = 1, state = 2, status = 3
    {error_code = 1, error_message = 2}}} from (version, state, code, message) tuples."""
    out = b""
    for version, state, code, message in statuses:
        status = (varint_field(1, code) if code else b"") + (
            string_field(2, message) if message else b"")
        entry = varint_field(1, version) + varint_field(2, STATES[state]) + bytes_field(3, status)
        out += bytes_field(1, entry)
    return out


def metadata_response(name: str, version: int, signatures: Mapping[str, SignatureInfo]) -> bytes:
    """GetModelMetadataResponse{model_spec = 1, metadata = 2 {"signature_def":
    Any(SignatureDefMap)}}, as TF Serving answers it."""
    signature_map = b"".join(
        _map_entry(1, key, _signature_def(sig)) for key, sig in sorted(signatures.items()))
    any_message = string_field(1, SIGNATURE_DEF_MAP_TYPE) + bytes_field(2, signature_map)
    return (bytes_field(1, model_spec(name, version))
            + _map_entry(2, "signature_def", any_message))


def _map_entry(number: int, key: str, value: bytes) -> bytes:
    return bytes_field(number, string_field(1, key) + bytes_field(2, value))


def _signature_def(sig: SignatureInfo) -> bytes:
    """SignatureDef{inputs = 1, outputs = 2 (map<string, TensorInfo>), method_name = 3}."""
    out = b"".join(_map_entry(1, k, _tensor_info(v)) for k, v in sorted(sig.inputs.items()))
    out += b"".join(_map_entry(2, k, _tensor_info(v)) for k, v in sorted(sig.outputs.items()))
    return out + (string_field(3, sig.method_name) if sig.method_name else b"")


def _tensor_info(spec: TensorSpec) -> bytes:
    """TensorInfo{name = 1, dtype = 2, tensor_shape = 3 {dim = 2 {size = 1}, unknown_rank = 3}}."""
    if spec.shape is None:
        shape = varint_field(3, 1)
    else:
        shape = b"".join(bytes_field(2, varint_field(1, -1 if d is None else d))
                         for d in spec.shape)
    out = string_field(1, spec.tensor_name) if spec.tensor_name else b""
    return out + varint_field(2, _DTYPES.get(spec.dtype, 0)) + bytes_field(3, shape)


def classification_result(outputs: Mapping[str, np.ndarray], count: int) -> bytes:
    """ClassificationResult{classifications = 1 {classes = 1 {label = 1, score = 2}}}: one
    Classifications per example, labels from ``classes`` and scores from ``scores`` (either
    may be missing, as TF Serving allows)."""
    classes, scores, width = classification_outputs(outputs, count)
    out = b""
    for i in range(count):
        entries = b""
        for j in range(width):
            label = string_field(1, classes[i, j].decode("utf-8", "replace")) if (
                classes is not None and classes[i, j]) else b""
            score = float_field(2, float(scores[i, j])) if scores is not None else b""
            entries += bytes_field(1, label + score)
        out += bytes_field(1, entries)
    return out


def regression_result(values: np.ndarray) -> bytes:
    """RegressionResult{regressions = 1 {value = 1}}."""
    return b"".join(bytes_field(1, float_field(1, float(v))) for v in values)
