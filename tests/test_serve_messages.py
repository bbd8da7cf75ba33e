"""smrt's own decoding of TF Serving's request messages (smrt._core.decode_*), checked
against what TensorFlow and tensorflow-serving-api make and read (tests/tf_serving_protos.py):
every dtype in tensor_content and in the typed *_val fields, TensorFlow's fill rules,
protobuf's merge rules, and clear errors for messages TensorFlow would refuse."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import smrt
import smrt.errors
import smrt.memory
from smrt import _core

from .conftest import assert_same

LIMIT = 64 << 20


@pytest.fixture(scope="module")
def messages(tf_protos: Path) -> dict[str, tuple[str, bytes, Any]]:
    with open(tf_protos / "messages.pkl", "rb") as f:
        return pickle.load(f)  # type: ignore[no-any-return]


def _predict_names(kind: str) -> list[str]:
    # Names are fixed by tests/tf_serving_protos.py; listed here so each is its own test.
    dtypes = ["float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "int64",
              "uint32", "uint64", "bool", "float16", "bfloat16", "complex64", "complex128",
              "string", "scalar"]
    if kind == "good":
        return ([f"made_{d}" for d in dtypes] + [f"typed_{d}" for d in dtypes]
                + ["fill_broadcast", "fill_too_few", "fill_none", "fill_too_many",
                   "fill_strings", "two_inputs", "versioned", "merged"])
    return ["bad_content_size", "bad_dtype", "bad_negative_dim", "bad_truncated"]


@pytest.mark.parametrize("name", _predict_names("good"))
def test_predict_request_decodes_as_tensorflow_reads_it(
        messages: dict[str, tuple[str, bytes, Any]], name: str) -> None:
    _, data, expected = messages[name]
    _spec, inputs, _filter = _core.decode_predict_request(data, LIMIT)
    assert sorted(inputs) == sorted(expected)
    for key, want in expected.items():
        got = inputs[key]
        assert_same(got, np.asarray(want), f"{name}: {key}")
        if got.dtype != object:
            assert smrt.memory.is_aligned(got), "numeric inputs go to TensorFlow without a copy"


def test_model_spec_and_output_filter(messages: dict[str, tuple[str, bytes, Any]]) -> None:
    spec, _, output_filter = _core.decode_predict_request(messages["two_inputs"][1], LIMIT)
    assert spec == ("m", None, "stable", "sig")
    assert output_filter == ["y", "z"]
    spec, _, _ = _core.decode_predict_request(messages["versioned"][1], LIMIT)
    assert spec == ("m", 12, "", "")
    spec, _, _ = _core.decode_predict_request(messages["merged"][1], LIMIT)
    assert spec[0] == "second"  # the last scalar wins


@pytest.mark.parametrize(("name", "match"), [
    ("bad_content_size", "input 'x': tensor_content holds 8 bytes"),
    ("bad_dtype", "input 'x': dtype DT_RESOURCE"),
    ("bad_negative_dim", "input 'x': dimension -1"),
    ("bad_truncated", "could not be parsed"),
])
def test_bad_tensors_are_invalid_argument(messages: dict[str, tuple[str, bytes, Any]],
                                          name: str, match: str) -> None:
    with pytest.raises(smrt.InvalidArgumentError, match=match):
        _core.decode_predict_request(messages[name][1], LIMIT)


@pytest.mark.parametrize("name", ["bad_huge", "bad_huge_strings"])
def test_what_a_message_may_allocate_is_bounded(messages: dict[str, tuple[str, bytes, Any]],
                                                name: str) -> None:
    # A few bytes declaring 2**40 elements filled from one value: refused before allocating.
    with pytest.raises(smrt.errors.ResourceExhaustedError, match="input 'x' would take more than"):
        _core.decode_predict_request(messages[name][1], LIMIT)


@pytest.mark.parametrize("name", ["classify", "regress_context", "multi_inference"])
def test_examples_requests(messages: dict[str, tuple[str, bytes, Any]], name: str) -> None:
    kind, data, expected = messages[name]
    tasks, examples = _core.decode_examples_request(data, kind == "multi_inference", LIMIT)
    assert examples.tolist() == expected
    if kind == "multi_inference":
        assert tasks == [(("m", None, "", "classify_x_to_y"), "tensorflow/serving/classify"),
                         (("m", None, "", ""), "tensorflow/serving/regress")]
    else:
        assert tasks == [(("m", None, "", "classify_x_to_y"), "")]


def test_empty_input_is_refused(messages: dict[str, tuple[str, bytes, Any]]) -> None:
    with pytest.raises(smrt.InvalidArgumentError, match="Input is empty"):
        _core.decode_examples_request(messages["empty_input"][1], False, LIMIT)


def test_masked_crc32c() -> None:
    # TFRecord's masking of CRC-32C("123456789") = 0xE3069283 (the standard check value).
    crc = 0xE3069283
    assert _core.masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32
