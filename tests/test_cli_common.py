"""The CLI's shared helpers (smrt.cli.common) and the shape fact they share with serving."""

from __future__ import annotations

import pytest

from smrt.cli.common import set_text, shape_text, tags_from_flag
from smrt.cli.errors import CliError
from smrt.saved_model import tf_dims


def test_tf_dims_writes_unknown_as_minus_one() -> None:
    assert tf_dims((None, 3, 0)) == [-1, 3, 0]
    assert tf_dims(()) == []


def test_shape_text() -> None:
    assert shape_text(None) == "unknown_rank"
    assert shape_text(()) == "()"
    assert shape_text((None, 28)) == "(-1, 28)"
    assert shape_text((1, None), ",") == "(1,-1)"


def test_set_text_sorts_like_a_printed_set() -> None:
    assert set_text([]) == "set()"
    assert set_text(["b", "a"]) == "{'a', 'b'}"


def test_tags_from_flag() -> None:
    assert tags_from_flag(" serve , gpu,,") == ["serve", "gpu"]
    with pytest.raises(CliError, match="at least one tag"):
        tags_from_flag(" , ")
