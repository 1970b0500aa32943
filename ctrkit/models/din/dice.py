"""Dice, the data-adaptive activation of DIN (Zhou et al., KDD 2018, §5.2)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ...registry import ACTIVATIONS


class _DiceTrain(torch.autograd.Function):
    """Dice on (N, H) with mini-batch statistics, with a hand-written backward.

    The same function as the plain formula (batch-norm-style gradients through the mean and
    variance included) in fewer passes over (N, H): the forward saves x, p and the per-unit
    mean and 1/std only. Returns (out, mean, biased var); the statistics carry no gradient.
    """

    @staticmethod
    def forward(ctx, x, alpha, weight, bias, eps):
        mean = x.mean(0)
        xc = x - mean
        var = xc.square().mean(0)
        inv = torch.rsqrt(var + eps)
        z = xc.mul_(inv)  # our own buffer: normalise in place
        if weight is not None:
            z = torch.addcmul(bias, z, weight)
        p = z.sigmoid_()
        out = torch.addcmul(alpha, p, 1.0 - alpha).mul_(x)
        ctx.save_for_backward(x, p, alpha, mean, inv, weight)
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, g, _g_mean, _g_var):
        # z = γ·x̂ + β, x̂ = (x − μ)·inv; out = x·(α + (1 − α)·p), p = sigmoid(z). With
        # d' = g·x·p·(1 − p), dL/dz = (1 − α)·d', and batch norm's backward
        # inv·(dz − mean(dz) − x̂·mean(dz·x̂)) has per-unit factors only, so it is applied
        # as gx += a·d' + b·(x − μ) + c with per-unit vectors a, b, c.
        x, p, alpha, mean, inv, weight = ctx.saved_tensors
        n = x.shape[0]
        one_minus_alpha = 1.0 - alpha
        gx = torch.addcmul(alpha, p, one_minus_alpha).mul_(g)   # through the gate's x factor
        u = g * x
        u.addcmul_(u, p, value=-1.0)                            # g·x·(1 − p)
        g_alpha = u.sum(0) if ctx.needs_input_grad[1] else None
        d = u.mul_(p)                                           # g·x·p·(1 − p)
        xc = x - mean
        s1 = d.sum(0)
        q = (d * xc).sum(0).mul_(inv)                           # Σ d'·x̂
        scale = one_minus_alpha if weight is None else one_minus_alpha * weight
        g_weight = g_bias = None
        if weight is not None:
            g_weight = one_minus_alpha * q if ctx.needs_input_grad[2] else None
            g_bias = one_minus_alpha * s1 if ctx.needs_input_grad[3] else None
        a = scale * inv
        gx.addcmul_(d, a).addcmul_(xc, -a * inv * q / n).sub_(a * s1 / n)
        return gx, g_alpha, g_weight, g_bias, None


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
        fast: in training, use the fused forward/backward (same function and gradients up to
            float rounding, fewer passes and saved tensors) when no mask is given, and in eval
            without autograd an in-place path; False (or a mask) runs the formula through
            autograd op by op (needed for higher-order gradients).

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
            if flat.shape[0] > 0:
                out, mean, var = _DiceTrain.apply(flat, self.alpha, getattr(self, "weight", None),
                                                  getattr(self, "bias", None), self.eps)
                self._update_running(mean, var, flat.shape[0])
                return out.reshape(x.shape)
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
