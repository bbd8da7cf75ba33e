"""TF Serving's REST replies: model status, metadata, classify and regress.

Predict lives in :mod:`.tensor_json`; what is protocol-neutral in
:mod:`smrt.serving.core.inference`. The JSON shapes follow TF Serving's
(``GetModelStatusResponse``, ``GetModelMetadataResponse`` as protobuf JSON with proto field
names and default values printed, and ``{"results": ...}`` for classify and regress).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from smrt import tf_example
from smrt.errors import InputTypeError, InvalidInputError
from smrt.model import Signature
from smrt.saved_model import TensorSpec, tf_dims
from smrt.serving.core.errors import BadRequestError, RequestTooLargeError
from smrt.serving.core.inference import (
    DEFAULT_SIGNATURE,
    check_examples_method,
    check_examples_signature,
    classification_outputs,
    signature_for,
)
from smrt.serving.core.versions import ServedVersion, VersionStatus

from .tensor_json import Json, decode_b64, dumps_tensors, is_b64


def status_reply(statuses: list[VersionStatus]) -> dict[str, Json]:
    return {"model_version_status": [
        {"version": str(s.version), "state": s.state,
         "status": {"error_code": s.error_code, "error_message": s.error_message}}
        for s in statuses
    ]}


def metadata_reply(name: str, served: ServedVersion) -> dict[str, Json]:
    signatures = served.model.meta_graph.signatures
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(served.version)},
        "metadata": {"signature_def": {"signature_def": {
            key: {
                "inputs": _tensor_infos(sig.inputs),
                "outputs": _tensor_infos(sig.outputs),
                "method_name": sig.method_name,
                "defaults": {},
            }
            for key, sig in sorted(signatures.items())
        }}},
    }


def _tensor_infos(specs: Mapping[str, TensorSpec]) -> dict[str, Json]:
    return {key: {
        "dtype": spec.dtype_enum,
        "tensor_shape": (
            {"dim": [], "unknown_rank": True} if spec.shape is None else
            {"dim": [{"size": str(d), "name": ""} for d in tf_dims(spec.shape)],
             "unknown_rank": False}),
        "name": spec.tensor_name,
    } for key, spec in sorted(specs.items())}


def request_signature(served: ServedVersion, request: dict[str, Json],
                      check_method_name: bool = False) -> Signature:
    """The signature a JSON request names (``signature_name``; see
    :func:`~smrt.serving.core.inference.signature_for`)."""
    name = request.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str):
        raise BadRequestError("'signature_name' must be a string")
    return signature_for(served, name, check_method_name)


# --- classify and regress ----------------------------------------------------------------------


@dataclass
class ExamplesCall:
    """A parsed classify/regress request: the signature to run and its one input."""

    api: str
    signature: Signature
    inputs: dict[str, np.ndarray]
    count: int


def examples_call(served: ServedVersion, request: dict[str, Json], api: str,
                  body_bytes: int = 0, check_method_name: bool = False) -> ExamplesCall:
    """Checks a classify/regress request and serializes its tf.Examples. With
    ``check_method_name``, the signature's method_name must be the API's (TF Serving's
    ``--enable_signature_method_name_check``)."""
    unknown = sorted(request.keys() - {"signature_name", "examples", "context"})
    if unknown:
        raise BadRequestError(f"unknown field(s) in the request: {', '.join(unknown)}")
    signature = request_signature(served, request)
    if check_method_name:
        check_examples_method(signature, api)
    input_key = check_examples_signature(signature, api)
    serialized = serialize_examples(request, examples_limit(body_bytes))
    return ExamplesCall(api, signature, {input_key: serialized}, len(serialized))


def examples_reply(call: ExamplesCall, outputs: Mapping[str, np.ndarray]) -> bytes:
    """``{"results": ...}`` for a classify/regress call's outputs."""
    if call.api == "regress":
        values = _regression_values(outputs, call.count)
        return dumps_tensors(lambda convert: {"results": convert(values, "outputs")}, [values])
    return _classification_body(outputs, call.count)


EXAMPLES_BYTES = 32 << 20
"""Serialized examples may take this much more than a few times the body (see below)."""


