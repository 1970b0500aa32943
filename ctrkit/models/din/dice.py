"""Dice, the data-adaptive activation of DIN (Zhou et al., KDD 2018, §5.2)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ...registry import ACTIVATIONS


class _DiceTrain(torch.autograd.Function):
    """Dice with mini-batch statistics on (N, H), forward and backward fused by hand.

    Forward: torch's batch-norm kernel gives z = (s − E[s]) / sqrt(Var[s] + ε) (with γ, β if
    affine) and updates the running averages; p = sigmoid(z) in place; the output
    p·s + (1 − p)·α·s = lerp(p·s, s, α). Only s and p are kept for backward (autograd through
    the same ops keeps s, p, the gate and more buffers). Backward, with t = g·s:
    dL/dα = Σ t·(1 − p), dL/dz = (1 − α)·t·p·(1 − p) through torch's batch-norm backward
    (which carries the gradient through the batch statistics), plus the direct term
    g·(α + (1 − α)·p). The same function and gradients as the op-by-op formula, faster (see
    ``docs/performance.md``) and two (N, H) buffers lighter.
    """

    @staticmethod
    def forward(ctx, s, alpha, weight, bias, running_mean, running_var, momentum, eps):
        z, mean, invstd = torch.native_batch_norm(s, weight, bias, running_mean, running_var,
                                                  True, momentum, eps)
        p = z.sigmoid_()
        ctx.save_for_backward(s, p, alpha, weight, mean, invstd)
        ctx.eps = eps
        return torch.mul(p, s).lerp_(s, alpha)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        s, p, alpha, weight, mean, invstd = ctx.saved_tensors
        t = g * s
        sum_t = t.sum(0)
        t.mul_(p)
        grad_alpha = sum_t - t.sum(0)
        t.addcmul_(t, p, value=-1.0).mul_(1.0 - alpha)  # dL/dz
        affine = weight is not None
        grad_s, grad_w, grad_b = torch.ops.aten.native_batch_norm_backward(
            t, s, weight, None, None, mean, invstd, True, ctx.eps, [True, affine, affine])
        grad_s.add_(torch.mul(g, p, out=t).lerp_(g, alpha))  # t is free again: reuse it
        return grad_s, grad_alpha, grad_w, grad_b, None, None, None, None


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
        fast: in training (no mask, more than one row) a hand-fused forward and backward built
            on torch's batch-norm kernels (same function and gradients up to float rounding),
            and in eval without autograd an in-place path; False (or a mask) runs the formula
            op by op.

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
        if x.dtype != self.alpha.dtype:  # a mixed dtype policy: statistics in float32
            return self.forward(x.to(self.alpha.dtype), mask).to(x.dtype)
        if not self.training:
            if self.fast and not torch.is_grad_enabled():
                return self._gate_inference(x)
            return self._gate(x, self.running_mean, self.running_var)
        if mask is None and self.fast:
            flat = x.reshape(-1, self.dim)
            if flat.shape[0] > 1:
                y = _DiceTrain.apply(flat, self.alpha, getattr(self, "weight", None),
                                     getattr(self, "bias", None), self.running_mean,
                                     self.running_var, self.momentum, self.eps)
                return y.reshape(x.shape)
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
        """The eval-mode formula without autograd, four in-place passes over one new buffer
        (the per-unit constants come from the current running statistics)."""
        scale = torch.rsqrt(self.running_var + self.eps)
        if self.affine:
            scale = scale * self.weight
        shift = -self.running_mean * scale
        if self.affine:
            shift = shift + self.bias
        # z = (x − E)·scale (+ β);  p·x + (1 − p)·α·x = lerp(p·x, x, α)
        return torch.addcmul(shift, x, scale).sigmoid_().mul_(x).lerp_(x, self.alpha)

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
