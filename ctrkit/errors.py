"""One exception hierarchy for ctrkit.

Every error raised for user input derives from :class:`CtrkitError`, so ``except CtrkitError``
catches all of them. Each also derives from the builtin a Python user would expect
(``ValueError``, ``TypeError``, ``KeyError``-like lookups are ``ValueError``).
"""
from __future__ import annotations


class CtrkitError(Exception):
    """Base class of every error ctrkit raises on purpose.

    Example:
        >>> import ctrkit
        >>> try:
        ...     ctrkit.build("dinn", [])
        ... except ctrkit.CtrkitError as e:       # catches every ctrkit error
        ...     print(type(e).__name__)
        UnknownNameError
    """


class ConfigError(CtrkitError, ValueError):
    """A declaration or hyperparameter is invalid (caught at construction or ``build``).

    Example:
        >>> from ctrkit import SparseFeat
        >>> SparseFeat("user", 0)
        Traceback (most recent call last):
        ...
        ctrkit.errors.ConfigError: Feature 'user': vocabulary_size must be >= 1, got 0. Fix the declaration of 'user'.
    """


class InputError(CtrkitError, ValueError):
    """Data passed to ``fit``/``predict``/``evaluate`` does not match the declared features.

    Example:
        >>> import numpy as np, ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("base", [SparseFeat("user", 3)])
        >>> model.predict({"user": np.array([0, 7])})
        Traceback (most recent call last):
        ...
        ctrkit.errors.InputError: Feature 'user' has id 7 at row 1, but its vocabulary_size is 3 (valid ids 0..2). Raise vocabulary_size or re-encode the ids.
    """


class InputTypeError(InputError, TypeError):
    """Data has the wrong type (e.g. floats or strings for a sparse id feature).

    Example:
        >>> import numpy as np, ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("base", [SparseFeat("user", 3)])
        >>> try:
        ...     model.predict({"user": np.array(["a", "b"])})
        ... except TypeError as e:                # also a TypeError
        ...     print(type(e).__name__)
        InputTypeError
    """


class UnknownNameError(CtrkitError, ValueError):
    """A name looked up in a registry is not registered.

    Example:
        >>> import ctrkit
        >>> ctrkit.ACTIVATIONS.get("rellu")
        Traceback (most recent call last):
        ...
        ctrkit.errors.UnknownNameError: Unknown activation 'rellu'. Did you mean 'relu'? Registered activations: [...]
    """


class DuplicateNameError(CtrkitError, ValueError):
    """A name is registered twice without ``override=True``.

    Example:
        >>> from ctrkit.registry import Registry
        >>> r = Registry("thing")
        >>> _ = r.register("a", object())
        >>> try:
        ...     r.register("a", object())
        ... except DuplicateNameError:
        ...     print("taken; pass override=True to replace it")
        taken; pass override=True to replace it
    """


class NotCompiledError(CtrkitError, RuntimeError):
    """``fit``/``evaluate`` was called before ``compile``.

    Example:
        >>> import numpy as np, ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("base", [SparseFeat("user", 3)])
        >>> try:
        ...     model.fit({"user": np.array([0, 1])}, np.array([0, 1]), verbose=0)
        ... except NotCompiledError:
        ...     print("call model.compile(...) first")
        call model.compile(...) first
    """


class DataNotFoundError(CtrkitError, FileNotFoundError):
    """A data set folder or one of its files is missing.

    Example:
        >>> from ctrkit.datasets import load_movielens_100k
        >>> try:
        ...     load_movielens_100k("/no/such/folder")
        ... except FileNotFoundError as e:        # also a FileNotFoundError
        ...     print(type(e).__name__)
        DataNotFoundError
    """


class CallbackError(CtrkitError, ValueError):
    """A callback is misconfigured, e.g. monitors a key that ``fit`` never logs.

    Example:
        >>> import numpy as np, ctrkit
        >>> from ctrkit import SparseFeat
        >>> from ctrkit.callbacks import EarlyStopping
        >>> model = ctrkit.build("base", [SparseFeat("user", 3)])
        >>> model.compile("adam")
        >>> try:                                  # no validation data: no val_auc
        ...     model.fit({"user": np.array([0, 1])}, np.array([0, 1]), verbose=0,
        ...               callbacks=[EarlyStopping("val_auc")])
        ... except CallbackError as e:
        ...     print("val_auc" in str(e))
        True
    """


class SerializationError(CtrkitError, ValueError):
    """A saved file is missing, truncated, tampered with or of a newer format.

    Example:
        >>> import ctrkit
        >>> try:
        ...     ctrkit.load("/no/such/model.ctrkit")
        ... except SerializationError:
        ...     print("cannot load it")
        cannot load it
    """


_NOT_FITTED_DOC = """An object that must be fitted first (e.g. an encoder) was used before ``fit``.

    Also a ``sklearn.exceptions.NotFittedError``.

    Example:
        >>> from ctrkit.data import CategoricalEncoder
        >>> from ctrkit.errors import NotFittedError
        >>> try:
        ...     CategoricalEncoder("city").transform(["Paris"])
        ... except NotFittedError:
        ...     print("fit the encoder first")
        fit the encoder first
    """


class TrainingError(CtrkitError, RuntimeError):
    """Training cannot go on, e.g. a NaN loss under ``TerminateOnNaN(raise_error=True)``.

    Example:
        >>> from ctrkit.callbacks import TerminateOnNaN
        >>> stop = TerminateOnNaN(raise_error=True)
        >>> stop.on_epoch_begin(0)
        >>> try:
        ...     stop.on_train_batch_end(3, {"loss": float("nan")})
        ... except TrainingError as e:
        ...     print(e)
        TerminateOnNaN: the loss of batch 3 in epoch 0 is nan; training stopped at once (raise_error=True).
    """


class DataRangeWarning(UserWarning):
    """Input values lie far outside what the model saw in training (they are still scored).

    Raised by ``predict`` for dense features with a fitted ``transform`` (see
    :mod:`ctrkit.layers.dense_transform`); ``warnings.simplefilter("error",
    DataRangeWarning)`` turns it into an error.

    Example:
        >>> import warnings
        >>> issubclass(DataRangeWarning, UserWarning)
        True
    """


class DataLeakageWarning(UserWarning):
    """Validation rows appear verbatim in the training rows, so validation scores are inflated.

    Silence it (when the repetition is intended) with
    ``warnings.filterwarnings("ignore", category=ctrkit.errors.DataLeakageWarning)``.

    Example:
        >>> import warnings, ctrkit
        >>> warnings.filterwarnings("ignore", category=ctrkit.errors.DataLeakageWarning)
        >>> warnings.resetwarnings()
    """


def __getattr__(name: str):
    # NotFittedError also subclasses scikit-learn's; it is built on first use so that
    # ``import ctrkit`` does not import scikit-learn (about 100 MB and seconds of start-up).
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError as _SkNotFittedError

        cls = type("NotFittedError", (CtrkitError, _SkNotFittedError), {
            "__doc__": _NOT_FITTED_DOC,
            "__module__": __name__})
        globals()["NotFittedError"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CtrkitError", "ConfigError", "InputError", "InputTypeError", "UnknownNameError",
    "DuplicateNameError", "NotCompiledError", "NotFittedError", "CallbackError", "DataNotFoundError",
    "SerializationError", "TrainingError", "DataRangeWarning", "DataLeakageWarning",
]
