"""The exceptions smrt raises.

Every error derives from :class:`Error`. Errors about the caller's input also derive from
the builtin a Python user would catch (``KeyError``, ``ValueError``, ``TypeError``,
``FileNotFoundError``), and every TensorFlow status code has its own class, named as in
``tf.errors`` (``InvalidArgumentError``, ``NotFoundError``, ...).
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every error smrt raises."""

    code: int | None = None
    """The C++ core's ErrorCode this class stands for (TensorFlow's TF_Code for 1..16), if any."""


class SignatureNotFoundError(Error, KeyError):
    """The model has no callable signature with that key."""

    code = 100

    def __str__(self) -> str:  # KeyError would repr() the message; show it as written.
        return str(self.args[0]) if self.args else ""


class InvalidInputError(Error, ValueError):
    """A missing or unexpected input, a wrong rank, or a fixed dimension that does not match."""

    code = 101


class InputTypeError(Error, TypeError):
    """An input of the wrong dtype, or an object that is not array-like."""

    code = 102


class ModelNotFoundError(Error, FileNotFoundError):
    """The SavedModel directory or its saved_model.pb does not exist."""

    code = 103


class LibraryNotFoundError(Error, ImportError):
    """No usable libtensorflow was found, or the one named could not be loaded; or a custom op
    library (named in the message) could not be loaded."""

    code = 104


class ModelClosedError(Error, RuntimeError):
    """The model was closed; it can no longer run."""

    code = 105


class NoMatchingFunctionError(Error, TypeError):
    """A restored function (``model.root.f(...)``) has no concrete function whose input
    signature fits the arguments; the message lists the traced input signatures."""

    code = 106


class StatusError(Error):
    """An error with a TensorFlow status code (``code`` is TF_Code's value)."""

    code: int


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


class MissingOpError(NotFoundError):
    """The model uses ops that neither TensorFlow nor any loaded op library registers; the
    message names each op, the functions that use it and, where smrt knows it, the package
    that provides it. Nothing was loaded. (A :class:`NotFoundError`, as TensorFlow's own
    "Op type not registered" is, with smrt's code.)"""

    code = 107


class OpPolicyError(PermissionDeniedError):
    """A model uses ops its op policy denies (see :mod:`smrt.op_policy`); it was not loaded.

    ``ops`` maps each denied op to the holders it was found in: library function names, with
    ``""`` for the graph itself.
    """

    def __init__(self, message: str, ops: dict[str, tuple[str, ...]] | None = None) -> None:
        super().__init__(message)
        self.ops: dict[str, tuple[str, ...]] = dict(ops or {})


class ModelURIError(Error, ValueError):
    """A model URI smrt cannot read: an unknown protocol, or one whose fsspec plug-in (or
    fsspec itself, from the ``beam`` and ``spark`` extras) is not installed."""


class ModelFetchError(Error, OSError):
    """Copying a model from its URI to the local cache failed (the message says which file)."""


def _with_codes(cls: type[Error]) -> list[type[Error]]:
    """``cls`` and its subclasses that declare a code of their own."""
    found = [cls] if "code" in cls.__dict__ else []
    for sub in cls.__subclasses__():
        found += _with_codes(sub)
    return found


ERRORS: dict[int, type[Error]] = {
    cls.code: cls for cls in _with_codes(Error) if cls.code is not None
}
"""The one table: error code (the C++ core's ErrorCode) -> the class raised for it."""

STATUS_ERRORS: dict[int, type[StatusError]] = {
    code: cls for code, cls in ERRORS.items() if issubclass(cls, StatusError) and code <= 16
}
"""TensorFlow's status codes (TF_Code values 1..16) -> their classes."""

__all__ = [
    name for name, obj in globals().items() if isinstance(obj, type) and issubclass(obj, Error)
]
