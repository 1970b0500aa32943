"""Dice, the data-adaptive activation of DIN (Zhou et al., KDD 2018, §5.2)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
import torch.nn.functional as F

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
        fast: in training (no mask, more than one row) compute the normalisation with torch's
            fused batch-norm kernel (same function and gradients up to float rounding), and in
            eval without autograd an in-place path; False (or a mask) runs the formula op by op.

    Shapes: (N, H) -> (N, H), or (B, T, H) with an optional (B, T) bool ``mask``; masked
    (padded) positions never enter the statistics.

    Example:
        >>> d = Dice(4); d(torch.randn(8, 4)).shape
        torch.Size([8, 4])
    """

    accepts_mask = True

    def __init__(self, dim: int, eps: float = 1e-8, momentum: float = 0.1,
                 affine: bool = False, fast: bool = True) -> None:
        super().__init__()
        self.dim, self.eps, self.momentum = int(dim), float(eps), float(momentum)
        self.affine = bool(affine)
        self.alpha = nn.Parameter(torch.zeros(self.dim))
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.dim))
            self.bias = nn.Parameter(torch.zeros(self.dim))
        self.fast = bool(fast)
        self.register_buffer("running_mean", torch.zeros(self.dim))
        self.register_buffer("running_var", torch.ones(self.dim))

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not self.training:
            if self.fast and not torch.is_grad_enabled():
                return self._gate_inference(x)
            return self._gate(x, self.running_mean, self.running_var)
        if mask is None and self.fast:
            flat = x.reshape(-1, self.dim)
            if flat.shape[0] > 1:
                # torch's fused batch-norm kernel computes (s − E[s]) / sqrt(Var[s] + ε) with the
                # biased batch variance, updates the running averages (unbiased variance,
                # momentum) and has a fused backward: the same function as the formula below
                # in fewer passes over (N, H).
                z = F.batch_norm(flat, self.running_mean, self.running_var,
                                 getattr(self, "weight", None), getattr(self, "bias", None),
                                 True, self.momentum, self.eps)
                p = torch.sigmoid(z)
                return (flat * torch.addcmul(self.alpha, p, 1.0 - self.alpha)).reshape(x.shape)
        # the formula op by op; with a mask the statistics come from the valid positions only
        flat = x.reshape(-1, self.dim)
        if mask is not None:
            flat = flat[mask.reshape(-1)]
        n = flat.shape[0]
        if n == 0:  # nothing valid: fall back to the running statistics
            return self._gate(x, self.running_mean, self.running_var)
        mean = flat.mean(0)
        var = flat.var(0, unbiased=False)
        self._update_running(mean, var, n)
        return self._gate(x, mean, var)

    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
        with torch.no_grad():
            unbiased = var * (n / (n - 1)) if n > 1 else var
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(unbiased.detach(), self.momentum)

    def _gate_inference(self, x: torch.Tensor) -> torch.Tensor:
        """The eval-mode formula without autograd, in place on one buffer (4 passes fewer)."""
        scale = torch.rsqrt(self.running_var + self.eps)
        if self.affine:
            scale = scale * self.weight
        z = torch.sub(x, self.running_mean).mul_(scale)
        if self.affine:
            z.add_(self.bias)
        # p + (1 − p)·α = α + (1 − α)·p
        return z.sigmoid_().mul_(1.0 - self.alpha).add_(self.alpha).mul_(x)

    def _gate(self, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """The plain formula with the given statistics (autograd through all of it)."""
        z = (x - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            z = z * self.weight + self.bias
        p = torch.sigmoid(z)
        return x * (p + (1.0 - p) * self.alpha)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, eps={self.eps}, momentum={self.momentum}"
                + (", affine=True" if self.affine else ""))
