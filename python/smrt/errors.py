"""The exceptions smrt raises.

Every error derives from :class:`Error`. Errors about the caller's input also derive from
the builtin a Python user would catch (``KeyError``, ``ValueError``, ``TypeError``,
``FileNotFoundError``), and every TensorFlow status code has its own class, named as in
``tf.errors`` (``InvalidArgumentError``, ``NotFoundError``, ...).
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every error smrt raises."""


class SignatureNotFoundError(Error, KeyError):
    """The model has no callable signature with that key."""

    def __str__(self) -> str:  # KeyError would repr() the message; show it as written.
        return str(self.args[0]) if self.args else ""


class InvalidInputError(Error, ValueError):
    """A missing or unexpected input, a wrong rank, or a fixed dimension that does not match."""


class InputTypeError(Error, TypeError):
    """An input of the wrong dtype, or an object that is not array-like."""


class ModelNotFoundError(Error, FileNotFoundError):
    """The SavedModel directory or its saved_model.pb does not exist."""


class LibraryNotFoundError(Error, ImportError):
    """No usable libtensorflow was found, or the one named could not be loaded."""


class ModelClosedError(Error, RuntimeError):
    """The model was closed; it can no longer run."""


class StatusError(Error):
    """An error with a TensorFlow status code (``code`` is TF_Code's value)."""

    code: int = 2


class CancelledError(StatusError):
    code = 1


class UnknownError(StatusError):
    code = 2


class InvalidArgumentError(StatusError, ValueError):
    code = 3


class DeadlineExceededError(StatusError, TimeoutError):
    code = 4


class NotFoundError(StatusError, LookupError):
    """Something TensorFlow looked for (a tag-set, an op, a file) is not there."""

    code = 5


class AlreadyExistsError(StatusError):
    code = 6


class PermissionDeniedError(StatusError, PermissionError):
    code = 7


class ResourceExhaustedError(StatusError):
    code = 8


class FailedPreconditionError(StatusError):
    code = 9


class AbortedError(StatusError):
    code = 10


class OutOfRangeError(StatusError):
    code = 11


class UnimplementedError(StatusError, NotImplementedError):
    code = 12


class InternalError(StatusError):
    code = 13


class UnavailableError(StatusError):
    code = 14


class DataLossError(StatusError):
    """Corrupt, truncated or empty data, e.g. a saved_model.pb that does not parse."""

    code = 15


class UnauthenticatedError(StatusError):
    code = 16


class OpPolicyError(PermissionDeniedError):
    """A model uses ops its op policy denies (see :mod:`smrt.op_policy`); it was not loaded.

    ``ops`` maps each denied op to the holders it was found in: library function names, with
    ``""`` for the graph itself.
    """

    def __init__(self, message: str, ops: dict[str, tuple[str, ...]] | None = None) -> None:
        super().__init__(message)
        self.ops: dict[str, tuple[str, ...]] = dict(ops or {})


STATUS_ERRORS: dict[int, type[StatusError]] = {
    cls.code: cls
    for cls in (
        CancelledError, UnknownError, InvalidArgumentError, DeadlineExceededError,
        NotFoundError, AlreadyExistsError, PermissionDeniedError, ResourceExhaustedError,
        FailedPreconditionError, AbortedError, OutOfRangeError, UnimplementedError,
        InternalError, UnavailableError, DataLossError, UnauthenticatedError,
    )
}
"""TF_Code value -> the class raised for it."""

__all__ = [
    name for name, obj in globals().items() if isinstance(obj, type) and issubclass(obj, Error)
]
