"""Spark batch inference with smrt: a ``predict_batch_udf`` that runs a SavedModel signature.

``pip install 'smrt-runtime[spark]'``::

    from pyspark.sql.types import ArrayType, FloatType
    from smrt.spark import predict_batch_udf

    classify = predict_batch_udf("s3://bucket/mobilenet", return_type=ArrayType(FloatType()))
    df.withColumn("probs", classify("image"))        # image: array<float> of 224*224*3

Built on :func:`pyspark.ml.functions.predict_batch_udf`: each Python worker copies the model
from its URI once per machine (:mod:`smrt.model_uri`), loads it once with libtensorflow's C API
(no TensorFlow Python import) and keeps it for every batch of every task it runs (pyspark's
model cache, with Python worker reuse, Spark's default).

Columns map to the signature's inputs in ``input_keys`` order (default: its only input).
Spark stores tensors as flat arrays; each input is reshaped to the per-row shape the
signature declares (``input_tensor_shapes`` overrides it, as in pyspark), and numbers are cast
to the input's dtype where NumPy's ``same_kind`` casting allows (Spark doubles to float32).
The return type decides the output: a ``StructType`` gets the outputs named by its fields
(scalar fields from ``[batch]`` or ``[batch, 1]`` outputs, ``ArrayType`` fields flattened per
row); any other type gets ``output_key`` (default: the only output). The types are
pyspark's: numbers and strings, arrays of them, structs of those (string outputs are decoded
as UTF-8).
"""

from __future__ import annotations

import inspect as pyinspect
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .library import pip_install

try:
    from pyspark.ml.functions import predict_batch_udf as _pyspark_predict_batch_udf
    from pyspark.ml.functions import supported_scalar_types
    from pyspark.sql.types import ArrayType, DataType, StringType, StructType
except ImportError as e:
    raise ImportError(f"smrt.spark needs pyspark: {pip_install('spark')} ({e})") from e

from . import model_uri as uris
from .errors import InvalidInputError
from .model import load
from .saved_model import SignatureInfo, TensorSpec, inspect, tag_set

__all__ = ["predict_batch_udf"]


def predict_batch_udf(
    model_uri: str | os.PathLike[str],
    *,
    return_type: DataType,
    signature: str = "serving_default",
    tags: Sequence[str] | str = ("serve",),
    input_keys: Sequence[str] | None = None,
    output_key: str | None = None,
    batch_size: int = 64,
    input_tensor_shapes: Sequence[Sequence[int] | None] | None = None,
    **load_options: Any,
) -> Callable[..., Any]:
    """A pandas UDF that runs ``signature`` of the SavedModel at ``model_uri`` on batches.

    Args:
        model_uri: the SavedModel directory, or a TF Serving base path (its highest version):
            a local path or any fsspec URL (``gs://``, ``s3://``, ``hdfs://``...), readable
            from the driver and every executor.
        return_type: the UDF's Spark type (see the module's docs for how outputs map to it).
        signature, tags: which signature of which MetaGraph.
        input_keys: the signature inputs the UDF's columns feed, in column order; default:
            the signature's only input.
        output_key: the output to return when ``return_type`` is not a struct; default: the
            only output.
        batch_size: rows per model call.
        input_tensor_shapes: per-row shapes of the inputs, as pyspark takes them; default:
            what the signature declares.
        **load_options: :func:`smrt.load` keywords (``intra_op_threads``, ``op_policy``...).

    The driver reads only ``saved_model.pb`` (for the signature's inputs and outputs), so
    argument errors surface when the UDF is made, not in a task; a TF Serving base path is
    resolved to its highest version then, and every worker loads that version.
    """
    # Pinned to the version directory the driver checked: every worker loads that one, even
    # if a TF Serving base path gains a version while the job runs.
    uri = uris.resolve(model_uri).uri
    info = _signature_info(uri, signature, tag_set(tags))
    keys = _input_keys(info, input_keys)
    specs = [info.inputs[k] for k in keys]
    shapes = ([list(s) if s is not None else None for s in input_tensor_shapes]
              if input_tensor_shapes is not None else [_row_shape(spec) for spec in specs])
    if len(shapes) != len(keys):
        raise InvalidInputError(
            f"input_tensor_shapes has {len(shapes)} shapes for the {len(keys)} inputs {keys}")
    _check_outputs(info, return_type, output_key)
    tags_tuple, options = tag_set(tags), dict(load_options)

    def make_predict_fn() -> Callable[..., Any]:
        model = load(uris.fetch(uri), tags_tuple, **options)
        sig = model.signatures[signature]

        def predict(*columns: np.ndarray) -> Any:
            inputs = {key: _to_input(col, spec) for key, col, spec in zip(keys, columns, specs,
                                                                         strict=True)}
            outputs = sig(**inputs)
            rows = len(columns[0])
            if isinstance(return_type, StructType):
                return {f.name: _to_spark(f.name, outputs[f.name], f.dataType, rows)
                        for f in return_type.fields}
            key = _single_output(info, output_key)
            return _to_spark(key, outputs[key], return_type, rows)

        # pyspark counts the predict function's parameters to match columns to inputs.
        predict.__signature__ = pyinspect.Signature([  # type: ignore[attr-defined]
            pyinspect.Parameter(f"input_{i}", pyinspect.Parameter.POSITIONAL_ONLY)
            for i in range(len(keys))
        ])
        return predict

    tensor_shapes = shapes if any(s is not None for s in shapes) else None
    udf: Callable[..., Any] = _pyspark_predict_batch_udf(
        make_predict_fn, return_type=return_type, batch_size=batch_size,
        input_tensor_shapes=tensor_shapes)
    return udf


