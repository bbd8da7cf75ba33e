"""Session options reach TensorFlow; bad ones are refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

import smrt

from .conftest import Zoo

# ConfigProto{intra_op_parallelism_threads: 1} serialized by hand: field 2, varint 1.
ONE_INTRA_OP_THREAD = bytes([0x10, 0x01])


@pytest.mark.parametrize("options", [
    {"intra_op_threads": 1, "inter_op_threads": 1},
    {"config_proto": ONE_INTRA_OP_THREAD},
    {"gpu_memory_growth": True, "gpu_memory_fraction": 0.5, "visible_devices": ""},
])
def test_options_load_and_run(zoo: Zoo, options: dict[str, object]) -> None:
    with smrt.load(zoo.path("add_one"), **options) as model:  # type: ignore[arg-type]
        np.testing.assert_array_equal(model(np.zeros((1, 2), np.float32))["y"], 1)


def test_corrupt_config_proto_is_invalid_argument(zoo: Zoo) -> None:
    with pytest.raises(smrt.InvalidArgumentError, match="ConfigProto"):
        smrt.load(zoo.path("add_one"), config_proto=b"\xff\xff\xff")


@pytest.mark.parametrize(("options", "match"), [
    ({"intra_op_threads": -1}, "thread"),
    ({"gpu_memory_fraction": 1.5}, "gpu_memory_fraction"),
])
def test_bad_typed_options(zoo: Zoo, options: dict[str, object], match: str) -> None:
    with pytest.raises(smrt.InvalidInputError, match=match):
        smrt.load(zoo.path("add_one"), **options)  # type: ignore[arg-type]
