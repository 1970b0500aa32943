"""Fitted dense transforms that live inside the model (Keras's ``Normalization`` in spirit).

A ``DenseFeat(..., transform="log1p+normalize")`` declares the transform; its statistics are
*adapted* once on the training data (the first ``fit``, or :meth:`ctrkit.BaseModel.adapt`),
held as buffers, saved in the ``.ctrkit`` file with the weights, and applied at the start of the
model's forward as tensor ops, so ``predict`` and exported artefacts (ONNX, ``.pt2``) take the
RAW dense values and transform them the same way. Transforms (in this order):

- ``log1p``: ``log(1 + x)``; values ``<= -1`` are refused (at adapt and at predict);
- ``normalize``: ``(x - mean) / std`` with the training mean and (population) std per column
  (after ``log1p`` when both are named; a constant column keeps std 1);
- ``quantile``: bucketising as Keras's ``Discretization``: the training deciles per column are
  the boundaries (:data:`QUANTILE_BUCKETS` buckets), and a value becomes its bucket's index
  scaled to [0, 1] (``#boundaries below x / #boundaries``), so outliers and skew cannot
  stretch the column. Computed as a comparison with every boundary (static shapes, exports).

The raw training range (min, max per column) is kept too: ``predict`` and ``evaluate`` count
the rows whose values lie far outside it and warn with the feature, the count and the range
(:class:`ctrkit.errors.DataRangeWarning`). "Far" is judged after the transform, where the model
sees the values: more than the range's own width below the transformed minimum or above the
transformed maximum (a constant training column: more than 1). Under ``log1p`` that is a log
scale, so ordinary heavy-tailed data does not trip it, and a value must be orders of magnitude
beyond the training maximum to count.
"""
from __future__ import annotations

import warnings
from typing import Dict, List, Sequence

import torch
from torch import nn

from .. import errors
from ..errors import DataRangeWarning, InputError
from ..features import DenseFeat

#: buckets of the ``quantile`` transform (its boundaries are the training deciles)
QUANTILE_BUCKETS = 10


class DenseTransform(nn.Module):
    """One feature's transform and its adapted statistics (buffers).

    Args:
        feature: a ``DenseFeat`` with a ``transform``.

    Example:
        >>> t = DenseTransform(DenseFeat("price", 1, transform="log1p+normalize"))
        >>> t.adapt(torch.tensor([[0.0], [3.0], [15.0]]))
        >>> [round(v, 4) for v in t(torch.tensor([[3.0], [15.0]])).flatten().tolist()]
        [0.0, 1.2247]
    """

    def __init__(self, feature: DenseFeat) -> None:
        super().__init__()
        self.name = feature.name
        parts = feature.transform.split("+")
        self.log1p, self.normalize = "log1p" in parts, "normalize" in parts
        self.quantile = "quantile" in parts
        dim = feature.dimension
        for buf, value in (("mean", 0.0), ("std", 1.0), ("lo", 0.0), ("hi", 0.0)):
            self.register_buffer(buf, torch.full((dim,), value))
        if self.quantile:  # (D, K-1) ascending boundaries per column
            self.register_buffer("boundaries", torch.zeros(dim, QUANTILE_BUCKETS - 1))
        self.register_buffer("adapted", torch.zeros((), dtype=torch.bool))

    def _check_log1p(self, values: torch.Tensor) -> None:
        if self.log1p and bool((values <= -1).any()):
            row, col = (int(i) for i in torch.nonzero(values <= -1)[0])
            raise InputError(
                f"Dense feature '{self.name}' has the value {float(values[row, col]):g} at row "
                f"{row}, but its transform log1p needs values > -1. Shift or clip the "
                f"column, or declare another transform.")

    def adapt(self, values: torch.Tensor) -> None:
        """Learn the statistics from raw training values ``(rows, dimension)``.

        Raises:
            InputError: 0 rows, or a value ``<= -1`` under ``log1p``.
        """
        values = values.detach().to(torch.float64).reshape(len(values), -1)
        if len(values) == 0:
            raise InputError(f"Dense feature '{self.name}': cannot adapt its transform on 0 rows.")
        self._check_log1p(values)
        v = torch.log1p(values) if self.log1p else values
        std = v.std(0, unbiased=False)
        self.mean.copy_(v.mean(0))
        self.std.copy_(torch.where(std > 0, std, torch.ones_like(std)))
        self.lo.copy_(values.min(0).values)
        self.hi.copy_(values.max(0).values)
        if self.quantile:
            q = torch.arange(1, QUANTILE_BUCKETS, dtype=torch.float64) / QUANTILE_BUCKETS
            self.boundaries.copy_(torch.quantile(v, q, dim=0).t())
        self.adapted.fill_(True)

    def check(self, values: torch.Tensor) -> None:
        """Refuse values the transform cannot take; warn about values far outside the range.

        Raises:
            NotFittedError: the transform was never adapted.
            InputError: a value ``<= -1`` under ``log1p``.
        """
        if not bool(self.adapted):
            raise errors.NotFittedError(
                f"Dense feature '{self.name}' declares transform=... but its statistics were "
                f"never adapted: call model.fit on in-memory training data (it adapts first) "
                f"or model.adapt(x_train) before predict.")
        values = values.reshape(len(values), -1).to(torch.float64)
        self._check_log1p(values)
        # judged where the model sees the values: after the transform (monotone increasing),
        # so a heavy-tailed column under log1p is judged on its log scale
        with torch.no_grad():
            t, lo, hi = (self(v.to(self.mean.dtype)).to(torch.float64)
                         for v in (values, self.lo[None], self.hi[None]))
        span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
        far = (t < lo - span) | (t > hi + span)
        count = int(far.any(1).sum())
        if count:
            rng = ", ".join(f"[{a:g}, {b:g}]" for a, b in zip(self.lo.tolist(), self.hi.tolist()))
            warnings.warn(
                f"Dense feature '{self.name}': {count} of {len(values)} rows hold values far "
                f"outside the training range {rng} (more than the range's width beyond it, "
                f"after the transform), e.g. "
                f"{float(values[far][0]):g}; the model never saw such values and scores them "
                f"by extrapolation. Check the units/preprocessing of the column.",
                DataRangeWarning, stacklevel=5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.log1p:
            x = torch.log1p(x)
        if self.normalize:
            x = (x - self.mean) / self.std
        if self.quantile:
            below = (x.unsqueeze(-1) >= self.boundaries).sum(-1)  # (B, D): bucket index
            x = below.to(self.mean.dtype) / self.boundaries.shape[-1]
        return x


class DenseTransforms(nn.Module):
    """The transforms of every ``DenseFeat`` that declares one; ``forward(batch)`` returns the
    batch with those columns transformed (others untouched). Empty (no state) otherwise."""

    def __init__(self, features: Sequence[DenseFeat]) -> None:
        super().__init__()
        feats = [f for f in features if isinstance(f, DenseFeat) and f.transform]
        self.names: List[str] = [f.name for f in feats]
        self.by_index = nn.ModuleList(DenseTransform(f) for f in feats)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def adapted(self) -> bool:
        return all(bool(t.adapted) for t in self.by_index)

    def adapt(self, columns: Dict[str, torch.Tensor]) -> None:
        for name, t in zip(self.names, self.by_index):
            t.adapt(columns[name])

    def check(self, columns: Dict[str, torch.Tensor]) -> None:
        for name, t in zip(self.names, self.by_index):
            t.check(columns[name])

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        out = dict(batch)
        for name, t in zip(self.names, self.by_index):
            out[name] = t(batch[name])
        return out


__all__ = ["DenseTransform", "DenseTransforms"]
