"""smrt.inspect reads tag-sets and signatures from saved_model.pb; smrt.load picks a tag-set."""

from __future__ import annotations

import numpy as np
import pytest

import smrt

from .conftest import Zoo


def test_signatures_and_specs(zoo: Zoo) -> None:
    info = smrt.inspect(zoo.path("multiple_signatures"))
    assert info.tag_sets == [("serve",)]
    sigs = info.meta_graph().signatures
    assert list(sigs) == ["__saved_model_init_op", "from_float", "serving_default"]
    parse = sigs["serving_default"]
    assert parse.method_name == "tensorflow/serving/predict"
    assert parse.inputs["string_input"] == smrt.TensorSpec(
        "string_input", "string", (), "serving_default_string_input:0")
    assert parse.outputs["output_0"].dtype == "float32"
    assert sigs["from_float"].inputs["x"].shape is None  # unknown rank


def test_every_dtype_name(zoo: Zoo) -> None:
    inputs = smrt.inspect(zoo.path("all_dtypes")).meta_graph().signatures["serving_default"].inputs
    assert {k: v.dtype for k, v in inputs.items()} == {
        "f16": "float16", "f32": "float32", "f64": "float64", "bf16": "bfloat16",
        "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
        "u8": "uint8", "u16": "uint16", "u32": "uint32", "u64": "uint64",
        "b": "bool", "c64": "complex64", "c128": "complex128", "s": "string",
    }
    assert all(v.shape == (None,) for v in inputs.values())
    assert inputs["s"].numpy_dtype == np.dtype(object)
    assert inputs["bf16"].numpy_dtype.name == "bfloat16"


def test_keras_export_signatures(zoo: Zoo) -> None:
    sigs = smrt.inspect(zoo.path("keras_mobilenet")).meta_graph(["serve"]).signatures
    assert {"serve", "serving_default"} <= set(sigs)
    (spec,) = sigs["serving_default"].inputs.values()
    assert (spec.dtype, spec.shape) == ("float32", (None, 224, 224, 3))


def test_module_without_signatures_has_only_the_init_op(zoo: Zoo) -> None:
    path = zoo.path("module_no_signatures")
    assert list(smrt.inspect(path).meta_graph().signatures) == ["__saved_model_init_op"]
    with smrt.load(path) as model:
        assert len(model.signatures) == 0
        with pytest.raises(smrt.SignatureNotFoundError, match="no callable signatures"):
            model.signatures["serving_default"]  # model() calls root.__call__ (test_object_tree)


def test_two_tag_sets(zoo: Zoo) -> None:
    path = zoo.path("two_tag_sets")
    info = smrt.inspect(path)
    assert info.tag_sets == [("serve",), ("serve", "gpu")]
    x = np.array([[1.0], [2.5]], np.float32)
    with smrt.load(path) as serve:
        np.testing.assert_array_equal(serve(x)["y"], 2 * x)
    for tags in (("serve", "gpu"), ("gpu", "serve"), "serve,gpu"):
        with smrt.load(path, tags) as gpu:
            np.testing.assert_array_equal(gpu(x=x)["y"], 6 * x)
            assert set(gpu.meta_graph.tags) == {"serve", "gpu"}


def test_missing_tag_set(zoo: Zoo) -> None:
    with pytest.raises(smrt.NotFoundError, match="'serve', 'serve, gpu'") as e:
        smrt.load(zoo.path("two_tag_sets"), ["train"])
    assert isinstance(e.value, LookupError)
    assert "train" in str(e.value)
    with pytest.raises(smrt.NotFoundError, match="train"):
        smrt.inspect(zoo.path("two_tag_sets")).meta_graph(["train"])


def test_loaded_signature_info_matches_inspect(zoo: Zoo) -> None:
    path = zoo.path("stateful")
    with smrt.load(path) as model:
        assert set(model.signatures) == {"serving_default", "mutate", "read"}
        expected = smrt.inspect(path).meta_graph().signatures
        for key, sig in model.signatures.items():
            assert sig.info == expected[key]
            assert (sig.key, sig.inputs, sig.outputs) == (key, expected[key].inputs,
                                                          expected[key].outputs)
