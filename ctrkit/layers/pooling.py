"""Masked pooling of padded sequences."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..features import COMBINERS
from ..registry import LAYERS


def sequence_mask(ids: torch.Tensor, lengths: torch.Tensor = None) -> torch.Tensor:
    """(B, T) bool mask of valid positions: ``t < length`` if lengths are given, else ``id != 0``.

    Example:
        >>> import torch
        >>> ids = torch.tensor([[3, 4, 0], [5, 0, 0]])
        >>> sequence_mask(ids).tolist()
        [[True, True, False], [True, False, False]]
        >>> sequence_mask(ids, torch.tensor([1, 0])).tolist()     # lengths win over ids
        [[True, False, False], [False, False, False]]
    """
    if lengths is None:
        return ids != 0
    t = torch.arange(ids.shape[1], device=ids.device)
    return t.unsqueeze(0) < lengths.reshape(-1, 1)


def masked_pool(emb: torch.Tensor, mask: torch.Tensor, combiner: str = "mean") -> torch.Tensor:
    """Pool (B, T, E) over valid positions of the (B, T) mask -> (B, E).

    Padded positions never contribute; a row with no valid position pools to zeros.

    Example:
        >>> import torch
        >>> emb = torch.tensor([[[1.0], [3.0], [100.0]], [[7.0], [0.0], [0.0]]])  # (2, 3, 1)
        >>> mask = torch.tensor([[True, True, False], [False, False, False]])
        >>> masked_pool(emb, mask, "mean").tolist(), masked_pool(emb, mask, "max").tolist()
        ([[2.0], [0.0]], [[3.0], [0.0]])
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
    """Module form of :func:`masked_pool`: (B, T, E), (B, T) -> (B, E).

    Example:
        >>> import torch
        >>> pool = SequencePooling("sum")
        >>> pool(torch.ones(2, 3, 4), torch.tensor([[True, True, False]] * 2)).shape
        torch.Size([2, 4])
    """

    def __init__(self, combiner: str = "mean") -> None:
        super().__init__()
        if combiner not in COMBINERS:
            raise ConfigError(f"Unknown combiner {combiner!r}; use one of {list(COMBINERS)}.")
        self.combiner = combiner

    def forward(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_pool(emb, mask, self.combiner)
