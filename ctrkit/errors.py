"""One exception hierarchy for ctrkit.

Every error raised for user input derives from :class:`CtrkitError`, so ``except CtrkitError``
catches all of them. Each also derives from the builtin a Python user would expect
(``ValueError``, ``TypeError``, ``KeyError``-like lookups are ``ValueError``).
"""
from __future__ import annotations


class CtrkitError(Exception):
    """Base class of every error ctrkit raises on purpose."""


class ConfigError(CtrkitError, ValueError):
    """A declaration or hyperparameter is invalid (caught at construction or ``build``)."""


class InputError(CtrkitError, ValueError):
    """Data passed to ``fit``/``predict``/``evaluate`` does not match the declared features."""


class InputTypeError(InputError, TypeError):
    """Data has the wrong type (e.g. floats or strings for a sparse id feature)."""


class UnknownNameError(CtrkitError, ValueError):
    """A name looked up in a registry is not registered."""


class DuplicateNameError(CtrkitError, ValueError):
    """A name is registered twice without ``override=True``."""


class NotCompiledError(CtrkitError, RuntimeError):
    """``fit``/``evaluate`` was called before ``compile``."""


class DataNotFoundError(CtrkitError, FileNotFoundError):
    """A data set folder or one of its files is missing."""


class CallbackError(CtrkitError, ValueError):
    """A callback is misconfigured, e.g. monitors a key that ``fit`` never logs."""


class SerializationError(CtrkitError, ValueError):
    """A saved file is missing, truncated, tampered with or of a newer format."""


class TrainingError(CtrkitError, RuntimeError):
    """Training cannot go on, e.g. a NaN loss under ``TerminateOnNaN(raise_error=True)``."""


def __getattr__(name: str):
    # NotFittedError also subclasses scikit-learn's; it is built on first use so that
    # ``import ctrkit`` does not import scikit-learn (about 100 MB and seconds of start-up).
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError as _SkNotFittedError

        cls = type("NotFittedError", (CtrkitError, _SkNotFittedError), {
            "__doc__": "An object that must be fitted first (e.g. an encoder) was used "
                       "before ``fit``. Also a ``sklearn.exceptions.NotFittedError``.",
            "__module__": __name__})
        globals()["NotFittedError"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CtrkitError", "ConfigError", "InputError", "InputTypeError", "UnknownNameError",
    "DuplicateNameError", "NotCompiledError", "NotFittedError", "CallbackError", "DataNotFoundError",
    "SerializationError", "TrainingError",
]
