"""Every case the model zoo recorded: smrt must return what TensorFlow returned."""

from __future__ import annotations

import pytest

import smrt

from .conftest import Zoo, assert_same

MODELS = [
    "add_one", "tiny_add", "keras_mobilenet", "module_with_signature", "multiple_signatures",
    "stateful", "control_flow", "parse_example", "all_dtypes", "dynamic_shapes",
]


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
