"""Errors of the REST server, each with the HTTP status TF Serving answers it with.

The body of every error reply is ``{"error": "<message>"}``. smrt's own errors (a wrong dtype,
a missing input, a TensorFlow status) are mapped by :func:`http_status`; a model, version,
label or signature that is not there is the core's ``NotFoundError`` (404), a server that
cannot take the request its ``UnavailableError`` (503), as in TF Serving's status codes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from smrt import errors


class ServingError(errors.Error):
    """An error the server reports to the client; ``status`` is the HTTP status code."""

    status = 500


class BadRequestError(ServingError, ValueError):
    """The request is malformed: not JSON, wrong fields, values that do not fit the signature."""

    status = 400


class MethodNotAllowedError(ServingError):
    status = 405


class RequestTooLargeError(ServingError):
    status = 413


class UnsupportedMediaTypeError(ServingError):
    """A Content-Encoding the server does not decode."""

    status = 415


class OverloadedError(errors.UnavailableError):
    """The server has as much work as its limits allow; the reply says ``Retry-After: 1``."""

    retry_after = 1


class RequestTimeoutError(ServingError, TimeoutError):
    """The request did not finish within ``--rest_api_timeout_in_ms``."""

    status = 504


@contextlib.contextmanager
def client_input(what: str = "the request") -> Iterator[None]:
    """Turns any failure while reading client data into a 4xx: whatever a body holds, taking
    it apart is the client's input, never the server's fault. smrt's own errors pass as they
    are; lone surrogates, overflowing numbers, deep nesting and the like become a 400, and
    running out of memory a 413."""
    try:
        yield
    except errors.Error:
        raise
    except MemoryError:
        raise RequestTooLargeError(f"{what} needs more memory than the server has") from None
    except RecursionError:
        raise BadRequestError(f"{what} nests too deeply") from None
    except Exception as e:  # any other failure on client data is the data's
        raise BadRequestError(f"{what} cannot be read: {type(e).__name__}: {e}") from None


def safe_text(message: str) -> str:
    """``message`` with lone surrogates (which UTF-8 and so JSON cannot carry) escaped."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


# TensorFlow status code -> HTTP status, as TF Serving's ToHTTPStatusCode maps them.
_TF_CODE_TO_HTTP = {
    1: 499,   # CANCELLED
    2: 500,   # UNKNOWN
    3: 400,   # INVALID_ARGUMENT
    4: 504,   # DEADLINE_EXCEEDED
    5: 404,   # NOT_FOUND
    6: 409,   # ALREADY_EXISTS
    7: 403,   # PERMISSION_DENIED
    8: 429,   # RESOURCE_EXHAUSTED
    9: 400,   # FAILED_PRECONDITION
    10: 409,  # ABORTED
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    15: 500,  # DATA_LOSS
    16: 401,  # UNAUTHENTICATED
}


def http_status(error: BaseException) -> int:
    """The HTTP status for an exception raised while serving a request."""
    if isinstance(error, ServingError):
        return error.status
    if isinstance(error, (errors.InvalidInputError, errors.InputTypeError,
                          errors.SignatureNotFoundError)):
        return 404 if isinstance(error, errors.SignatureNotFoundError) else 400
    if isinstance(error, errors.ModelClosedError):
        return 503
    if isinstance(error, errors.StatusError):
        return _TF_CODE_TO_HTTP.get(error.code, 500)
    return 500


CODE_NAMES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT",
              4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 6: "ALREADY_EXISTS",
              7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
              10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL",
              14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED"}
"""TensorFlow's (and gRPC's) canonical status codes by number."""


def status_code(error: BaseException) -> int:
    """The canonical status code (TF_Code, as gRPC's) of an exception raised while serving,
    as TF Serving would have reported it: a bad request INVALID_ARGUMENT, a missing model or
    signature NOT_FOUND, a timeout DEADLINE_EXCEEDED, a server over its limits UNAVAILABLE."""
    if isinstance(error, (RequestTimeoutError, TimeoutError)):
        return 4
    if isinstance(error, RequestTooLargeError):
        return 8
    if isinstance(error, (BadRequestError, UnsupportedMediaTypeError, errors.InvalidInputError,
                          errors.InputTypeError)):
        return 3
    if isinstance(error, errors.SignatureNotFoundError):
        return 5
    if isinstance(error, errors.ModelClosedError):
        return 14
    if isinstance(error, errors.StatusError):
        return error.code
    if isinstance(error, ValueError):  # smrt's own bad-value errors (a ConfigError...)
        return 3
    if isinstance(error, MethodNotAllowedError):
        return 12
    return 2 if isinstance(error, errors.Error) else 13
