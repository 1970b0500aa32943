"""Build a registered model by name, and list the names (``ctrkit.build``, ``ctrkit.list_models``).

The models register themselves when ``ctrkit`` is imported (``ctrkit/models/__init__.py``); this
module only looks names up in :data:`ctrkit.registry.MODELS`, so it imports no model.
"""
from __future__ import annotations

import difflib
import inspect
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from .errors import ConfigError
from .registry import MODELS

if TYPE_CHECKING:  # pragma: no cover
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


def build(name: str, features: Sequence[Any], **hparams: Any) -> "BaseModel":
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
    towers = None
    if sig is None or "task_names" not in sig.parameters:  # a single-task model
        towers = _tower_args(name, hparams)
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        accepted = [p for p in list(sig.parameters)[2:]]
        unknown = sorted(set(hparams) - set(accepted))
        if unknown:
            hints = {u: difflib.get_close_matches(u, accepted, n=1) for u in unknown}
            hint = "; ".join(f"'{u}' (did you mean '{h[0]}'?)" if h else f"'{u}'"
                             for u, h in hints.items())
            raise ConfigError(f"Model '{name}' got unknown hyperparameter(s) {hint}. "
                                     f"It accepts: {accepted}.")
    model = cls(features, **hparams)
    model.registered_name = name.lower()
    if towers is not None:
        model.add_task_towers(*towers)  # (models/towers.py)
    return model


def _tower_args(name: str, hparams: Dict[str, Any]) -> Optional[Tuple[Any, Any]]:
    """Pop ``task_names``/``task_types`` from a single-task model's ``hparams``: None when
    ``task_names`` is None (the model is built exactly as without them), else the task names
    and types (types default to the model's ``task``, one for all)."""
    task_names = hparams.pop("task_names", None)
    task_types = hparams.pop("task_types", None)
    if task_names is None:
        if task_types is not None:
            raise ConfigError(f"Model '{name}' got task_types={task_types!r} without "
                              f"task_names; name the tasks too (task_names=('ctr', 'cvr')).")
        return None
    if task_types is None:
        return task_names, hparams.get("task", "binary")
    if "task" in hparams:
        raise ConfigError(f"Model '{name}' got task={hparams['task']!r} and "
                          f"task_types={task_types!r}; with task_names, give the types as "
                          f"task_types only.")
    return task_names, task_types



__all__ = ["build", "list_models"]
