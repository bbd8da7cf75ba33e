"""Loading a SavedModel and calling its signatures."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

import numpy as np

from . import _core
from .errors import NotFoundError, SignatureNotFoundError
from .library import load_library, load_openvino, prepare_op_libraries
from .objects import RestoredObject, restore
from .op_policy import OpPolicy, check
from .saved_model import MetaGraphInfo, SignatureInfo, TensorSpec, inspect, tag_set

Outputs = dict[str, np.ndarray]


class Signature(_core.NativeSignature):
    """One callable signature of a loaded model.

    Call it with NumPy arrays (or anything array-like) by input name, or with one positional
    array when it has a single input, or with one dict; it returns a dict of NumPy arrays by
    output name. Inputs that are C-contiguous and 64-byte aligned reach TensorFlow without a
    copy; anything else is copied once. Outputs are views of TensorFlow's buffers. Thread-safe:
    the GIL is released while TensorFlow runs.

    ``sig.run(inputs, timeout=seconds)`` is the same call with the inputs as one dict and a
    deadline: TensorFlow cancels the step when it passes (freeing its thread) and the call
    raises :class:`~smrt.errors.DeadlineExceededError`; ``timeout=None`` means no limit.
    ``sig.run(inputs, check_shapes=False)`` leaves input shapes to TensorFlow for that call
    (see :func:`smrt.load`'s ``check_shapes``). ``sig.run(inputs, fetch=["y"])`` returns only
    the outputs named (one or more, each once; an unknown key raises
    :class:`~smrt.errors.InvalidInputError`), and TensorFlow runs only the ops they need: in a
    TF1 graph that skips the other outputs' ops, while a TF2 export's signature is one
    function call, which computes all its outputs whichever are fetched.

    ``sig.may_keep_inputs`` says whether TensorFlow can hold on to an input past a call (the
    signature assigns it to a variable, queues it): false when every op it runs is stateless or
    only reads state, checked at load. Such a signature reuses the tensor it made over an
    aligned array when the next call passes the same memory with the same shape, which saves a
    tenth of a tiny call; the array is still only read during the call. A signature that does
    keep an input warns the first time it does and copies its inputs from then on.

    ``sig.bind(inputs, outputs)`` prepares a call over preallocated arrays that runs without
    allocating (see :meth:`bind`). ``sig.release_gil = False`` keeps the GIL while TensorFlow
    runs (other Python threads then wait); it is released by default, since keeping it
    measured no faster even on a 1x4 add (benchmarks/README.md).
    """

    # Calling it runs the native call directly, through CPython's vectorcall protocol (see
    # inherit_fast_call below): no Python frame and no argument tuple or dict per call.

    def __init__(self, model: _core.NativeModel, info: SignatureInfo,
                 check_shapes: bool = True, release_gil: bool = True) -> None:
        super().__init__(model, info.key, check_shapes)
        self.info = info
        self.release_gil = release_gil

    def bind(self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray], *,
             timeout: float | None = None, check_shapes: bool | None = None) -> BoundCall:
        """A call of this signature over fixed arrays, as ONNX Runtime's IOBinding: ``bound()``
        runs it and writes the outputs into ``outputs``' arrays, returning None.

        Every input must be a NumPy array of its dtype that TensorFlow can read in place:
        C-contiguous, native-endian and 64-byte aligned (:func:`smrt.empty`,
        :func:`smrt.aligned`). It is lent to TensorFlow for the life of the binding and read at
        every run, so write the next values into it (``x[...] = ...``) between runs. ``outputs``
        maps the output keys to fetch (one or more; TensorFlow computes only what they need) to
        writeable C-contiguous arrays of their dtype and shape. TensorFlow's C API always
        allocates a run's output tensors itself, so each output is copied once into its array
        (a call of the signature gives a view instead); nothing else is
        allocated or converted per run. Strings cannot be bound. A run whose output has
        another shape than its array raises :class:`~smrt.errors.InvalidInputError`; one
        binding runs in one thread at a time (another thread's call raises
        :class:`~smrt.errors.FailedPreconditionError`). ``timeout`` and ``check_shapes`` apply
        to every run, as in :meth:`run`.
        """
        return super().bind(dict(inputs), dict(outputs), timeout=timeout,
                            check_shapes=check_shapes)

    # backend ("tensorflow" or "openvino": which runtime runs this signature) and backend_note
    # (why TensorFlow runs it though another backend was asked for) are native properties.

    @property
    def method_name(self) -> str:
        """The SignatureDef's method, e.g. ``"tensorflow/serving/predict"``."""
        return self.info.method_name

    @property
    def inputs(self) -> Mapping[str, TensorSpec]:
        return self.info.inputs

    @property
    def outputs(self) -> Mapping[str, TensorSpec]:
        return self.info.outputs

    def __repr__(self) -> str:
        ins = ", ".join(f"{k}: {v.dtype}{list(v.shape) if v.shape is not None else '[...]'}"
                        for k, v in self.inputs.items())
        return f"<smrt.Signature {self.key!r} ({ins}) -> {list(self.outputs)}>"


_core.inherit_fast_call(Signature)
BoundCall = _core.BoundCall


class _Signatures(Mapping[str, Signature]):
    """model.signatures: the callable signatures by key."""

    def __init__(self, native: _core.NativeModel, signatures: dict[str, Signature]) -> None:
        self._native = native
        self._signatures = signatures

    def __getitem__(self, key: str) -> Signature:
        signature = self._signatures.get(key) if isinstance(key, str) else None
        if signature is None:
            if isinstance(key, str) and key.isprintable():
                self._native.signature(key)  # raises SignatureNotFoundError, saying why
            raise SignatureNotFoundError(
                f"no callable signature {key!r}; the signatures are: {list(self._signatures)}"
            )
        return signature

    def __iter__(self) -> Iterator[str]:
        return iter(self._signatures)

    def __len__(self) -> int:
        return len(self._signatures)

    def __repr__(self) -> str:
        return f"<smrt signatures {list(self._signatures)}>"


class Model:
    """A SavedModel loaded into a TensorFlow session. Use :func:`smrt.load` to make one."""

    def __init__(self, native: _core.NativeModel, path: str, tags: tuple[str, ...],
                 check_shapes: bool = True) -> None:
        self._native = native
        self.path = path
        """The SavedModel directory."""
        self.tags = tags
        self.meta_graph: MetaGraphInfo = native.meta_graph()
        """Everything saved_model.pb says about the loaded MetaGraph."""
        self.signatures: Mapping[str, Signature] = _Signatures(native, {
            key: Signature(native, self.meta_graph.signatures[key], check_shapes)
            for key in native.signature_keys()
        })
        """The callable signatures by key (``__saved_model_init_op`` is not one)."""
        self._default: Signature | None = None
        self._root: RestoredObject | None = None
        self._call_root = False  # no default signature: model(...) is root.__call__

    @property
    def root(self) -> RestoredObject:
        """The restored object tree (what ``tf.saved_model.load`` returns), run in this model's
        session: ``model.root.v`` reads a variable, ``model.root.f(x)`` calls a saved
        ``tf.function``; functions and signatures share the variables. Raises
        :class:`~smrt.errors.NotFoundError` for a SavedModel without an object graph (TF1)."""
        if self._root is None:
            self._root = restore(self._native, self.path)
            if self._root is None:
                raise NotFoundError(f"the SavedModel at '{self.path}' has no object graph (a TF1 "
                                    "SavedModel): only its signatures can run")
        return self._root

    @property
    def closed(self) -> bool:
        return self._native.closed

    def __call__(self, *args: Any, **inputs: Any) -> Any:
        """Call the default signature: ``serving_default``, or the only one there is. A model
        without one calls its root object's saved ``__call__`` (``model.root(...)``) if it has
        one."""
        if self._default is None:
            if self._call_root:
                return self.root(*args, **inputs)
            try:
                self._default = self.signatures[self._native.default_signature().key]
            except SignatureNotFoundError:
                if not self._root_callable():
                    raise
                self._call_root = True
                return self.root(*args, **inputs)
        return self._default(*args, **inputs)

    def _root_callable(self) -> bool:
        try:
            return "__call__" in self.root._children
        except NotFoundError:
            return False

    def close(self) -> None:
        """Free the TensorFlow session. Waits for calls in flight; later calls raise
        :class:`~smrt.errors.ModelClosedError`. Closing twice is fine."""
        self._native.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"signatures={list(self.signatures)}"
        return f"<smrt.Model '{self.path}' tags={list(self.tags)} {state}>"


def load(
    path: str | os.PathLike[str],
    tags: Iterable[str] | str = ("serve",),
    *,
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    gpu_memory_growth: bool | None = None,
    gpu_memory_fraction: float | None = None,
    visible_devices: str | Iterable[int] = "",
    config_proto: bytes = b"",
    library: str | os.PathLike[str] | None = None,
    op_libraries: Iterable[str | os.PathLike[str]] = (),
    op_policy: OpPolicy | None = None,
    check_shapes: bool = True,
    backend: str = "tensorflow",
    performance_hint: str = "latency",
    inference_threads: int = 0,
    inference_precision: str = "f32",
    tolerance: float = 1e-3,
) -> Model:
    """Load the MetaGraph of the SavedModel at ``path`` whose tag-set is exactly ``tags``.

    Args:
        path: the SavedModel directory (the one holding saved_model.pb).
        tags: the tag-set, e.g. ``("serve",)`` or ``("serve", "gpu")``; a string means
            comma-separated tags, as ``saved_model_cli --tag_set`` takes them.
        intra_op_threads, inter_op_threads: TensorFlow's thread pools; 0 lets it choose. A
            negative ``inter_op_threads`` runs ops in the calling thread, which cuts the
            per-call latency of small graphs by several microseconds.
        gpu_memory_growth: allocate GPU memory as needed instead of all at once.
        gpu_memory_fraction: the share of each GPU's memory TensorFlow may take.
        visible_devices: GPUs to use, e.g. ``"0,1"`` or ``[0, 1]``.
        config_proto: a serialized ``tensorflow.ConfigProto`` for anything else; the typed
            options above are applied on top of it.
        library: libtensorflow to use if none is loaded yet (see :func:`smrt.load_library`).
        op_libraries: custom op libraries the model needs (files, or directories of ``.so``
            files), loaded first with :func:`smrt.load_op_library`; so are those the
            ``SMRT_OP_LIBRARIES`` environment variable lists (``os.pathsep``-separated).
            tensorflow-text's libraries are loaded by themselves when the model uses its ops
            and the package is installed.
        op_policy: refuse a model that can run denied ops: ``"default"`` (``saved_model_cli``'s
            denylist), ``"strict"`` (also files, printing, Python, the network...) or the op
            names to deny (see :mod:`smrt.op_policy`). Every op the MetaGraph can run counts,
            in any function, branch or loop body. Checked from saved_model.pb before
            libtensorflow is loaded or TensorFlow sees the model. None (the default) checks
            nothing.
        check_shapes: check each input's shape against the SignatureDef before a call (the
            default: a clear :class:`~smrt.errors.InvalidInputError` naming the input). False
            leaves shapes to TensorFlow, as TF Serving does: a declared shape is not enforced
            (``[3]`` may feed an input declared ``(-1, 1)``), and a shape the graph cannot take
            fails with TensorFlow's own :class:`~smrt.errors.InvalidArgumentError`. Dtypes are
            always checked. ``sig.run(inputs, check_shapes=...)`` overrides it per call.
        backend: which runtime runs the signatures. ``"tensorflow"`` (the default): the
            TensorFlow session. ``"openvino"``: OpenVINO (``pip install 'smrt-runtime[openvino]'``),
            whose TensorFlow frontend converts the ``serving_default`` signature; a signature
            it cannot run (another signature, string or complex tensors, variables a call
            writes, ops it does not convert) runs on TensorFlow. ``"auto"``: OpenVINO where
            its outputs match TensorFlow's on a probe input within ``tolerance``, TensorFlow
            elsewhere. ``sig.backend`` says which runs a signature and ``sig.backend_note``
            why TensorFlow does. The TensorFlow session is loaded in every case.
        performance_hint: OpenVINO's ``"latency"`` (the default) or ``"throughput"`` hint.
        inference_threads: OpenVINO's thread count; 0 lets it choose.
        inference_precision: OpenVINO's arithmetic: ``"f32"`` (the default: TensorFlow's
            answers), ``"bf16"`` or ``"f16"`` (faster on CPUs that have them, less exact), or
            ``""`` for OpenVINO's choice (bf16 on CPUs with AVX512_BF16 or AMX).
        tolerance: for ``"auto"``: OpenVINO is kept when every output element on the probe
            has ``|openvino - tensorflow| <= tolerance * (1 + |tensorflow|)``.

    Raises:
        ModelNotFoundError: no such directory, or no saved_model.pb in it.
        DataLossError: saved_model.pb is empty, truncated or not a SavedModel.
        NotFoundError: no MetaGraph has this tag-set.
        OpPolicyError: the model can run ops ``op_policy`` denies (nothing was loaded).
        ValueError: ``op_policy`` is a string other than ``"default"`` or ``"strict"``.
        LibraryNotFoundError: no libtensorflow could be loaded, an op library could not, or
            OpenVINO was asked for and is not installed.
        MissingOpError: the model uses ops that no loaded library registers (the message names
            each, the functions using it, and the package providing it where smrt knows it).
        StatusError: TensorFlow failed to load the model (a subclass per status code).
    """
    tags = tag_set(tags)
    if not isinstance(visible_devices, str):
        visible_devices = ",".join(str(int(d)) for d in visible_devices)
    path = os.fspath(path)
    if op_policy is not None:  # before TensorFlow is loaded or sees the model
        check(inspect(path, ops=True).meta_graph(tags), op_policy, path)
    load_library(library)
    prepare_op_libraries(op_libraries)
    if backend in ("openvino", "auto"):
        load_openvino()
    native = _core.NativeModel(
        os.fsencode(path),
        list(tags),
        intra_op_threads=intra_op_threads,
        inter_op_threads=inter_op_threads,
        gpu_memory_growth=gpu_memory_growth,
        gpu_memory_fraction=gpu_memory_fraction,
        visible_devices=visible_devices,
        config_proto=bytes(config_proto),
        backend=backend,
        performance_hint=performance_hint,
        inference_threads=inference_threads,
        inference_precision=inference_precision,
        tolerance=tolerance,
    )
    return Model(native, path, tags, check_shapes)
