"""Running a request on a served version, whatever the protocol: which signature it names
(TF Serving's default ``serving_default``, and its method-name check), and what a
classify/regress signature must look like. REST (:mod:`smrt.serving.rest`) and gRPC
(:mod:`smrt.serving.grpc`) build on these, and so does warmup."""

from __future__ import annotations

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
