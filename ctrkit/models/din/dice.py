"""Dice, the data-adaptive activation of DIN (Zhou et al., KDD 2018, §5.2)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ...registry import ACTIVATIONS


@ACTIVATIONS.register("dice")
class Dice(nn.Module):
    """``f(s) = p(s)·s + (1 − p(s))·α·s`` with ``p(s) = sigmoid((s − E[s]) / sqrt(Var[s] + ε))``.

    In training, E[s] and Var[s] are the mini-batch statistics per unit (gradients flow through
    them, as in batch norm) and update running averages; in eval the running averages are
    used, so a row's output never depends on the rest of its batch. α is learned per unit
    (initialised to 0). By default there is no affine scale/shift inside the sigmoid: the
    paper's formula has none (DeepCTR's Dice is a BatchNorm1d with one; ``affine=True``
    reproduces that: ``p(s) = sigmoid(γ·(s − E[s]) / sqrt(Var[s] + ε) + β)``).

    Args:
        dim: number of units H.
        eps: ε of the formula (paper: 1e-8).
        momentum: weight of the newest batch in the running averages.
        affine: learn a per-unit scale γ (init 1) and shift β (init 0) of the normalised input.

    Shapes: (N, H) -> (N, H), or (B, T, H) with an optional (B, T) bool ``mask``; masked
    (padded) positions never enter the statistics.

    Example:
        >>> d = Dice(4); d(torch.randn(8, 4)).shape
        torch.Size([8, 4])
    """

    accepts_mask = True

    def __init__(self, dim: int, eps: float = 1e-8, momentum: float = 0.1,
                 affine: bool = False) -> None:
        super().__init__()
        self.dim, self.eps, self.momentum = int(dim), float(eps), float(momentum)
        self.affine = bool(affine)
        self.alpha = nn.Parameter(torch.zeros(self.dim))
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.dim))
            self.bias = nn.Parameter(torch.zeros(self.dim))
        self.register_buffer("running_mean", torch.zeros(self.dim))
        self.register_buffer("running_var", torch.ones(self.dim))

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.training:
            flat = x.reshape(-1, self.dim)
            if mask is not None:
                flat = flat[mask.reshape(-1)]
            n = flat.shape[0]
            if n == 0:  # nothing valid: fall back to the running statistics
                mean, var = self.running_mean, self.running_var
            else:
                mean = flat.mean(0)
                var = flat.var(0, unbiased=False)
                with torch.no_grad():
                    unbiased = var * (n / (n - 1)) if n > 1 else var
                    self.running_mean.lerp_(mean.detach(), self.momentum)
                    self.running_var.lerp_(unbiased.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        z = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            z = z * self.weight + self.bias
        p = torch.sigmoid(z)
        return x * (p + (1.0 - p) * self.alpha)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, eps={self.eps}, momentum={self.momentum}"
                + (", affine=True" if self.affine else ""))
