"""The REST predict fast path (tensor_json.parse_predict on _core.parse_numeric_predict): the
arrays it reads are byte for byte the general path's, anything else falls back to the general
path (and its errors), and a served MobileNet answers the same bytes either way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import smrt
from smrt import _core
from smrt.serving.core.errors import BadRequestError
from smrt.serving.rest import tensor_json

from .conftest import Zoo
from .serving import ServerProcess, version_dir

ACCEPTED = [
    b'{"instances": [[1, 2.5], [-0, 3e2]]}',
    b' { "inputs" : [ [ [0.1] ] , [ [ -1E-3 ] ] ] , "signature_name" : "serving_default" } ',
    b'{"signature_name": "", "instances": [1, 2, 3]}',
    b'{"instances": [9007199254740993, 1.7976931348623157e308, 5e-324, 0.30000000000000004]}',
    b'{"inputs": [3.4028235e38, 3.5e38]}',  # the second overflows float32: refused below
]
REFUSED = [
    b'{"instances": [[1, 2], [3]]}',  # ragged
    b'{"instances": [[1, 2], 3]}',
    b'{"instances": [1, [2]]}',
    b'{"instances": []}',
    b'{"instances": [[]]}',
    b'{"instances": 5}',
    b'{"instances": [1, "2"]}',
    b'{"instances": [true]}',
    b'{"instances": [null]}',
    b'{"instances": [{"x": 1}]}',
    b'{"instances": [NaN]}',
    b'{"instances": [1e400]}',
    b'{"instances": [01]}',
    b'{"instances": [1.]}',
    b'{"instances": [.5]}',
    b'{"instances": [-]}',
    b'{"instances": [12345678901234567890]}',
    b'{"instances": [1], "inputs": [1]}',
    b'{"instances": [1], "instances": [2]}',
    b'{"instances": [1], "extra": 1}',
    b'{"instances": [1], "signature_name": "serving\\u005fdefault"}',
    b'{"instances": [1]} x',
    b'{"instances": [1],}',
    b'[1]',
    b'{"instances": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}",  # deeper than MAX_RANK
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_accepted_bodies_read_as_the_general_path_reads_them(body: bytes) -> None:
    parsed = _core.parse_numeric_predict(body, tensor_json.MAX_RANK)
    assert parsed is not None
    field, name, values = parsed
    request = tensor_json.loads(body)
    assert name == request.get("signature_name")
    expected = np.array(request[field], dtype=np.float64)
    assert values.dtype == np.float64
    assert values.shape == expected.shape
    assert values.tobytes() == expected.tobytes()


@pytest.mark.parametrize("body", REFUSED)
def test_anything_else_is_left_to_the_general_path(body: bytes) -> None:
    assert _core.parse_numeric_predict(body, tensor_json.MAX_RANK) is None


@pytest.fixture(scope="module")
def mobilenet(zoo: Zoo) -> Iterator[smrt.Model]:
    with smrt.load(zoo.path("keras_mobilenet")) as model:
        yield model


def _general(body: bytes, model: smrt.Model) -> tuple[smrt.Signature, dict[str, np.ndarray],
                                                      bool]:
    request = tensor_json.loads(body)
    signature = model.signatures[request.get("signature_name") or "serving_default"]
    inputs, rows = tensor_json.predict_inputs(request, signature.inputs)
    return signature, inputs, rows


@pytest.mark.parametrize("body", [*ACCEPTED[:4], *REFUSED[:3]])
def test_parse_predict_matches_the_general_path(zoo: Zoo, body: bytes) -> None:
    with smrt.load(zoo.path("add_one")) as model:  # x: float32 (None, None)
        def choose(request: dict[str, object]) -> smrt.Signature:
            return model.signatures[str(request.get("signature_name") or "serving_default")]

        try:
            expected = _general(body, model)
        except BadRequestError as e:
            with pytest.raises(BadRequestError, match=re.escape(str(e))):
                tensor_json.parse_predict(body, choose)
            return
        signature, inputs, rows = tensor_json.parse_predict(body, choose)
        assert (signature.key, rows) == (expected[0].key, expected[2])
        assert inputs.keys() == expected[1].keys()
        for key, array in inputs.items():
            assert array.dtype == expected[1][key].dtype
            assert array.tobytes() == expected[1][key].tobytes()


def test_overflow_is_the_general_paths_error(mobilenet: smrt.Model) -> None:
    body = ACCEPTED[4]
    with pytest.raises(BadRequestError, match="out of range for float32"):
        tensor_json.parse_predict(body, lambda request: mobilenet.signatures["serving_default"])
    with pytest.raises(BadRequestError, match="out of range for float32"):
        _general(body, mobilenet)


def test_served_mobilenet_answers_the_same_bytes(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "m", 1, zoo.path("keras_mobilenet"))
    server = ServerProcess("--model_name", "m", "--model_base_path", str(tmp_path / "m"))
    try:
        rng = np.random.default_rng(0)
        batch = rng.random((2, 224, 224, 3), dtype=np.float32).tolist()
        fast = tensor_json.dumps({"instances": batch})
        # An escaped signature name is the same signature, read by the general path.
        general = fast[:-1] + b',"signature_name":"serving\\u005fdefault"}'
        assert _core.parse_numeric_predict(fast, tensor_json.MAX_RANK) is not None
        assert _core.parse_numeric_predict(general, tensor_json.MAX_RANK) is None
        replies = [server.post("/v1/models/m:predict", data=body) for body in (fast, general)]
        assert [r.status_code for r in replies] == [200, 200], replies[0].text
        assert replies[0].content == replies[1].content
        columnar = server.post("/v1/models/m:predict",
                               data=tensor_json.dumps({"inputs": batch}))
        assert columnar.status_code == 200
        assert columnar.json()["outputs"] == replies[0].json()["predictions"]
    finally:
        assert server.stop() == 0
