"""One error hierarchy: every failure a user can cause is a ``ModelportError``.

The CLI prints ``str(error)`` as a single line, so messages say what was wrong, what was
expected, and where useful what to do about it.
"""

from __future__ import annotations


class ModelportError(Exception):
    """Base class of every error modelport raises on purpose."""


class ModelLoadError(ModelportError):
    """A model file or buffer could not be read as an ONNX model."""


class UnsafeModelError(ModelLoadError):
    """A model asks for something modelport refuses to do, such as reading outside its folder."""


class InputError(ModelportError):
    """Feeds do not match the model's inputs (name, dtype, rank or dimension)."""


class BackendError(ModelportError):
    """A backend failed to prepare or run a model."""


class BackendUnavailableError(BackendError):
    """A backend is unknown or cannot be used here (its framework is missing)."""


class UnsupportedOperatorError(BackendError):
    """A backend cannot run some nodes of a model; the message lists all of them."""


class ExportError(ModelportError):
    """Exporting from a source framework to ONNX failed."""


class VerificationError(ModelportError):
    """An exported or converted model does not agree with its source."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (engines raise multi-line C++ messages), safe to
    print: messages quote names from the model, which may hold terminal escapes."""
    return printable(" ".join(str(exc).split())) or type(exc).__name__


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``), so that a name from
    a model cannot clear a terminal, move its cursor or colour a verdict."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)
