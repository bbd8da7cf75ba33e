"""``Signature.run(inputs, fetch=[...])``: TensorFlow computes only the outputs named."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import smrt
from smrt.errors import InvalidArgumentError, InvalidInputError

from .conftest import Zoo, assert_same


def test_fetch_computes_only_the_outputs_named(loaded: Callable[[str], smrt.Model]) -> None:
    # guarded_outputs: `checked` fails the run unless every x is positive, `y` never does.
    sig = loaded("guarded_outputs").signatures["serving_default"]
    x = np.array([-1.0, 3.0], np.float32)
    assert sig.run({"x": x}, fetch=["y"])["y"].tolist() == [-2.0, 6.0]
    with pytest.raises(InvalidArgumentError, match="checked needs a positive x"):
        sig.run({"x": x})
    with pytest.raises(InvalidArgumentError, match="checked needs a positive x"):
        sig.run({"x": x}, fetch=("checked",))
    both = sig.run({"x": np.array([1.0], np.float32)}, fetch=["checked", "y"], timeout=10)
    assert list(both) == ["checked", "y"]  # in the order asked
    assert both["y"].tolist() == [2.0]


def test_fetched_outputs_equal_a_full_runs(loaded: Callable[[str], smrt.Model],
                                           zoo: Zoo) -> None:
    # A TF2 export: every output is one call op's; fetching some gives TensorFlow's values.
    case = zoo.cases("bytes_echo")[0]
    sig = loaded("bytes_echo").signatures[case.signature]
    for key, expected in case.outputs.items():
        out = sig.run(case.inputs, fetch=[key])
        assert list(out) == [key]
        assert_same(out[key], expected, key)


@pytest.mark.parametrize(("fetch", "message"), [
    (["nope"], r"signature 'serving_default' has no output 'nope'; its outputs are: "
               r"checked, y"),
    (["y", "y"], r"output 'y' of signature 'serving_default' is fetched twice"),
    ([], "names no output"),
    ("y", "must be a list of output keys, not str"),
    ([1], "output names of signature 'serving_default' must be str, got int"),
])
def test_bad_fetches_are_refused(loaded: Callable[[str], smrt.Model], fetch: object,
                                 message: str) -> None:
    sig = loaded("guarded_outputs").signatures["serving_default"]
    with pytest.raises(InvalidInputError, match=message):
        sig.run({"x": np.ones(1, np.float32)}, fetch=fetch)  # type: ignore[arg-type]
