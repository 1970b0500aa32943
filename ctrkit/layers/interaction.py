"""Feature-interaction layers over field embeddings: FM second order and PNN inner/outer
products."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

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
        # separate storages (triu_indices' rows are views of one): an exported program
        # saves each buffer whole
        self.register_buffer("left", i.clone(), persistent=False)
        self.register_buffer("right", j.clone(), persistent=False)
        self.num_pairs = int(i.numel())

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        return (fields[:, self.left] * fields[:, self.right]).sum(dim=-1)


#: kernel shapes of the outer-product layer, per kind (P pairs, E embedding width).
KERNEL_TYPES = ("mat", "vec", "num")


@LAYERS.register("outer_product")
class OuterProduct(nn.Module):
    """The OPNN product layer: one learned bilinear score per pair of fields.

    For the pair ``(i, j)`` (row-major, i < j) it returns ``v_i^T W_ij v_j`` where ``W_ij``
    is a full (E, E) matrix (``kernel_type='mat'``), a diagonal (``'vec'``) or a scalar
    times the identity (``'num'``); DeepCTR-Torch's ``kernel_type`` names.

    Args:
        num_fields: F.
        embedding_dim: E.
        kernel_type: ``'mat'``, ``'vec'`` or ``'num'``.

    Shapes: (B, F, E) -> (B, F·(F−1)/2).

    Raises:
        ConfigError: an unknown ``kernel_type``.
    """

    def __init__(self, num_fields: int, embedding_dim: int, kernel_type: str = "mat") -> None:
        super().__init__()
        if kernel_type not in KERNEL_TYPES:
            raise ConfigError(f"kernel_type must be one of {list(KERNEL_TYPES)}, got "
                              f"{kernel_type!r}.")
        i, j = torch.triu_indices(num_fields, num_fields, offset=1)
        # separate storages (triu_indices' rows are views of one): an exported program
        # saves each buffer whole
        self.register_buffer("left", i.clone(), persistent=False)
        self.register_buffer("right", j.clone(), persistent=False)
        self.num_pairs = int(i.numel())
        self.kernel_type = kernel_type
        shape = {"mat": (self.num_pairs, embedding_dim, embedding_dim),
                 "vec": (self.num_pairs, embedding_dim), "num": (self.num_pairs, 1)}[kernel_type]
        self.kernel = nn.Parameter(torch.empty(shape))
        nn.init.xavier_uniform_(self.kernel.view(self.num_pairs, -1))

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        p, q = fields[:, self.left], fields[:, self.right]            # (B, P, E) each
        if self.kernel_type == "mat":
            return torch.einsum("bpe,pef,bpf->bp", p, self.kernel, q)
        return (p * q * self.kernel).sum(dim=-1)
