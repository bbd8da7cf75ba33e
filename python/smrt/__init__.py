"""smrt: run TensorFlow SavedModels through libtensorflow's C API as zero-copy NumPy calls.

>>> import numpy as np, smrt
>>> model = smrt.load("/tmp/smrt-example/mobilenet/1")        # tags=("serve",)
>>> out = model.signatures["serving_default"](input_1=np.zeros((1, 224, 224, 3), np.float32))

``import smrt`` loads neither TensorFlow's Python package nor libtensorflow; :func:`load` finds
and loads libtensorflow on first use (see :mod:`smrt.library`).
"""

from __future__ import annotations

from . import errors, op_policy, tf_example
from ._core import __version__
from .errors import (
    DataLossError,
    Error,
    InputTypeError,
    InvalidArgumentError,
    InvalidInputError,
    LibraryNotFoundError,
    MissingOpError,
    ModelClosedError,
    ModelFetchError,
    ModelNotFoundError,
    ModelURIError,
    NoMatchingFunctionError,
    NotFoundError,
    OpPolicyError,
    SignatureNotFoundError,
    StatusError,
)
from .library import RuntimeInfo, load_library, load_op_library, runtime_info
from .memory import aligned, aligned_allocation, empty, is_aligned, zeros
from .model import BoundCall, Model, Signature, load
from .saved_model import MetaGraphInfo, SavedModelInfo, SignatureInfo, TensorSpec, inspect

__all__ = [
    "DataLossError",
    "Error",
    "InputTypeError",
    "InvalidArgumentError",
    "InvalidInputError",
    "LibraryNotFoundError",
    "MetaGraphInfo",
    "MissingOpError",
    "Model",
    "ModelClosedError",
    "ModelFetchError",
    "ModelNotFoundError",
    "ModelURIError",
    "NoMatchingFunctionError",
    "NotFoundError",
    "OpPolicyError",
    "RuntimeInfo",
    "SavedModelInfo",
    "BoundCall",
    "Signature",
    "SignatureInfo",
    "SignatureNotFoundError",
    "StatusError",
    "TensorSpec",
    "__version__",
    "aligned",
    "aligned_allocation",
    "empty",
    "errors",
    "inspect",
    "is_aligned",
    "load",
    "load_library",
    "load_op_library",
    "op_policy",
    "runtime_info",
    "tf_example",
    "zeros",
]
