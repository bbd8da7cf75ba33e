"""Tests of smrt.tf_example, checked against TensorFlow's own tf.train.Example.

TensorFlow must never be imported in the pytest process, so one session-scoped fixture
sends every expected Example (and smrt's encoding of it) to a single ``python -c``
subprocess, which builds the Example with TensorFlow's protos, parses smrt's bytes and
compares the two messages. It also returns TensorFlow's bytes with the map entries in
sorted key order (smrt's order, and that of C++ protobuf's deterministic serialization;
upb's deterministic order differs for keys that prefix each other), for an exact match.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from smrt import tf_example
from smrt.errors import InputTypeError, InvalidInputError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def F(*values: float) -> tuple[str, list[float]]:
    return ("float", [float(v) for v in values])


def I(*values: int) -> tuple[str, list[int]]:  # noqa: E743
    return ("int64", [int(v) for v in values])


def B(*values: bytes) -> tuple[str, list[bytes]]:
    return ("bytes", list(values))


def _one(features: dict[str, Any]) -> Callable[[], list[bytes]]:
    return lambda: [tf_example.encode(features)]


_RNG = np.random.default_rng(0)
_RANDOM_INT64 = _RNG.integers(INT64_MIN, INT64_MAX, size=200, dtype=np.int64, endpoint=True)
# One value of every varint length (1..10 bytes), both signs.
_VARINT_EDGES = [0, 1, 127, 128, 300, 16383, 16384, -1, -128, -129, INT64_MIN, INT64_MAX]
_VARINT_EDGES += [s * 2**k for k in range(14, 63, 7) for s in (1, -1)]
_VARINT_EDGES += [2**k - 1 for k in range(7, 64, 7)]

_BATCH_ROWS = [
    {"age": 42, "tags": ["a", "b"], "w": [0.5, 1]},
    {"age": -7, "tags": np.array([], "U")},
    {},
]

_COLUMNS = {
    "x": np.arange(6, dtype=np.int64).reshape(3, 2),
    "y": ["a", "é", "c"],
    "z": np.array([0.5, 1.5, 2.5], np.float32),
    "e": np.zeros((3, 0), np.float32),
    "o": np.array([b"p", "q", b"r"], dtype=object),
}

# name -> (function returning smrt's serialized Examples, the expected Examples as
# {key: (kind, values)} for TensorFlow to build)
CHECKS: dict[str, tuple[Callable[[], list[bytes]], list[dict[str, tuple[str, list[Any]]]]]] = {
    "floats": (
        _one({"x": [1.5, -2.0, 0.1, 3e38, 1e-40, float("inf"), float("-inf"), -0.0]}),
        [{"x": F(1.5, -2.0, 0.1, 3e38, 1e-40, float("inf"), float("-inf"), -0.0)}],
    ),
    "float_scalar": (_one({"x": 2.5}), [{"x": F(2.5)}]),
    "ints": (_one({"x": _VARINT_EDGES}), [{"x": I(*_VARINT_EDGES)}]),
    "int_scalar": (_one({"x": -7}), [{"x": I(-7)}]),
    "int64_extremes": (
        _one({"lo": INT64_MIN, "hi": [INT64_MAX]}),
        [{"lo": I(INT64_MIN), "hi": I(INT64_MAX)}],
    ),
    "bools": (_one({"x": [True, False], "y": True}), [{"x": I(1, 0), "y": I(1)}]),
    "int_float_promotion": (_one({"x": [1, 2.5, True]}), [{"x": F(1, 2.5, 1)}]),
    "bytes": (
        _one({"x": [b"", b"\x00\xff", b"abc"], "y": b"hi"}),
        [{"x": B(b"", b"\x00\xff", b"abc"), "y": B(b"hi")}],
    ),
    "str_non_ascii": (
        _one({"x": ["héllo", "日本語", "😀", ""], "y": "ünï"}),
        [{"x": B("héllo".encode(), "日本語".encode(), "😀".encode(), b""), "y": B("ünï".encode())}],
    ),
    "nested_lists": (
        _one({"x": [[1, 2], [3], (4,)], "y": ([0.5], [[1.5]])}),
        [{"x": I(1, 2, 3, 4), "y": F(0.5, 1.5)}],
    ),
    "np_float32_2d": (
        _one({"x": np.array([[0.5, 1.25, -3.0], [4.0, 1e-3, 7.0]], np.float32)}),
        [{"x": F(0.5, 1.25, -3.0, 4.0, np.float32(1e-3), 7.0)}],
    ),
    "np_float64_fortran_order": (
        _one({"x": np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4) / 3)}),
        [{"x": F(*[v / 3 for v in range(12)])}],
    ),
    "np_float16_3d": (
        _one({"x": np.array([0.5, -1.25, 2.0, 8.0], np.float16).reshape(2, 1, 2)}),
        [{"x": F(0.5, -1.25, 2.0, 8.0)}],
    ),
    "np_ints": (
        _one(
            {
                "i8": np.array([[-128, 127], [0, -1]], np.int8),
                "i32": np.array([-(2**31), 2**31 - 1], np.int32),
                "u8": np.array([255, 0], np.uint8),
                "u32": np.array([2**32 - 1], np.uint32),
                "u64": np.array([INT64_MAX, 0], np.uint64),
                ">i8": np.array([-5, 2**40], ">i8"),
                "random": _RANDOM_INT64,
            }
        ),
        [
            {
                "i8": I(-128, 127, 0, -1),
                "i32": I(-(2**31), 2**31 - 1),
                "u8": I(255, 0),
                "u32": I(2**32 - 1),
                "u64": I(INT64_MAX, 0),
                ">i8": I(-5, 2**40),
                "random": I(*_RANDOM_INT64.tolist()),
            }
        ],
    ),
    "np_bool_2d": (_one({"x": np.array([[True, False], [False, True]])}), [{"x": I(1, 0, 0, 1)}]),
    "np_strings": (
        _one(
            {
                "s": np.array([b"a", b"bc"]),
                "u": np.array([["€", "b"], ["c", "dé"]]),
                "o": np.array([b"x", "ÿ"], dtype=object),
            }
        ),
        [
            {
                "s": B(b"a", b"bc"),
                "u": B("€".encode(), b"b", b"c", "dé".encode()),
                "o": B(b"x", "ÿ".encode()),
            }
        ],
    ),
    "np_scalars": (
        _one(
            {
                "f32": np.float32(1.5),
                "f64": np.float64(0.1),
                "i16": np.int16(-3),
                "u64": np.uint64(INT64_MAX),
                "b": np.bool_(True),
                "s": np.str_("é"),
                "by": np.bytes_(b"z"),
                "zero_d": np.array(4.5),
            }
        ),
        [
            {
                "f32": F(1.5),
                "f64": F(0.1),
                "i16": I(-3),
                "u64": I(INT64_MAX),
                "b": I(1),
                "s": B("é".encode()),
                "by": B(b"z"),
                "zero_d": F(4.5),
            }
        ],
    ),
    "empty_typed_arrays": (
        _one(
            {
                "f": np.array([], np.float32),
                "i": np.zeros((0, 3), np.int64),
                "b": np.array([], bool),
                "s": np.array([], "S1"),
                "u": np.array([], "U"),
            }
        ),
        [{"f": F(), "i": I(), "b": I(), "s": B(), "u": B()}],
    ),
    "sorted_keys": (
        _one({"zeta": 1, "alpha": [1.0], "é": b"x", "B": "y", "": [2], "日": 3, "a b": 4}),
        [
            {
                "zeta": I(1),
                "alpha": F(1.0),
                "é": B(b"x"),
                "B": B(b"y"),
                "": I(2),
                "日": I(3),
                "a b": I(4),
            }
        ],
    ),
    "no_features": (_one({}), [{}]),
    "long_payloads": (
        _one({"f": np.arange(5000, dtype=np.float32), "s": [b"x" * 300, b"y" * 20000]}),
        [{"f": F(*range(5000)), "s": B(b"x" * 300, b"y" * 20000)}],
    ),
    "encode_batch": (
        lambda: list(tf_example.encode_batch(_BATCH_ROWS)),
        [{"age": I(42), "tags": B(b"a", b"b"), "w": F(0.5, 1)}, {"age": I(-7), "tags": B()}, {}],
    ),
    "encode_columns": (
        lambda: list(tf_example.encode_columns(_COLUMNS)),
        [
            {"x": I(2 * i, 2 * i + 1), "y": B(y.encode()), "z": F(i + 0.5), "e": F(), "o": B(o)}
            for i, (y, o) in enumerate([("a", b"p"), ("é", b"q"), ("c", b"r")])
        ],
    ),
    "encode_columns_no_columns": (
        lambda: list(tf_example.encode_columns({}, batch_size=2)), [{}, {}]),
}

_TF_SCRIPT = r"""
import base64, json, sys
from tensorflow.core.example import example_pb2, feature_pb2

