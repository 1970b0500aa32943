"""ctrkit: Keras-style click-through-rate prediction on PyTorch.

    >>> import ctrkit
    >>> "din" in ctrkit.list_models()
    True
"""
from __future__ import annotations

from typing import Any

from . import _moved
_moved.install()  # old module paths (ctrkit.callbacks, ...) keep importing

from .version import __version__
from . import errors
from .errors import CtrkitError
from .features import DenseFeat, SparseFeat, VarLenSparseFeat, get_feature_names
from .registry import (ACTIVATIONS, LAYERS, LOSSES, METRICS, MODELS, OPTIMIZERS, REGULARIZERS,
                       Registry, register_activation, register_layer, register_loss,
                       register_metric, register_model, register_optimizer,
                       register_regularizer)
from . import layers  # noqa: F401  (registers activations and layers)
from . import models  # noqa: F401  (registers the built-in models)
from . import callbacks, data, metrics, mixed_precision, regularizers  # noqa: F401
from .models.base import BaseModel
from .factory import build, list_models


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
    "regularizers", "mixed_precision",
]
