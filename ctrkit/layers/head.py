"""Prediction head: a bias on the logit, and the task's output transform."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import LAYERS

TASKS = ("binary", "regression")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError(f"task must be one of {list(TASKS)}, got {task!r}.")
    return task


@LAYERS.register("prediction_head")
class PredictionHead(nn.Module):
    """Adds a learned bias to the logit; :meth:`output` maps logits to predictions.

    binary: ``sigmoid``; regression: identity. Shapes: (B,) -> (B,).

    Args:
        task: ``'binary'`` or ``'regression'``.
        use_bias: learn a bias on the logit (initialised to 0).

    Example:
        >>> import torch
        >>> head = PredictionHead("binary")
        >>> logits = head(torch.tensor([0.0, 2.0]))
        >>> head.output(logits).tolist()          # sigmoid
        [0.5, 0.8807970285415649]
    """

    def __init__(self, task: str = "binary", use_bias: bool = True) -> None:
        super().__init__()
        self.task = check_task(task)
        self.bias = nn.Parameter(torch.zeros(1)) if use_bias else None

    def forward(self, logit: torch.Tensor) -> torch.Tensor:
        return logit + self.bias if self.bias is not None else logit

    def output(self, logit: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logit) if self.task == "binary" else logit
