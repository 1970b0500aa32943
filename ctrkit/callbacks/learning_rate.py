"""Reading and setting the learning rate of the optimizer ``compile`` built (shared by
LearningRateScheduler and ReduceLROnPlateau)."""
from __future__ import annotations

from typing import Any, Dict, List

import torch

from ..errors import CallbackError


def optimizer_of(model, owner: str) -> torch.optim.Optimizer:
    """The optimizer of a compiled model.

    Raises:
        CallbackError: the model has no optimizer (it was not compiled).
    """
    optimizer = getattr(getattr(model, "trainer", None), "optimizer", None)
    if optimizer is None:
        raise CallbackError(f"{owner} changes the optimizer's learning rate, but the model has "
                            f"no optimizer; call model.compile(...) before fit.")
    return optimizer


def get_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the first parameter group (the one that is logged as ``lr``)."""
    return float(optimizer.param_groups[0]["lr"])


def get_lrs(optimizer: torch.optim.Optimizer) -> List[float]:
    return [float(g["lr"]) for g in optimizer.param_groups]


def set_lrs(optimizer: torch.optim.Optimizer, lrs: List[float]) -> None:
    for group, lr in zip(optimizer.param_groups, lrs):
        group["lr"] = float(lr)


def log_lr(logs: Dict[str, Any], optimizer: torch.optim.Optimizer) -> None:
    """Log the learning rate the epoch ran with, under Keras 3's key ``learning_rate`` and
    under ``lr`` (Keras 2's and DeepCTR users' key)."""
    logs["lr"] = logs["learning_rate"] = get_lr(optimizer)
