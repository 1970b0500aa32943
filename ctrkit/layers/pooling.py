"""Masked pooling of padded sequences."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..features import COMBINERS
from ..registry import LAYERS


def sequence_mask(ids: torch.Tensor, lengths: torch.Tensor = None) -> torch.Tensor:
    """(B, T) bool mask of valid positions: ``t < length`` if lengths are given, else ``id != 0``."""
    if lengths is None:
        return ids != 0
    t = torch.arange(ids.shape[1], device=ids.device)
    return t.unsqueeze(0) < lengths.reshape(-1, 1)


def masked_pool(emb: torch.Tensor, mask: torch.Tensor, combiner: str = "mean") -> torch.Tensor:
    """Pool (B, T, E) over valid positions of the (B, T) mask -> (B, E).

    Padded positions never contribute; a row with no valid position pools to zeros.
    """
    m = mask.unsqueeze(-1).to(emb.dtype)
    if combiner == "sum":
        return (emb * m).sum(1)
    if combiner == "mean":
        return (emb * m).sum(1) / m.sum(1).clamp_min(1.0)
    if combiner == "max":
        filled = emb.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
        return torch.where(mask.any(1, keepdim=True), filled, torch.zeros_like(filled))
    raise ConfigError(f"Unknown combiner {combiner!r}; use one of {list(COMBINERS)}.")


@LAYERS.register("sequence_pooling")
class SequencePooling(nn.Module):
    """Module form of :func:`masked_pool`: (B, T, E), (B, T) -> (B, E)."""

    def __init__(self, combiner: str = "mean") -> None:
        super().__init__()
        if combiner not in COMBINERS:
            raise ConfigError(f"Unknown combiner {combiner!r}; use one of {list(COMBINERS)}.")
        self.combiner = combiner

    def forward(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_pool(emb, mask, self.combiner)