def feature(kind, values):
    if kind == "bytes":
        values = [base64.b64decode(v) for v in values]
        return feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=values))
    if kind == "float":
        return feature_pb2.Feature(float_list=feature_pb2.FloatList(value=values))
    return feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=values))

def varint(n):
    out = b""
    while n > 0x7F:
        out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
    return out + bytes([n])

results = []
for req in json.load(sys.stdin):
    feats = {key: feature(kind, values) for key, (kind, values) in req["expected"].items()}
    want = example_pb2.Example(features=feature_pb2.Features(feature=feats))
    # One serialized single-entry Features per key, concatenated in sorted key order, is the
    # Features map in that order; wrap it as Example field 1.
    entries = b"".join(
        feature_pb2.Features(feature={key: feats[key]}).SerializeToString(deterministic=True)
        for key in sorted(feats, key=lambda k: k.encode())
    )
    res = {"tf": base64.b64encode(b"\n" + varint(len(entries)) + entries).decode()}
    try:
        res["equal"] = example_pb2.Example.FromString(base64.b64decode(req["mine"])) == want
    except Exception as exc:
        res["error"] = repr(exc)
    results.append(res)
print(json.dumps(results))
"""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="session")
def tf_results() -> dict[str, list[dict[str, Any]]]:
    """Per check, per Example: TF's bytes, and whether smrt's bytes parse to TF's Example."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow's Python package is needed to check against tf.train.Example")
    requests, spans = [], {}
    for name, (make, expected) in CHECKS.items():
        try:
            mine = [_b64(b) for b in make()]
        except Exception:  # the check's own test reports the error
            mine = []
        mine += [""] * (len(expected) - len(mine))
        spans[name] = (len(requests), len(requests) + len(expected))
        for got, want in zip(mine, expected, strict=False):  # the test checks the count
            requests.append(
                {
                    "mine": got,
                    "expected": {
                        key: [kind, [_b64(v) for v in values] if kind == "bytes" else values]
                        for key, (kind, values) in want.items()
                    },
                }
            )
    proc = subprocess.run(
        [sys.executable, "-c", _TF_SCRIPT],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: results[a:b] for name, (a, b) in spans.items()}


