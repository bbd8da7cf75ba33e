# Stubs for smrt._core, the pybind11 module (cpp/bindings). Checked by mypy.
from collections.abc import Sequence
from typing import Any

import numpy as np

from smrt.saved_model import MetaGraphInfo

__version__: str
ALIGNMENT: int
ERROR_CODES: dict[str, int]

def load_library(path: str) -> None: ...
def ensure_loaded(hints: list[tuple[str, str]]) -> None: ...
def runtime_info() -> tuple[str, str, str] | None: ...
def inspect(
    dir: bytes, with_ops: bool = False, with_functions: bool = False
) -> list[MetaGraphInfo]: ...
def dtype_name(code: int) -> str: ...
def dtype_enum_name(name: str) -> str: ...
def aligned_handler() -> object: ...
def set_handler(handler: object) -> object: ...
def flatten_json(value: Any, max_rank: int) -> tuple[tuple[int, ...], list[Any], int]: ...

class NativeSignature:
    """A signature of a NativeModel; smrt.Signature derives from it."""

    def __init__(self, model: NativeModel, key: str, check_shapes: bool = True) -> None: ...
    @property
    def key(self) -> str: ...
    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]: ...
    def run(
        self, inputs: dict[str, Any], *, timeout: float | None = None,
        check_shapes: bool | None = None,
    ) -> dict[str, np.ndarray]: ...

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
