# Stubs for smrt._core, the pybind11 module (cpp/bindings). Checked by mypy.
from collections.abc import Sequence
from typing import Any

import numpy as np

from smrt.saved_model import MetaGraphInfo

__version__: str
DISTRIBUTION: str
"""The pip distribution's name (pyproject.toml's); install hints print it."""
ALIGNMENT: int
ERROR_CODES: dict[str, int]

def load_library(path: str) -> None: ...
def ensure_loaded(hints: list[tuple[str, str]]) -> None: ...
def runtime_info() -> tuple[str, str, str] | None: ...
def find_library(hints: list[tuple[str, str]]) -> tuple[str, str, str] | None:
    """(path, version, source) of the loaded library, or of the one ensure_loaded(hints) would
    load (version "")."""
def load_op_library(path: str) -> list[str]:
    """TF_LoadLibrary, once per path; the ops the library registers."""
def add_op_package_root(dir: str) -> None: ...
def registered_ops() -> list[str]: ...
def known_op_libraries() -> dict[str, tuple[str, str | None]]:
    """op -> (package, its op library relative to site-packages, or None)."""
def inspect(
    dir: bytes, with_ops: bool = False, with_functions: bool = False
) -> list[MetaGraphInfo]: ...
def dtype_name(code: int) -> str: ...
def dtype_enum_name(name: str) -> str: ...
def aligned_handler() -> object: ...
def set_handler(handler: object) -> object: ...
def flatten_json(value: Any, max_rank: int) -> tuple[tuple[int, ...], list[Any], int]: ...

# TF Serving's messages (cpp/bindings/py_serving_messages.cc). A ModelSpec is
# (name, version or None, version_label, signature_name).
ModelSpecTuple = tuple[str, int | None, str, str]

def decode_predict_request(
    data: bytes, max_bytes: int,
) -> tuple[ModelSpecTuple, dict[str, np.ndarray], list[str]]: ...
def decode_examples_request(
    data: bytes, multi_inference: bool, max_bytes: int,
) -> tuple[list[tuple[ModelSpecTuple, str]], np.ndarray]: ...
def decode_prediction_log(data: bytes) -> tuple[str, bytes]: ...
def decode_spec_request(data: bytes) -> tuple[ModelSpecTuple, list[str]]: ...
def encode_tensor(array: np.ndarray, tensor_content: bool) -> bytes: ...
def encode_predict_response(
    outputs: dict[str, np.ndarray], name: str, version: int, signature_name: str,
    tensor_content: bool,
) -> bytes: ...
def masked_crc32c(data: bytes) -> int: ...

class NativeSignature:
    """A signature of a NativeModel; smrt.Signature derives from it. Called through CPython's
    vectorcall protocol (cpp/bindings/fast_call.h)."""

    release_gil: bool
    def __init__(self, model: NativeModel, key: str, check_shapes: bool = True) -> None: ...
    @property
    def key(self) -> str: ...
    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]: ...
    def run(
        self, inputs: dict[str, Any], *, timeout: float | None = None,
        check_shapes: bool | None = None,
    ) -> dict[str, np.ndarray]: ...
    def bind(
        self, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray], *,
        timeout: float | None = None, check_shapes: bool | None = None,
    ) -> BoundCall: ...

class BoundCall:
    """A signature's call over fixed arrays (smrt.Signature.bind)."""

    def __call__(self) -> None: ...
    @property
    def inputs(self) -> dict[str, np.ndarray]: ...
    @property
    def outputs(self) -> dict[str, np.ndarray]: ...

def inherit_fast_call(subclass: type[NativeSignature]) -> None: ...

class NativeConcreteFunction:
    @property
    def name(self) -> str: ...
    def __call__(self, inputs: Sequence[Any], lend: bool = True) -> tuple[list[np.ndarray], bool]:
        """Runs it with its flat inputs: its flat outputs, and whether TensorFlow handed back
        every array lent to it."""

class NativeModel:
    """smrt::Model: the loaded session; smrt.Model wraps it."""

    def __init__(
        self,
        path: bytes,
        tags: list[str],
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        gpu_memory_growth: bool | None = None,
        gpu_memory_fraction: float | None = None,
        visible_devices: str = "",
        config_proto: bytes = b"",
    ) -> None: ...
    @property
    def closed(self) -> bool: ...
    def meta_graph(self) -> MetaGraphInfo: ...
    def signature_keys(self) -> list[str]: ...
    def signature(self, key: str) -> NativeSignature: ...
    def default_signature(self) -> NativeSignature: ...
    def object_tree(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]] | None:
        """(nodes, concrete functions) of the SavedObjectGraph; None without one (TF1)."""
    def concrete_function(self, name: str) -> NativeConcreteFunction:
        """Concrete function ``name``, its call added to the graph at first use."""
    def read_variable(self, node: int) -> np.ndarray:
        """The current value of variable object ``node``."""
    def close(self) -> None: ...
