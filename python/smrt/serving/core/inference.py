"""Running a request on a served version, whatever the protocol: which signature it names
(TF Serving's default ``serving_default``, and its method-name check), and what a
classify/regress signature must look like. REST (:mod:`smrt.serving.rest`) and gRPC
(:mod:`smrt.serving.grpc`) build on these, and so does warmup."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from smrt import _core
from smrt.errors import InternalError, NotFoundError
from smrt.model import Signature

from .errors import BadRequestError
from .versions import ServedVersion

DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
PREDICT_METHOD = "tensorflow/serving/predict"


def signature_for(served: ServedVersion, name: str, check_method_name: bool = False,
                  ) -> Signature:
    """The signature ``name`` (empty: ``serving_default``); with ``check_method_name``
    (``--enable_signature_method_name_check``), a predict request's signature must have one of
    TF Serving's three method names (its error: INTERNAL, HTTP 500)."""
    name = name or DEFAULT_SIGNATURE
    signature = served.model.signatures.get(name)
    if signature is None:
        raise NotFoundError(f'Serving signature name: "{name}" not found in signature def '
                            f"(the signatures are: {', '.join(sorted(served.model.signatures))})")
    if check_method_name and signature.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD,
                                                           REGRESS_METHOD):
        raise InternalError(
            f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, "
            f"{CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: {signature.method_name}")
    return signature


def key_set(keys: Iterable[str]) -> str:
    """Keys as TF Serving's messages write a set of them: ``{a,b}``, sorted."""
    return "{" + ",".join(sorted(keys)) + "}"


def output_fetch(signature: Signature, output_filter: Sequence[str]) -> list[str] | None:
    """The outputs a Predict request's ``output_filter`` asks the run to compute (None: every
    output, for an empty filter), checked as TF Serving checks it, in its words
    (predict_util.cc, PreProcessPrediction): each key an output of the signature, none twice.
    The run fetches only these, so TensorFlow runs only the ops they need, as in TF Serving."""
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in signature.outputs:
            raise BadRequestError(
                f"output tensor alias not found in signature: {alias} Outputs expected to be "
                f"in the set {key_set(signature.outputs)}.")
        if alias in seen:
            raise BadRequestError(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return list(output_filter) or None


def check_examples_method(signature: Signature, api: str) -> None:
    """``--enable_signature_method_name_check`` for classify/regress: the signature's
    method_name must be the API's, else BadRequestError (INVALID_ARGUMENT) in TF Serving's
    words (classifier.cc, regressor.cc)."""
    method, what = ((CLASSIFY_METHOD, "classification") if api == "classify"
                    else (REGRESS_METHOD, "regression"))
    if signature.method_name != method:
        raise BadRequestError(f"Expected {what} signature method_name to be {method}. "
                              f"Was: {signature.method_name}")


def check_examples_signature(signature: Signature, api: str) -> str:
    """Checks the signature has the structure TF Serving's classifier/regressor needs (one
    string input named ``inputs``; outputs by API); returns the input's key."""
    what = f"signature {signature.key!r}"
    if len(signature.inputs) != 1 or "inputs" not in signature.inputs:
        raise BadRequestError(f"{what} cannot {api}: it must take one input named 'inputs' "
                              f"(serialized tf.Examples); it takes {', '.join(signature.inputs)}")
    if signature.inputs["inputs"].dtype != "string":
        raise BadRequestError(f"{what} cannot {api}: its input 'inputs' must be a string tensor")
    outputs = set(signature.outputs)
    if api == "regress":
        if outputs != {"outputs"}:
            raise BadRequestError(f"{what} cannot regress: it must have one output named "
                                  f"'outputs'; it has {', '.join(sorted(outputs))}")
    elif not outputs or not outputs <= {"classes", "scores"}:
        raise BadRequestError(f"{what} cannot classify: its outputs must be 'classes' and/or "
                              f"'scores'; it has {', '.join(sorted(outputs))}")
    return "inputs"


def classification_outputs(outputs: Mapping[str, np.ndarray], count: int,
                           ) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """A classify run's ``classes`` and ``scores`` (either may be missing, as TF Serving
    allows) and the number of classes, checked as TF Serving checks them, in its words
    (classifier.cc, PostProcessClassificationResult): each [count, number of classes], classes
    strings, scores float32, both as wide. A model's outputs that break this are the
    request's INVALID_ARGUMENT there, so BadRequestError here (REST and gRPC alike)."""
    classes, scores = outputs.get("classes"), outputs.get("scores")
    for key, array, wanted in (("classes", classes, "DT_STRING"), ("scores", scores, "DT_FLOAT")):
        if array is None:
            continue
        if array.ndim != 2:
            raise BadRequestError("Expected Tensor shape: [batch_size num_classes] but got "
                                  f"{list(array.shape)}")
        got = _dtype_enum_name(array)
        if got != wanted:
            raise BadRequestError(f"Expected {key} Tensor of {wanted}. Got: {got}")
        if array.shape[0] != count:
            raise BadRequestError(f"Expected {key} output batch size of {count}. Got: "
                                  f"{array.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise BadRequestError("Tensors class and score should match in dim_size(1). Got "
                              f"{classes.shape[1]} vs. {scores.shape[1]}")
    present = classes if classes is not None else scores
    return classes, scores, 0 if present is None else present.shape[1]


def _dtype_enum_name(array: np.ndarray) -> str:
    if array.dtype == object:  # smrt's string tensors: object arrays of bytes
        return "DT_STRING" if all(isinstance(v, bytes) for v in array.flat) else "DT_VARIANT"
    try:
        return _core.dtype_enum_name(array.dtype.name)
    except Exception:  # a NumPy type TensorFlow has no name for
        return str(array.dtype)
