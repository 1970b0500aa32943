"""Embedding regularizers by name.

A regularizer is prepared once per ``fit`` with the training columns (so it can count ids) and
asked for a penalty on every training step with that step's batch.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

from ..registry import REGULARIZERS


class Regularizer:
    """Base class: ``prepare`` once per fit, ``penalty`` every step (a scalar tensor)."""

    def __init__(self, strength: float = 0.0) -> None:
        self.strength = float(strength)

    def prepare(self, model, columns) -> None:  # noqa: D401 - hook
        """Called once at the start of ``fit`` with the training :class:`Columns`."""

    def penalty(self, model, batch: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        raise NotImplementedError  # pragma: no cover - abstract


@REGULARIZERS.register("l2")
class WholeTableL2(Regularizer):
    """DeepCTR's embedding L2: ``strength * sum(W**2)`` over every table, every step."""

    def penalty(self, model, batch):
        if self.strength == 0.0:
            return None
        return self.strength * sum((t.weight ** 2).sum() for t in model.embeddings.tables.values())


def create_regularizer(spec, strength: float) -> Regularizer:
    if isinstance(spec, Regularizer):
        return spec
    return REGULARIZERS.get(spec)(strength)
