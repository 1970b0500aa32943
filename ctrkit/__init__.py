"""ctrkit: Keras-style click-through-rate prediction on PyTorch.

    >>> import ctrkit
    >>> "din" in ctrkit.list_models()
    True
"""
from __future__ import annotations

import inspect
from typing import Any, List, Optional, Sequence

__version__ = "0.1.0"

from . import errors
from .errors import CtrkitError
from .features import DenseFeat, SparseFeat, VarLenSparseFeat, get_feature_names
from .registry import (ACTIVATIONS, LAYERS, LOSSES, METRICS, MODELS, OPTIMIZERS, REGULARIZERS,
                       Registry, register_activation, register_layer, register_loss,
                       register_metric, register_model, register_optimizer,
                       register_regularizer)
from . import layers  # noqa: F401  (registers activations and layers)
from . import models  # noqa: F401  (registers the built-in models)
from . import callbacks, data, metrics, regularizers  # noqa: F401  (data registers encoders)
from .models.base import BaseModel


def list_models(pattern: Optional[str] = None, multitask: Optional[bool] = None) -> List[str]:
    """Registered model names, sorted (optionally filtered by a shell pattern like ``'d*'``).

    Args:
        pattern: a shell pattern on the names.
        multitask: None: every model; True: the multi-task models only (several outputs by
            construction, ``model.task_names``: ``esmm``, ``mmoe``, ``ple``,
            ``shared_bottom``); False: the others (one output unless built with
            ``task_names``).

    Example:
        >>> import ctrkit
        >>> "din" in ctrkit.list_models()
        True
        >>> all(name.startswith("d") for name in ctrkit.list_models("d*"))
        True
        >>> ctrkit.list_models(multitask=True)
        ['esmm', 'mmoe', 'ple', 'shared_bottom']
    """
    names = MODELS.list(pattern)
    if multitask is None:
        return names
    return [n for n in names
            if bool(getattr(MODELS.get(n), "multi_output", False)) == bool(multitask)]


def build(name: str, features: Sequence[Any], **hparams: Any) -> BaseModel:
    """Build a registered model: ``ctrkit.build("din", features, att_weight_normalization=True)``.

    Args:
        name: a registered model name (``ctrkit.list_models()``), any case.
        features: the feature declarations.
        **hparams: the model's hyperparameters (DeepCTR-Torch's names).

    Returns:
        The model, not yet compiled.

    Raises:
        UnknownNameError: ``name`` is not registered (names the closest and lists all).
        ConfigError: an unknown hyperparameter or an invalid declaration.

    Example:
        >>> import ctrkit
        >>> from ctrkit import SparseFeat, VarLenSparseFeat
        >>> features = [SparseFeat("item", 10, embedding_dim=4),
        ...             VarLenSparseFeat(SparseFeat("hist_item", 10, embedding_dim=4), 5)]
        >>> type(ctrkit.build("din", features, att_weight_normalization=True)).__name__
        'DIN'
        >>> ctrkit.build("din", features, att_hiden_size=(8,))
        Traceback (most recent call last):
        ...
        ctrkit.errors.ConfigError: Model 'din' got unknown hyperparameter(s) 'att_hiden_size' (did you mean 'att_hidden_size'?). It accepts: [...].
    """
    cls = MODELS.get(name)
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):  # pragma: no cover
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        accepted = [p for p in list(sig.parameters)[2:]]
        unknown = sorted(set(hparams) - set(accepted))
        if unknown:
            import difflib
            hints = {u: difflib.get_close_matches(u, accepted, n=1) for u in unknown}
            hint = "; ".join(f"'{u}' (did you mean '{h[0]}'?)" if h else f"'{u}'"
                             for u, h in hints.items())
            raise errors.ConfigError(f"Model '{name}' got unknown hyperparameter(s) {hint}. "
                                     f"It accepts: {accepted}.")
    model = cls(features, **hparams)
    model.registered_name = name.lower()
    return model


def load(path: Any, device: Any = None) -> BaseModel:
    """Load a model saved with ``model.save(path)``; it predicts exactly as it did.

    The file holds plain data and tensors only (no pickled objects), so loading cannot run code.

    Args:
        path: the file.
        device: where to put the model (None: the saved device, or the CPU without CUDA).

    Returns:
        The model with its features, hyperparameters, encoders and weights.

    Raises:
        SerializationError: missing, truncated, tampered or newer-format file (names the path).

    Example:
        >>> import os, tempfile
        >>> import numpy as np, ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("base", [SparseFeat("user", 3)])
        >>> path = os.path.join(tempfile.mkdtemp(), "m.ctrkit")
        >>> _ = model.save(path)
        >>> x = {"user": np.array([0, 1, 2])}
        >>> np.array_equal(ctrkit.load(path).predict(x), model.predict(x))
        True
    """
    from .persistence import load_model
    return load_model(path, device=device)


__all__ = [
    "__version__", "build", "load", "list_models", "BaseModel", "SparseFeat", "DenseFeat",
    "VarLenSparseFeat", "get_feature_names", "Registry", "register_model", "register_layer",
    "register_activation", "register_metric", "register_loss", "register_optimizer",
    "register_regularizer", "MODELS", "LAYERS", "ACTIVATIONS", "METRICS", "LOSSES",
    "OPTIMIZERS", "REGULARIZERS", "CtrkitError", "errors", "callbacks", "metrics",
    "regularizers",
]
