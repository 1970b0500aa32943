"""Losses by name. Built-ins take logits (numerically stable) and reduce by the mean, so a
result does not depend on batch size; ``sample_weight`` multiplies each row's loss."""
from __future__ import annotations

from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .registry import LOSSES


class Loss:
    """A loss: ``loss(output, y_true, weight) -> scalar``.

    Args:
        fn: elementwise loss ``fn(output, y_true) -> (B,)``.
        from_logits: ``output`` is the raw logit (True) or the prediction (False).
    """

    def __init__(self, name: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 from_logits: bool = True) -> None:
        self.name, self.fn, self.from_logits = name, fn, from_logits

    def __call__(self, output: torch.Tensor, y: torch.Tensor,
                 weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        per_row = self.fn(output, y)
        if weight is not None:
            per_row = per_row * weight
        return per_row.mean()


def _bce_logits(z, y):
    return F.binary_cross_entropy_with_logits(z, y, reduction="none")


for _l in (Loss("binary_crossentropy", _bce_logits), Loss("logloss", _bce_logits),
           Loss("mse", lambda z, y: F.mse_loss(z, y, reduction="none")),
           Loss("mae", lambda z, y: F.l1_loss(z, y, reduction="none")),
           Loss("huber", lambda z, y: F.huber_loss(z, y, reduction="none"))):
    LOSSES.register(_l.name, _l)

#: Keras's long names of the same losses.
LOSS_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae",
                "log_loss": "logloss"}
for _alias, _target in LOSS_ALIASES.items():
    LOSSES.register(_alias, LOSSES.get(_target))

_TASK_LOSSES = {"binary": ("binary_crossentropy", "logloss"), "regression": ("mse", "mae", "huber")}


def get_loss(spec: Union[str, Loss, Callable], task: str) -> Loss:
    """Resolve a loss name, :class:`Loss` or callable ``f(y_pred, y_true) -> scalar``.

    A plain callable receives predictions (probabilities for a binary task), as in DeepCTR.
    """
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        loss = LOSSES.get(spec)
        if isinstance(loss, Loss) and loss.name in sum(_TASK_LOSSES.values(), ()):
            if loss.name not in _TASK_LOSSES[task]:
                raise ConfigError(f"loss '{spec}' does not fit task='{task}'; use one of "
                                  f"{list(_TASK_LOSSES[task])}.")
        return loss if isinstance(loss, Loss) else Loss(spec, loss, from_logits=False)
    if callable(spec):
        name = getattr(spec, "__name__", type(spec).__name__)
        wrapped = Loss(name, lambda p, y: spec(p, y).reshape(-1), from_logits=False)
        return wrapped
    raise ConfigError(f"loss must be a name, a ctrkit Loss or a callable, got {spec!r}.")
