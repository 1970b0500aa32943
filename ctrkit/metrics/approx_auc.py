"""A bounded-memory AUC: weighted label counts per score bin, accumulated batch by batch.

Exact AUC needs every row's prediction at the end of the epoch (4 to 8 bytes per row, see
:mod:`ctrkit.metrics.prediction_store`). ``ApproxAUC`` keeps instead, for each of a fixed
number of score bins, the weighted count of positives and of negatives (about 16 MB whatever
the number of rows), and counts a positive/negative pair that falls in one bin as half a
correct pair, as the exact AUC counts a tie. Its only error comes from pairs sharing a bin,
so it is bounded by ``0.5 * Σ_b pos_b * neg_b / (P * N)``; :meth:`AUCHistogram.result`
returns that bound with the value.

Bins are logarithmic in ``|logit|``, symmetric around ``p = 0.5``: 2**14 bins per power of two
between 2**-24 and 2**6 (relative width 2**-14 ≈ 6e-5 of the logit; about 1M bins, 16 MB).
For scores that are not heavily tied the bound is far below 1e-4 (tested; see
``docs/streaming.md``).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from ..registry import METRICS
from .base import Metric

MANTISSA_BITS = 14
EXP_MIN, EXP_MAX = -24, 6


class AUCHistogram:
    """Accumulates the AUC of batches of ``(y, p, w)``; merge processes through :meth:`state`.

    Args:
        mantissa_bits: bins per power of two of ``|logit|`` are ``2**mantissa_bits``.
        exp_min, exp_max: ``|logit|`` below ``2**exp_min`` shares the bin next to 0, above
            ``2**exp_max`` the outermost bin on its side.

    Example:
        >>> import numpy as np
        >>> acc = AUCHistogram()
        >>> acc.update(np.array([1, 0]), np.array([0.9, 0.2]))      # batch by batch
        >>> acc.update(np.array([1, 0]), np.array([0.3, 0.4]))
        >>> value, bound = acc.result()                  # exact here: 3 of 4 pairs ordered
        >>> round(value, 6), bound <= 1e-6
        (0.75, True)
    """

    def __init__(self, mantissa_bits: int = MANTISSA_BITS, exp_min: int = EXP_MIN,
                 exp_max: int = EXP_MAX) -> None:
        self.mantissa_bits, self.exp_min, self.exp_max = int(mantissa_bits), int(exp_min), \
            int(exp_max)
        #: bins per sign: 0 for |logit| < 2**exp_min, then 2**mantissa_bits per power of two
        self.half = (self.exp_max - self.exp_min) * (1 << self.mantissa_bits) + 2
        self.n_bins = 2 * self.half
        self.pos = np.zeros(self.n_bins)
        self.neg = np.zeros(self.n_bins)

    def bins(self, p: np.ndarray) -> np.ndarray:
        """The bin of each probability, from its logit (monotone: a higher probability never
        gets a lower bin). Bins are logarithmic in ``|logit|`` (at most 2**-14 of it wide),
        so the finest around ``p = 0.5``; at a CTR-like ``p = 0.01`` (logit -4.6) a bin
        spans 2.4e-4 of logit, 2.4e-6 of probability."""
        p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
        with np.errstate(divide="ignore"):
            logit = np.log(p) - np.log1p(-p)
        a = np.abs(logit)
        m, e = np.frexp(np.where(np.isinf(a), 0.0, a))  # a = m * 2**e, m in [0.5, 1)
        scale = 1 << self.mantissa_bits
        b = (e.astype(np.int64) - self.exp_min - 1) * scale + (
            (m - 0.5) * 2 * scale).astype(np.int64) + 1
        b = np.where((e <= self.exp_min) | (a == 0), 0, b)  # tiny |logit|, and 0
        b = np.where(np.isinf(a), self.half - 1, np.minimum(b, self.half - 1))
        return np.where(logit >= 0, self.half + b, self.half - 1 - b)

    def update(self, y: np.ndarray, p: np.ndarray, w: Optional[np.ndarray] = None) -> None:
        """Add one batch: labels in {0, 1}, probabilities, optional weights."""
        key = self.bins(p)
        y = np.asarray(y, dtype=np.float64)
        w = np.ones_like(y) if w is None else np.asarray(w, dtype=np.float64)
        np.add.at(self.pos, key, y * w)
        np.add.at(self.neg, key, (1.0 - y) * w)

    def state(self) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([self.pos, self.neg]))

    def load_state(self, state: torch.Tensor) -> None:
        arr = state.numpy()
        self.pos, self.neg = arr[:self.n_bins].copy(), arr[self.n_bins:].copy()

    def result(self) -> Tuple[float, float]:
        """``(AUC, bound on |AUC - exact AUC|)``; NaN when one class is absent."""
        P, N = float(self.pos.sum()), float(self.neg.sum())
        if P <= 0 or N <= 0:
            return float("nan"), float("nan")
        below = np.cumsum(self.neg) - self.neg  # negatives in lower bins
        auc = float((self.pos * (below + 0.5 * self.neg)).sum() / (P * N))
        return auc, float(0.5 * (self.pos * self.neg).sum() / (P * N))


def _approx_auc(y, p, sample_weight=None, groups=None) -> float:
    h = AUCHistogram()
    h.update(y, p, sample_weight)
    return h.result()[0]


#: ``metrics=['approx_auc']``: the bounded-memory AUC (a streamed fit keeps no per-row store
#: when every metric is such an accumulator).
APPROX_AUC = Metric("approx_auc", _approx_auc, "max", accumulator=AUCHistogram)
METRICS.register("approx_auc", APPROX_AUC)

__all__ = ["APPROX_AUC", "AUCHistogram"]