def _signature_info(uri: str, signature: str, tags: tuple[str, ...]) -> SignatureInfo:
    """The signature's inputs and outputs, from saved_model.pb alone."""
    with tempfile.TemporaryDirectory(prefix="smrt-spark-") as tmp:
        (Path(tmp) / uris.SAVED_MODEL_FILE).write_bytes(uris.read_saved_model_pb(uri))
        meta_graph = inspect(tmp).meta_graph(list(tags))
    if signature not in meta_graph.signatures:
        raise InvalidInputError(
            f"model {uri!r} has no signature {signature!r}; its signatures are "
            f"{sorted(meta_graph.signatures)}")
    return meta_graph.signatures[signature]


def _input_keys(info: SignatureInfo, input_keys: Sequence[str] | None) -> list[str]:
    if input_keys is None:
        if len(info.inputs) != 1:
            raise InvalidInputError(
                f"signature {info.key!r} has inputs {sorted(info.inputs)}: name the ones the "
                "UDF's columns feed, in column order, with input_keys=")
        return list(info.inputs)
    keys = list(input_keys)
    unknown = [k for k in keys if k not in info.inputs]
    if unknown or len(set(keys)) != len(keys):
        raise InvalidInputError(
            f"input_keys {keys}: each must be one input of signature {info.key!r}, once; its "
            f"inputs are {sorted(info.inputs)}")
    return keys


def _row_shape(spec: TensorSpec) -> list[int] | None:
    """pyspark's input_tensor_shape for an input: its per-row shape, None for scalar rows."""
    if spec.shape is None or len(spec.shape) <= 1:
        return None
    row = list(spec.shape[1:])
    if any(d is None for d in row):
        # A tensor column of unknown width: the rows are stacked in _to_input, as they are.
        return None
    return [int(d) for d in row]  # type: ignore[arg-type]


def _single_output(info: SignatureInfo, output_key: str | None) -> str:
    if output_key is not None:
        return output_key
    (key,) = info.outputs  # _check_outputs made sure there is one
    return key


def _check_type(data_type: DataType, where: str, nested: bool = False) -> None:
    """Refuses a return type pyspark's predict_batch_udf cannot fill, naming it."""
    if isinstance(data_type, supported_scalar_types):
        return
    if isinstance(data_type, ArrayType) and isinstance(data_type.elementType,
                                                       supported_scalar_types):
        return
    if isinstance(data_type, StructType) and not nested:
        for field in data_type.fields:
            _check_type(field.dataType, f"field {field.name!r} of {where}", nested=True)
        return
    raise InvalidInputError(
        f"{where} is {data_type.simpleString()}; predict_batch_udf returns numbers or strings "
        "(byte, short, int, bigint, float, double, string), arrays of them, or a struct of those")


def _check_outputs(info: SignatureInfo, return_type: DataType, output_key: str | None) -> None:
    _check_type(return_type, "return_type")
    outputs = sorted(info.outputs)
    if isinstance(return_type, StructType):
        missing = [name for name in return_type.names if name not in info.outputs]
        if missing:
            raise InvalidInputError(
                f"return_type's fields {missing} are not outputs of signature {info.key!r}; "
                f"its outputs are {outputs}")
    elif output_key is not None and output_key not in info.outputs:
        raise InvalidInputError(
            f"output_key {output_key!r} is not an output of signature {info.key!r}; its "
            f"outputs are {outputs}")
    elif output_key is None and len(outputs) != 1:
        raise InvalidInputError(
            f"signature {info.key!r} has outputs {outputs}: pick one with output_key=, or "
            "return several with a StructType return_type whose fields name them")


def _to_input(column: np.ndarray, spec: TensorSpec) -> Any:
    """A column batch as the signature's input: stacked rows, in the input's dtype."""
    if column.dtype == object and len(column) and isinstance(column[0], np.ndarray | list):
        column = np.stack([np.asarray(row) for row in column])
    dtype = spec.numpy_dtype
    if dtype.kind == "O" or column.dtype == dtype:
        return column
    if not np.can_cast(column.dtype, dtype, casting="same_kind"):
        raise InvalidInputError(
            f"input {spec.name!r} is {spec.dtype}; a Spark column of NumPy dtype "
            f"{column.dtype} cannot be cast to it")
    if column.dtype.kind in "iu" and dtype.kind in "iu" and column.size:
        # astype would wrap them; smrt's own conversion refuses them likewise.
        info, low, high = np.iinfo(dtype), column.min(), column.max()
        if low < info.min or high > info.max:
            raise InvalidInputError(
                f"input {spec.name!r} is {spec.dtype}, which cannot hold the value "
                f"{low if low < info.min else high} of this batch")
    return column.astype(dtype)


def _to_spark(key: str, array: np.ndarray, data_type: DataType, rows: int) -> Any:
    """Output `key` of a batch in the form pyspark's predict_batch_udf takes for ``data_type``."""
    if array.ndim == 0 or array.shape[0] != rows:
        raise InvalidInputError(
            f"output {key!r} has shape {array.shape}, not one row for each of the batch's "
            f"{rows} rows; predict_batch_udf needs an output per row")
    if isinstance(data_type, ArrayType):
        flat = array.reshape(rows, -1)
        return _strings(flat, data_type.elementType) if flat.dtype == object else flat
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    return _strings(array, data_type) if array.dtype == object else array


def _strings(array: np.ndarray, data_type: DataType) -> np.ndarray:
    """TensorFlow's strings (bytes) as Spark's strings."""
    if not isinstance(data_type, StringType):
        raise InvalidInputError(f"a string output cannot be returned as {data_type.simpleString()}")
    decode: Callable[[bytes], str] = lambda b: b.decode("utf-8", "replace")  # noqa: E731
    strings: np.ndarray = np.vectorize(decode, otypes=[object])(array)
    return strings
