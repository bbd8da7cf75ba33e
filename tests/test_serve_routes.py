"""smrt serve's URL routing: which REST paths and methods map to which model, version and API."""

from __future__ import annotations

import pytest

from smrt.errors import NotFoundError
from smrt.serving.core.errors import MethodNotAllowedError
from smrt.serving.rest.app import Route, parse_route


def test_routes() -> None:
    assert parse_route("POST", "/v1/models/m:predict") == Route("m", None, None, "predict")
    assert parse_route("POST", "/v1/models/m/versions/7:classify") == Route(
        "m", 7, None, "classify")
    assert parse_route("POST", "/v1/models/m/labels/stable:regress") == Route(
        "m", None, "stable", "regress")
    assert parse_route("GET", "/v1/models/m") == Route("m", None, None, "status")
    assert parse_route("GET", "/V1/MODELS/m/versions/2/metadata") == Route(
        "m", 2, None, "metadata")
    for method, path, error in [
        ("GET", "/v1/models/m:predict", MethodNotAllowedError),
        ("POST", "/v1/models/m", MethodNotAllowedError),
        ("GET", "/v1/models", NotFoundError),
        ("GET", "/v1/models/m/versions/x", NotFoundError),
        ("POST", "/v1/models/m:explain", NotFoundError),
        ("GET", "/v2/models/m", NotFoundError),
        ("GET", "/v1/models/m/versions/99999999999999999999", NotFoundError),
    ]:
        with pytest.raises(error):
            parse_route(method, path)
