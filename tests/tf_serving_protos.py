"""Serialized TF Serving messages made by TensorFlow and tensorflow-serving-api, for the tests
of smrt's own decoding (which never imports either).

    python tests/tf_serving_protos.py OUTDIR

writes ``OUTDIR/messages.pkl``: ``{name: (kind, serialized bytes, expected)}``, where
``expected`` is what TensorFlow makes of the message (``tf.make_ndarray`` per input, or the
serialized examples TF Serving feeds), and ``OUTDIR/warmup/<name>/tf_serving_warmup_requests``
TFRecord files written by ``tf.io.TFRecordWriter``. Run in a subprocess by conftest.py.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)


def _example(**features: list[float]) -> tf.train.Example:
    return tf.train.Example(features=tf.train.Features(feature={
        k: tf.train.Feature(float_list=tf.train.FloatList(value=v)) for k, v in features.items()
    }))


def _shape(*dims: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


def _predict(inputs: dict[str, tensor_pb2.TensorProto], **spec: Any) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(**spec))
    for key, proto in inputs.items():
        request.inputs[key].CopyFrom(proto)
    return request


def predict_cases() -> dict[str, tuple[str, bytes, Any]]:
    rng = np.random.default_rng(7)
    arrays = {
        "float32": rng.standard_normal((2, 3)).astype(np.float32),
        "float64": rng.standard_normal(4),
        "int8": np.array([-128, 5, 127], np.int8),
        "uint8": np.array([[0, 255], [7, 8]], np.uint8),
        "int16": np.array([-300, 300], np.int16),
        "uint16": np.array([65535, 1], np.uint16),
        "int32": np.array([-(2**31), 2**31 - 1], np.int32),
        "int64": np.array([-(2**63), 2**63 - 1], np.int64),
        "uint32": np.array([2**32 - 1, 0], np.uint32),
        "uint64": np.array([2**64 - 1, 3], np.uint64),
        "bool": np.array([True, False, True]),
        "float16": np.array([1.5, -2.25, 65504.0], np.float16),
        "bfloat16": np.array([1.5, -3.0], ml_dtypes.bfloat16),
        "complex64": np.array([1 + 2j, -3.5j], np.complex64),
        "complex128": np.array([[1 - 1j]], np.complex128),
        "string": np.array([b"a", b"\xff\x00", "é".encode()], object),
        "scalar": np.float32(4.5),
    }
    cases: dict[str, tuple[str, bytes, Any]] = {}
    for name, array in arrays.items():
        expected = np.asarray(array)
        # tf.make_tensor_proto: tensor_content for numbers (string_val for strings, and
        # typed fields where TensorFlow uses them: scalars, half, bool...)
        content = tf.make_tensor_proto(array)
        cases[f"made_{name}"] = ("predict", _predict({"x": content}).SerializeToString(),
                                 {"x": tf.make_ndarray(content)})
        # The typed *_val fields, as clients in other languages write them.
        typed = tensor_pb2.TensorProto(dtype=content.dtype, tensor_shape=content.tensor_shape)
        flat = expected.reshape(-1)
        if name in ("float16", "bfloat16"):
            typed.half_val.extend(flat.view(np.uint16).tolist())
        elif name == "complex64":
            typed.scomplex_val.extend(np.stack([flat.real, flat.imag], 1).reshape(-1).tolist())
        elif name == "complex128":
            typed.dcomplex_val.extend(np.stack([flat.real, flat.imag], 1).reshape(-1).tolist())
        else:
            field = {"float32": "float_val", "scalar": "float_val", "float64": "double_val",
                     "int64": "int64_val", "uint32": "uint32_val", "uint64": "uint64_val",
                     "bool": "bool_val", "string": "string_val"}.get(name, "int_val")
            getattr(typed, field).extend(flat.tolist())
        cases[f"typed_{name}"] = ("predict", _predict({"x": typed}).SerializeToString(),
                                  {"x": tf.make_ndarray(typed)})
    # TensorFlow's rules for typed fields: one value fills the tensor, too few repeat the
    # last, none are zeros, extra ones are ignored.
    for name, values in (("broadcast", [7.0]), ("too_few", [1.0, 2.0]), ("none", []),
                         ("too_many", [1.0, 2.0, 3.0, 4.0, 5.0])):
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_shape(2, 2),
                                       float_val=values)
        expected = {"too_many": np.array([[1, 2], [3, 4]], np.float32)}.get(
            name, tf.make_ndarray(proto) if name != "too_many" else None)
        cases[f"fill_{name}"] = ("predict", _predict({"x": proto}).SerializeToString(),
                                 {"x": expected})
    strings = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_shape(3),
                                     string_val=[b"p", b"q"])
    cases["fill_strings"] = ("predict", _predict({"x": strings}).SerializeToString(),
                             {"x": np.array([b"p", b"q", b"q"], object)})
    # Several inputs, a model_spec with every field, output_filter.
    two = _predict({"a": tf.make_tensor_proto(np.arange(3, dtype=np.int32)),
                    "b": tf.make_tensor_proto([b"s"])},
                   name="m", signature_name="sig", version_label="stable")
    two.output_filter.extend(["y", "z"])
    cases["two_inputs"] = ("predict", two.SerializeToString(),
                           {"a": np.arange(3, dtype=np.int32), "b": np.array([b"s"], object)})
    versioned = _predict({"x": tf.make_tensor_proto(1.0)}, name="m")
    versioned.model_spec.version.value = 12
    cases["versioned"] = ("predict", versioned.SerializeToString(),
                          {"x": np.array(1.0, np.float32)})
    # Protobuf's merge rules: a message sent twice concatenated is one merged message, the
    # later map entry for a key replacing the earlier one.
    first = _predict({"x": tf.make_tensor_proto([1.0, 2.0]), "keep": tf.make_tensor_proto(5)},
                     name="first")
    second = _predict({"x": tf.make_tensor_proto([[3.0]])}, name="second")
    merged = predict_pb2.PredictRequest.FromString(
        first.SerializeToString() + second.SerializeToString())
    cases["merged"] = ("predict", first.SerializeToString() + second.SerializeToString(),
                       {k: tf.make_ndarray(v) for k, v in merged.inputs.items()})
    # Bad messages: each refused with a message naming the input.
    bad = {
        "bad_content_size": tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_shape=_shape(3), tensor_content=b"\0" * 8),
        "bad_dtype": tensor_pb2.TensorProto(dtype=types_pb2.DT_RESOURCE, tensor_shape=_shape(1)),
        "bad_negative_dim": tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT,
                                                   tensor_shape=_shape(-1), float_val=[1.0]),
        "bad_huge": tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT,
                                           tensor_shape=_shape(1 << 40), float_val=[1.0]),
        "bad_huge_strings": tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING,
                                                   tensor_shape=_shape(1 << 40), string_val=[b"x"]),
    }
    for name, proto in bad.items():
        cases[name] = ("predict", _predict({"x": proto}).SerializeToString(), None)
    cases["bad_truncated"] = ("predict", _predict({"x": tf.make_tensor_proto([1.0] * 4)})
                              .SerializeToString()[:-3], None)
    return cases


def examples_cases() -> dict[str, tuple[str, bytes, Any]]:
    e1, e2, context = _example(x=[1.0]), _example(y=[0.5]), _example(z=[9.0])
    plain = input_pb2.Input(example_list=input_pb2.ExampleList(examples=[e1, e2]))
    with_context = input_pb2.Input(example_list_with_context=input_pb2.ExampleListWithContext(
        examples=[e1, e2], context=context))
    spec = model_pb2.ModelSpec(name="m", signature_name="classify_x_to_y")
    serialized = [e.SerializeToString() for e in (e1, e2)]
    in_context = [context.SerializeToString() + s for s in serialized]
    multi = inference_pb2.MultiInferenceRequest(tasks=[
        inference_pb2.InferenceTask(model_spec=spec, method_name="tensorflow/serving/classify"),
        inference_pb2.InferenceTask(model_spec=model_pb2.ModelSpec(name="m"),
                                    method_name="tensorflow/serving/regress"),
    ], input=with_context)
    return {
        "classify": ("classify", classification_pb2.ClassificationRequest(
            model_spec=spec, input=plain).SerializeToString(), serialized),
        "regress_context": ("regress", regression_pb2.RegressionRequest(
            model_spec=spec, input=with_context).SerializeToString(), in_context),
        "multi_inference": ("multi_inference", multi.SerializeToString(), in_context),
        "empty_input": ("classify", classification_pb2.ClassificationRequest(
            model_spec=spec).SerializeToString(), None),
    }


def write_warmup(outdir: Path) -> None:
    """Warmup files for tf_serving_half_plus_two (x float32; classify/regress signatures),
    and guarded_* ones for guarded_outputs."""
    x = tf.make_tensor_proto(np.array([[1.0], [2.0]], np.float32))
    predict = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
        request=_predict({"x": x}, name="default", signature_name="serving_default")))
    examples = input_pb2.Input(example_list=input_pb2.ExampleList(examples=[_example(x=[1.0])]))
    classify = prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(
        request=classification_pb2.ClassificationRequest(
            model_spec=model_pb2.ModelSpec(signature_name="classify_x_to_y"), input=examples)))
    regress = prediction_log_pb2.PredictionLog(regress_log=prediction_log_pb2.RegressLog(
        request=regression_pb2.RegressionRequest(
            model_spec=model_pb2.ModelSpec(signature_name="regress_x_to_y"), input=examples)))
    multi = prediction_log_pb2.PredictionLog(
        multi_inference_log=prediction_log_pb2.MultiInferenceLog(
            request=inference_pb2.MultiInferenceRequest(tasks=[
                inference_pb2.InferenceTask(
                    model_spec=model_pb2.ModelSpec(signature_name="regress_x_to_y"),
                    method_name="tensorflow/serving/regress"),
                inference_pb2.InferenceTask(
                    model_spec=model_pb2.ModelSpec(signature_name="regress_x_to_y2"),
                    method_name="tensorflow/serving/regress"),
            ], input=examples)))
    bad_input = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
        request=_predict({"nope": x})))
    # For guarded_outputs (tests/model_zoo.py): its `checked` output fails a run for x <= 0.
    negative = _predict({"x": tf.make_tensor_proto(np.array([-1.0], np.float32))})
    filtered = predict_pb2.PredictRequest()
    filtered.CopyFrom(negative)
    filtered.output_filter.append("y")
    files = {
        "good": [predict, classify, regress, multi],
        "bad_input": [predict, bad_input],
        "too_many": [predict] * 1001,
        "guarded_filtered": [prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=filtered))],
        "guarded_unfiltered": [prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=negative))],
    }
    for name, logs in files.items():
        path = outdir / "warmup" / name / "tf_serving_warmup_requests"
        path.parent.mkdir(parents=True, exist_ok=True)
        with tf.io.TFRecordWriter(str(path)) as writer:
            for log in logs:
                writer.write(log.SerializeToString())
    garbage = outdir / "warmup" / "not_a_prediction_log" / "tf_serving_warmup_requests"
    garbage.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(garbage)) as writer:
        writer.write(b"\xff\xff\xff")
    corrupt = outdir / "warmup" / "bad_crc" / "tf_serving_warmup_requests"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray((outdir / "warmup" / "good" / "tf_serving_warmup_requests").read_bytes())
    data[20] ^= 0xFF  # inside the first record's payload
    corrupt.write_bytes(bytes(data))


def main(argv: list[str]) -> int:
    outdir = Path(argv[0])
    outdir.mkdir(parents=True, exist_ok=True)
    messages = {**predict_cases(), **examples_cases()}
    with open(outdir / "messages.pkl", "wb") as f:
        pickle.dump(messages, f)
    write_warmup(outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
