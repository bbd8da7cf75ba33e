"""Every case the model zoo recorded: smrt must return what TensorFlow returned."""

from __future__ import annotations

import pytest

import smrt

from .conftest import Zoo, assert_same

MODELS = [
    "add_one", "tiny_add", "keras_mobilenet", "module_with_signature", "multiple_signatures",
    "stateful", "control_flow", "parse_example", "all_dtypes", "dynamic_shapes",
]


# 'mutate' assigns its input to a variable: smrt warns once and copies from then on (tested in
# test_inputs); here only the values matter.
@pytest.mark.filterwarnings("ignore:signature 'mutate' kept a reference:RuntimeWarning")
@pytest.mark.parametrize("name", MODELS)
def test_outputs_match_tensorflow(zoo: Zoo, name: str) -> None:
    cases = zoo.cases(name)
    assert cases, f"{name} has no reference cases"
    with smrt.load(zoo.path(name)) as model:  # one model: stateful cases run in order
        for i, case in enumerate(cases):
            out = model.signatures[case.signature](**case.inputs)
            assert set(out) == set(case.outputs), f"{name} c{i}"
            for key, expected in case.outputs.items():
                assert_same(out[key], expected, f"{name} c{i} {case.signature}/{key}")


def test_examples_encoded_by_smrt_parse_as_tensorflow_parsed_its_own(zoo: Zoo) -> None:
    # The zoo serialized these two tf.train.Examples with TensorFlow; smrt.tf_example must give
    # the parsing signature the same inputs (the byte order of features may differ).
    (case,) = zoo.cases("parse_example")
    rows = [{"x": [1.5], "ids": [1, 2, 3], "name": [b"first"]}, {"x": [-2.0], "ids": [7]}]
    with smrt.load(zoo.path("parse_example")) as model:
        out = model(smrt.tf_example.encode_batch(rows))
        for key, expected in case.outputs.items():
            assert_same(out[key], expected, f"parse_example/{key}")