def examples_limit(body_bytes: int) -> int:
    """How many bytes of serialized tf.Examples a request of ``body_bytes`` may make: the
    ``context`` is repeated in every example, so a small body could otherwise ask for
    gigabytes. Without a context, examples serialize smaller than 4x their JSON."""
    return EXAMPLES_BYTES + 4 * body_bytes


def serialize_examples(request: dict[str, Json], limit: int | None = None) -> np.ndarray:
    """``examples`` (and ``context``, merged into each, the example winning on a clash) as
    serialized tf.Examples, as TF Serving makes them: the context's serialization followed by
    the example's (protobuf merges concatenated messages, the later map entry winning). The
    context is encoded once. Raises RequestTooLargeError (413) past ``limit`` bytes."""
    if "examples" not in request:
        raise BadRequestError("the request needs 'examples', a list of objects (one per "
                              "tf.Example, feature name -> value or list of values)")
    examples, context = request["examples"], request.get("context", {})
    if not isinstance(examples, list) or not examples:
        raise BadRequestError("'examples' must be a non-empty list of objects")
    if not isinstance(context, dict):
        raise BadRequestError("'context' must be an object (feature name -> values)")
    shared = _encode(context, "context") if context else b""
    own: list[bytes] = []
    for i, item in enumerate(examples):
        if not isinstance(item, dict):
            raise BadRequestError(f"examples[{i}] must be an object (feature name -> values)")
        own.append(_encode(item, f"examples[{i}]"))
    # Sized before anything is copied: refusing costs no more than the examples themselves.
    total = len(shared) * len(own) + sum(map(len, own))
    if limit is not None and total > limit:
        raise RequestTooLargeError(
            f"the {len(own)} examples would serialize to {total} bytes, more than the limit "
            f"of {limit} (the context, {len(shared)} bytes, is repeated in each); send fewer "
            "examples per request, or a smaller context")
    out = np.empty(len(own), dtype=object)
    out[:] = [shared + e for e in own] if shared else own
    return out


def _encode(features: dict[str, Json], where: str) -> bytes:
    try:
        return tf_example.encode(_features(features, where))
    except (InvalidInputError, InputTypeError, UnicodeError) as e:  # lone surrogates
        raise BadRequestError(f"{where}: {e}") from None


def _features(features: dict[str, Json], where: str) -> dict[str, Any]:
    """JSON feature values with ``{"b64": ...}`` decoded to bytes."""
    decoded: dict[str, Any] = {}
    for name, value in features.items():
        here = f"{where} feature '{name}'"
        values = value if isinstance(value, list) else [value]
        if not values:
            raise BadRequestError(f"{here}: an empty list has no type; leave the feature out")
        items: list[bytes | str | int | float] = []
        for v in values:
            if is_b64(v):
                items.append(decode_b64(v, here))
            elif isinstance(v, (str, int, float)):  # bool is an int: int64 0/1, as TF Serving
                items.append(v)
            else:
                raise BadRequestError(f"{here}: values must be numbers, strings or "
                                      '{"b64": ...} objects')
        decoded[name] = items
    return decoded


def _regression_values(outputs: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    values = outputs["outputs"]
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (n,):
        raise BadRequestError(f"the regression output has shape {list(values.shape)}; expected "
                              f"[{n}] or [{n}, 1] for {n} examples")
    return values


def _classification_body(outputs: Mapping[str, np.ndarray], n: int) -> bytes:
    """``{"results": [[[label, score], ...] per example]}``; a missing ``classes`` output
    gives empty labels, a missing ``scores`` output scores of 0, as TF Serving does."""
    classes, scores, width = classification_outputs(outputs, n)
    labels = ([[c.decode("utf-8", "backslashreplace") for c in row] for row in classes]
              if classes is not None else [[""] * width] * n)

    def build(convert: Callable[[np.ndarray, str], Json]) -> Json:
        values = convert(scores, "scores") if scores is not None else [[0.0] * width] * n
        rows = zip(labels, values, strict=True)
        return {"results": [[[label, score] for label, score in zip(*row, strict=True)]
                            for row in rows]}

    return dumps_tensors(build, [scores] if scores is not None else [])