@pytest.mark.parametrize("name", list(CHECKS))
def test_matches_tensorflow(name: str, tf_results: dict[str, list[dict[str, Any]]]) -> None:
    make, expected = CHECKS[name]
    mine = make()
    assert len(mine) == len(expected)
    for i, (got, res) in enumerate(zip(mine, tf_results[name], strict=True)):
        assert type(got) is bytes
        assert "error" not in res, f"Example {i}: TF could not parse smrt's bytes: {res['error']}"
        assert res["equal"], f"Example {i}: TensorFlow parsed a different Example"
        assert got == base64.b64decode(res["tf"]), f"Example {i}: bytes differ from TensorFlow's"


def test_batch_shapes() -> None:
    batch = tf_example.encode_batch(_BATCH_ROWS)
    assert batch.dtype == object
    assert batch.shape == (3,)
    assert list(batch) == [tf_example.encode(row) for row in _BATCH_ROWS]
    assert tf_example.encode_batch(iter([])).shape == (0,)
    assert tf_example.encode_batch(row for row in _BATCH_ROWS).shape == (3,)
    columns = tf_example.encode_columns(_COLUMNS, batch_size=3)
    assert columns.dtype == object
    assert columns.shape == (3,)
    rows = [{key: col[i] for key, col in _COLUMNS.items()} for i in range(3)]
    assert list(columns) == list(tf_example.encode_batch(rows))
    assert tf_example.encode_columns({}, batch_size=0).shape == (0,)
    assert tf_example.encode_columns({"x": np.zeros((0, 2))}).shape == (0,)


def test_deterministic_key_order() -> None:
    a = tf_example.encode({"b": 1, "a": [2.0], "c": "x"})
    assert a == tf_example.encode({"c": "x", "a": [2.0], "b": 1})


