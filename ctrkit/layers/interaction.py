"""Feature-interaction layers over field embeddings: FM second order and PNN inner products."""
from __future__ import annotations

import torch
from torch import nn

from ..registry import LAYERS


@LAYERS.register("fm")
class FM(nn.Module):
    """Factorization-machine second-order term: ``sum_{i<j} <v_i, v_j>`` per row.

    Computed as ``0.5 * sum_e((sum_f v_fe)^2 - sum_f v_fe^2)`` in O(F·E).

    Shapes: (B, F, E) -> (B,).

    Example:
        >>> FM()(torch.ones(2, 3, 4)).tolist()      # 3 pairs of dot products 4
        [12.0, 12.0]
    """

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        square_of_sum = fields.sum(dim=1).pow(2)
        sum_of_square = fields.pow(2).sum(dim=1)
        return 0.5 * (square_of_sum - sum_of_square).sum(dim=-1)


@LAYERS.register("inner_product")
class InnerProduct(nn.Module):
    """All pairwise inner products of F fields (the IPNN product layer's quadratic signal).

    Args:
        num_fields: F; pairs (i, j) with i < j in row-major order.

    Shapes: (B, F, E) -> (B, F·(F−1)/2).
    """

    def __init__(self, num_fields: int) -> None:
        super().__init__()
        i, j = torch.triu_indices(num_fields, num_fields, offset=1)
        self.register_buffer("left", i, persistent=False)
        self.register_buffer("right", j, persistent=False)
        self.num_pairs = int(i.numel())

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        return (fields[:, self.left] * fields[:, self.right]).sum(dim=-1)
