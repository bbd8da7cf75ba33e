"""Apache Beam RunInference model handlers that run SavedModels through smrt.

``pip install 'smrt-runtime[beam]'``. Drop-in where Beam's ``TFModelHandlerNumpy`` is used::

    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference
    from smrt.beam import ModelHandlerNumpy

    with beam.Pipeline() as p:
        (p | beam.Create(images)                       # float32 arrays, one per element
           | RunInference(ModelHandlerNumpy("gs://bucket/mobilenet"))
           | beam.Map(lambda r: r.inference.argmax()))  # PredictionResult(example, inference)

Each worker copies the model from its URI once (see :mod:`smrt.model_uri`) and loads it with
libtensorflow's C API: no TensorFlow Python import, a fraction of its start-up time and memory.
Batches are stacked into one 64-byte-aligned array per input, so the run reads them without
another copy. Results are :class:`~apache_beam.ml.inference.base.PredictionResult` per
element, ``model_id`` the model URI, as Beam's TensorFlow handler gives them; the inference is
that element's row of the output (NumPy), or a dict of rows by output key when the signature
has several outputs and ``output_key`` is not given.

The handlers work under ``KeyedModelHandler``, with ``with_preprocess_fn`` /
``with_postprocess_fn``, ``update_model_path`` (and side-input model updates), and Beam's
model sharing: ``large_model=True`` loads one model per machine in a separate process that
every worker process calls, ``model_copies=N`` exactly N. Metrics are reported under the
namespaces ``BeamML_smrt_Numpy`` and ``BeamML_smrt_Dict``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .library import pip_install

try:
    from apache_beam.ml.inference.base import ModelHandler, PredictionResult
except ImportError as e:
    raise ImportError(f"smrt.beam needs Apache Beam: {pip_install('beam')} ({e})") from e

from . import model_uri as uris
from .errors import InputTypeError, InvalidInputError
from .memory import empty
from .model import Model, load
from .saved_model import tag_set

__all__ = ["ModelHandlerDict", "ModelHandlerNumpy", "SignatureRunner"]


class SignatureRunner:
    """The model a handler's ``load_model`` returns: one signature of one loaded SavedModel,
    run on a whole batch.

    Only its methods are used, with NumPy arguments and results, so that Beam can put it in
    a shared process (``large_model``, ``model_copies``) and call it through a proxy.
    """

    def __init__(self, model_uri: str, signature: str, tags: tuple[str, ...],
                 load_options: Mapping[str, Any]) -> None:
        self.model: Model = load(uris.fetch(model_uri), tags, **load_options)
        self._signature = self.model.signatures[signature]

    def input_keys(self) -> list[str]:
        """The signature's input keys."""
        return list(self._signature.inputs)

    def __call__(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Runs the signature on one batch of inputs; returns its outputs by key."""
        return dict(self._signature(**inputs))


def _stack(values: Sequence[Any], key: str) -> Any:
    """One batch for input `key` from per-element values: NumPy values are stacked into a
    64-byte-aligned array (fed without a copy, dtype kept exactly as smrt requires); anything
    else (Python numbers, strings, lists) is handed to smrt as a list, which converts it to
    the input's dtype by its usual rules."""
    if not all(isinstance(v, np.ndarray | np.generic) for v in values):
        return list(values)
    first = np.asarray(values[0])
    for i, value in enumerate(values):
        # Stacking would cast to the first element's dtype, wrapping integers silently;
        # strings of other lengths (<U2, <U5) are one kind, which stacking widens.
        if (value.dtype.kind != first.dtype.kind if first.dtype.kind in "SU"
                else value.dtype != first.dtype):
            raise InputTypeError(
                f"input {key!r}: batch element {i} is a NumPy {value.dtype} value, element 0 "
                f"a {first.dtype} one; smrt casts no array behind your back, so give every "
                "element the same dtype")
        if np.shape(value) != first.shape:
            raise InvalidInputError(
                f"input {key!r}: batch element {i} has shape {np.shape(value)}, element 0 "
                f"{first.shape}; a batch stacks elements of one shape")
    if first.dtype.kind in "OSU":
        return np.stack(values)  # strings: smrt converts them
    out = empty((len(values), *first.shape), first.dtype)
    np.stack(values, out=out)
    return out


def _rows(outputs: dict[str, np.ndarray], output_key: str | None, count: int
          ) -> list[Any]:
    """Per-element inferences: row i of the chosen output, or a dict of rows."""
    if output_key is not None and output_key not in outputs:
        raise InvalidInputError(
            f"output_key {output_key!r} is not an output of the signature; its outputs are "
            f"{sorted(outputs)}")
    chosen = {output_key: outputs[output_key]} if output_key is not None else outputs
    for key, value in chosen.items():
        if np.ndim(value) == 0 or len(value) != count:
            raise InvalidInputError(
                f"output {key!r} has shape {np.shape(value)}, not a row per element of the "
                f"batch of {count}: RunInference needs outputs with a batch dimension (pick "
                "one with output_key=)")
    if len(chosen) == 1:
        return list(next(iter(chosen.values())))
    keys = list(chosen)
    return [{k: chosen[k][i] for k in keys} for i in range(count)]


class _Handler(ModelHandler):  # type: ignore[misc]  # Beam's classes are untyped to mypy
    """What both handlers share: construction, loading, metrics, model path updates."""

    _namespace = "BeamML_smrt"

    def __init__(
        self,
        model_uri: str,
        *,
        signature: str = "serving_default",
        tags: Sequence[str] | str = ("serve",),
        input_key: str | None = None,
        output_key: str | None = None,
        min_batch_size: int | None = None,
        max_batch_size: int | None = None,
        max_batch_duration_secs: int | None = None,
        large_model: bool = False,
        model_copies: int | None = None,
        max_batch_weight: int | None = None,
        element_size_fn: Callable[[Any], int] | None = None,
        env_vars: Mapping[str, str] | None = None,
        **load_options: Any,
    ) -> None:
        super().__init__(
            min_batch_size=min_batch_size, max_batch_size=max_batch_size,
            max_batch_duration_secs=max_batch_duration_secs, max_batch_weight=max_batch_weight,
            element_size_fn=element_size_fn, large_model=large_model, model_copies=model_copies,
            env_vars=dict(env_vars or {}))
        # Pinned to the version a TF Serving base path has now: every worker loads that one
        # (and PredictionResult.model_id names it), even if a version is added mid-job.
        self._model_uri = uris.resolve(model_uri).uri
        self._signature = signature
        self._tags = tag_set(tags)
        self._input_key = input_key
        self._output_key = output_key
        self._load_options = dict(load_options)

    def load_model(self) -> SignatureRunner:
        """Copies the model from its URI (once per machine) and loads it with smrt."""
        return SignatureRunner(self._model_uri, self._signature, self._tags, self._load_options)

    def update_model_path(self, model_path: str | None = None) -> None:
        """Points the handler at a new model URI (Beam's model updates; a base path is
        pinned to its highest version now); the next ``load_model`` loads it."""
        if model_path:
            self._model_uri = uris.resolve(model_path).uri

    def get_num_bytes(self, batch: Sequence[Any]) -> int:
        """The bytes of data in a batch (array buffers, else Python object sizes)."""
        return sum(_num_bytes(element) for element in batch)

    def get_metrics_namespace(self) -> str:
        """The namespace of the metrics RunInference reports for this handler."""
        return self._namespace

    def _results(self, batch: Sequence[Any], outputs: dict[str, np.ndarray]
                 ) -> list[PredictionResult]:
        rows = _rows(outputs, self._output_key, len(batch))
        return [PredictionResult(x, y, self._model_uri) for x, y in zip(batch, rows, strict=True)]


def _num_bytes(element: Any) -> int:
    if isinstance(element, np.ndarray):
        return int(element.nbytes)
    if isinstance(element, Mapping):
        return sum(_num_bytes(v) for v in element.values())
    return sys.getsizeof(element)


class ModelHandlerNumpy(_Handler):
    """RunInference handler for elements that are NumPy arrays: one element is one row of a
    single-input signature (``input_key``, or the signature's only input).

    Args:
        model_uri: the SavedModel directory, or a TF Serving base path (its highest version):
            a local path or any fsspec URL (``gs://``, ``s3://``, ``hdfs://``...).
        signature: the signature to run.
        tags: the MetaGraph's tag-set (a string: comma-separated tags).
        input_key: the input that gets the batch; default: the signature's only input.
        output_key: the output whose row is each inference; default: the only output, or a
            dict of rows by output key when there are several.
        min_batch_size, max_batch_size, max_batch_duration_secs, max_batch_weight,
        element_size_fn: Beam's batching (``BatchElements``) parameters.
        large_model: load one model per machine, shared by the worker processes.
        model_copies: load exactly this many models per machine, shared.
        env_vars: environment variables set before the model loads.
        **load_options: :func:`smrt.load` keywords (``intra_op_threads``, ``op_policy``...).

    ``inference_args`` given to RunInference are more inputs of the signature, the same for
    every batch (``{"temperature": np.float32(0.5)}``).
    """

    _namespace = "BeamML_smrt_Numpy"

    def run_inference(self, batch: Sequence[Any], model: SignatureRunner,
                      inference_args: dict[str, Any] | None = None
                      ) -> Iterable[PredictionResult]:
        """Stacks the batch into the input, runs the signature once, splits the outputs."""
        extra = dict(inference_args or {})
        key = self._input_key
        if key is None:
            batched = [k for k in model.input_keys() if k not in extra]
            if len(batched) != 1:
                raise InvalidInputError(
                    f"signature {self._signature!r} has inputs {batched}: ModelHandlerNumpy "
                    "feeds one; name it with input_key=, or use ModelHandlerDict")
            key = batched[0]
        return self._results(batch, model({key: _stack(batch, key), **extra}))


class ModelHandlerDict(_Handler):
    """RunInference handler for elements that are dicts of NumPy arrays (or Python values)
    by input key; each key's values across the batch are stacked into that input.

    Takes :class:`ModelHandlerNumpy`'s arguments but ``input_key``; ``inference_args`` are
    inputs shared by every batch, as there.
    """

    _namespace = "BeamML_smrt_Dict"

    def __init__(self, model_uri: str, **kwargs: Any) -> None:
        if "input_key" in kwargs:
            raise TypeError("ModelHandlerDict takes no input_key: elements name their inputs")
        super().__init__(model_uri, **kwargs)

    def run_inference(self, batch: Sequence[Mapping[str, Any]], model: SignatureRunner,
                      inference_args: dict[str, Any] | None = None
                      ) -> Iterable[PredictionResult]:
        """Stacks each input across the batch, runs the signature once, splits the outputs."""
        keys = list(batch[0]) if batch else []
        for element in batch:
            if not isinstance(element, Mapping) or set(element) != set(keys):
                raise InvalidInputError(
                    "ModelHandlerDict needs every element to be a dict with the same keys; got "
                    f"{sorted(element) if isinstance(element, Mapping) else type(element)} "
                    f"after {sorted(keys)}")
        inputs = {k: _stack([element[k] for element in batch], k) for k in keys}
        return self._results(batch, model({**inputs, **dict(inference_args or {})}))