@pytest.mark.parametrize(
    ("features", "error", "key", "detail"),
    [
        ({"mixed": [1, "a"]}, InputTypeError, "mixed", "str"),
        ({"mixed": [b"a", 1.5]}, InputTypeError, "mixed", "float"),
        ({"mixed": np.array([b"a", 1], dtype=object)}, InputTypeError, "mixed", "int"),
        ({"empty": []}, InputTypeError, "empty", "empty"),
        ({"empty": ()}, InputTypeError, "empty", "empty"),
        ({"empty": [[], []]}, InputTypeError, "empty", "empty"),
        ({"empty": np.array([], dtype=object)}, InputTypeError, "empty", "empty"),
        ({"d": {"a": 1}}, InputTypeError, "d", "dict"),
        ({"n": None}, InputTypeError, "n", "NoneType"),
        ({"n": [1, None]}, InputTypeError, "n", "NoneType"),
        ({"s": {1, 2}}, InputTypeError, "s", "set"),
        ({"c": np.array([1j])}, InputTypeError, "c", "complex"),
        ({"c": 1j}, InputTypeError, "c", "complex"),
        ({"t": np.array(["2020-01-01"], "datetime64[D]")}, InputTypeError, "t", "datetime64"),
        ({"big": np.array([1, 2**63], np.uint64)}, InvalidInputError, "big", str(2**63)),
        ({"big": np.uint64(2**64 - 1)}, InvalidInputError, "big", str(2**64 - 1)),
        ({"big": [np.uint64(2**63)]}, InvalidInputError, "big", str(2**63)),
        ({"big": [1, 2**63]}, InvalidInputError, "big", str(2**63)),
        ({"small": [INT64_MIN - 1]}, InvalidInputError, "small", str(INT64_MIN - 1)),
        ({"huge": [10**400, 0.5]}, InvalidInputError, "huge", "float"),
        ({1: [1]}, InvalidInputError, "1", "int"),
        ({b"k": [1]}, InvalidInputError, "b'k'", "bytes"),
        ({"text": ["ok", "lone \ud800"]}, InvalidInputError, "text", "not valid Unicode"),
        ({"text": np.array(["\udfff"])}, InvalidInputError, "text", "surrogates not allowed"),
        ({"k\ud800": [1]}, InvalidInputError, "k\\ud800", "not valid Unicode"),
    ],
)
def test_encode_errors(
    features: dict[Any, Any], error: type[Exception], key: str, detail: str
) -> None:
    with pytest.raises(error) as info:
        tf_example.encode(features)
    assert info.type is error
    message = str(info.value)
    assert f"'{key}'" in message or key in message.split(), message
    assert detail in message


def test_encode_not_a_mapping() -> None:
    with pytest.raises(InputTypeError) as info:
        tf_example.encode([("a", 1)])  # type: ignore[arg-type]
    assert info.type is InputTypeError
    assert "list" in str(info.value)


def test_encode_batch_error_names_row_and_key() -> None:
    with pytest.raises(InputTypeError) as info:
        tf_example.encode_batch([{"a": 1}, {"a": [1, "x"]}])
    assert info.type is InputTypeError
    assert "row 1" in str(info.value)
    assert "'a'" in str(info.value)


@pytest.mark.parametrize(
    ("columns", "batch_size", "error", "key"),
    [
        ({"a": [1, 2, 3], "b": [1, 2]}, None, InvalidInputError, "b"),
        ({"a": np.zeros((2, 3)), "b": np.zeros(3)}, None, InvalidInputError, "b"),
        ({"a": [1, 2]}, 3, InvalidInputError, "a"),
        ({"a": 5}, None, InputTypeError, "a"),
        ({"a": "abc"}, None, InputTypeError, "a"),
        ({"a": np.array(1.0)}, None, InputTypeError, "a"),
        ({"a": [1, {}]}, None, InputTypeError, "a"),
        ({2: [1]}, None, InvalidInputError, "2"),
    ],
)
def test_encode_columns_errors(
    columns: dict[Any, Any], batch_size: int | None, error: type[Exception], key: str
) -> None:
    with pytest.raises(error) as info:
        tf_example.encode_columns(columns, batch_size)
    assert info.type is error
    assert f"'{key}'" in str(info.value) or key in str(info.value).split(), str(info.value)


def test_encode_columns_needs_batch_size_without_columns() -> None:
    with pytest.raises(InvalidInputError, match="batch_size"):
        tf_example.encode_columns({})
