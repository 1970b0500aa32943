"""The exact ROC AUC of a whole pass, in little memory beyond the predictions themselves.

``AUC = Σ_{i positive} Σ_{j negative} w_i·w_j·([s_j < s_i] + ½[s_j = s_i]) / (P·N)`` with
``P``, ``N`` the positives' and negatives' weight sums (all weights 1 without
``sample_weight``): the value of ``sklearn.metrics.roc_auc_score``, a tie counting one half.

It is computed without a sort index over all rows and without any full-size float64
temporary: the rows of the **smaller class** are copied and sorted in place, and the rows of
the other class, read :data:`CHUNK` rows at a time (and sorted, for speed), find by binary search how much of the
smaller class lies strictly below them and how much ties with them.

* Unweighted, the pair counts are int64 sums, so the AUC is exact up to its final division.
  Extra memory: one bool per row (the labels' mask) and one score per row of the smaller
  class (8 bytes for float64 scores), plus a chunk.
* Weighted, the smaller class is sorted together with its weights (one complex128 per row:
  real part the score, imaginary part the weight; ``np.sort`` orders by the real part first)
  and a running sum of its weights gives, at each binary-search position, the weight below
  it. Extra memory: one bool per row and 32 bytes per row of the smaller class, plus a chunk.

With ``n`` rows the epoch-end AUC so needs at most ``5n`` bytes (``17n`` weighted) next to the
``8n`` bytes of float64 probabilities; for CTR data, whose positives are a small minority,
little more than ``n``. (The tie-aware GAUC, :func:`ctrkit.metrics.gauc`, sorts by group and
score with int64 keys and needs several times more.)
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np

from ..errors import InputError

#: rows of the larger class searched at a time (bounds the search results to 16 MB)
CHUNK = 1 << 20


def _chunks(n: int) -> Iterator[slice]:
    for a in range(0, n, CHUNK):
        yield slice(a, min(a + CHUNK, n))


def _gather(values: np.ndarray, mask: np.ndarray, count: int, dtype, out=None) -> np.ndarray:
    """``values[mask]`` as ``dtype``, written chunk by chunk into ``out`` (no full-size
    temporary)."""
    out = np.empty(count, dtype=dtype) if out is None else out
    k = 0
    for sl in _chunks(len(values)):
        part = values[sl][mask[sl]]
        out[k:k + len(part)] = part
        k += len(part)
    return out


def exact_auc(y_true: np.ndarray, y_score: np.ndarray,
              sample_weight: Optional[np.ndarray] = None) -> Tuple[float, float, float]:
    """``(AUC, P, N)``: the exact tie-aware ROC AUC and the positives' and negatives' weight
    sums (their counts without weights). The AUC is NaN when ``P`` or ``N`` is 0.

    Args:
        y_true: labels, shape (n,), each 0 or 1.
        y_score: finite scores, shape (n,); only their order matters (equal scores tie).
            With ``sample_weight`` they are compared as float64 (exact for ctrkit's float64
            probabilities and any float32 or smaller float).
        sample_weight: optional finite non-negative weights, shape (n,).

    Raises:
        InputError: a label other than 0 or 1, or lengths that differ.

    Example:
        >>> exact_auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.5, 0.5]))
        (0.875, 2.0, 2.0)
    """
    y = np.asarray(y_true).reshape(-1)
    s = np.asarray(y_score).reshape(-1)
    w = None if sample_weight is None else np.asarray(sample_weight).reshape(-1)
    if len(s) != len(y) or (w is not None and len(w) != len(y)):
        raise InputError(f"AUC: y_true, y_score and sample_weight need one entry per row, got "
                         f"lengths {len(y)}, {len(s)} and {None if w is None else len(w)}.")
    is_pos = y == 1
    n_pos = int(np.count_nonzero(is_pos))
    n_neg = int(np.count_nonzero(y == 0))
    if n_pos + n_neg != len(y):
        bad = int(np.argmax((y != 0) & (y != 1)))
        raise InputError(f"AUC: y_true has label {y[bad].item()!r} at row {bad}; labels must "
                         f"be 0 or 1.")
    # Sort the smaller class (``small``); search it with the other one (``large``), counting
    # for each row of ``large`` the part of ``small`` strictly below it and tied with it.
    small_is_pos = n_pos <= n_neg
    small = is_pos if small_is_pos else np.logical_not(is_pos, out=is_pos)  # no second mask
    n_small = n_pos if small_is_pos else n_neg
    if w is None:
        if n_pos == 0 or n_neg == 0:
            return float("nan"), float(n_pos), float(n_neg)
        keys = _gather(s, small, n_small, s.dtype)
        keys.sort()
        twice = 0  # Σ over ``large`` of (#small < s) + (#small <= s): exact int64
        for sl in _chunks(len(y)):
            q = s[sl][~small[sl]]  # a copy: sorted in place, as sorted queries search faster
            q.sort()
            twice += int(np.searchsorted(keys, q, side="left").sum(dtype=np.int64))
            twice += int(np.searchsorted(keys, q, side="right").sum(dtype=np.int64))
        P, N = float(n_pos), float(n_neg)
        below = twice / 2.0   # pairs with the positive above (small = negatives) or below
    else:
        both = np.empty(n_small, dtype=np.complex128)
        _gather(s, small, n_small, np.float64, out=both.real)
        _gather(w, small, n_small, np.float64, out=both.imag)
        both.sort()                                  # by score (ties: by weight, irrelevant)
        cum = np.empty(n_small + 1)
        cum[0] = 0.0
        np.cumsum(both.imag, out=cum[1:])            # weight of the first k sorted rows
        keys = np.ascontiguousarray(both.real)
        del both
        W_small = float(cum[-1])
        W_large = 0.0
        twice = 0.0
        for sl in _chunks(len(y)):
            keep = ~small[sl]
            q, wq = s[sl][keep], w[sl][keep].astype(np.float64)
            order = np.argsort(q)                    # sorted queries search faster
            q, wq = q[order], wq[order]
            W_large += float(wq.sum())
            twice += float(np.dot(wq, cum[np.searchsorted(keys, q, side="left")]))
            twice += float(np.dot(wq, cum[np.searchsorted(keys, q, side="right")]))
        P, N = (W_small, W_large) if small_is_pos else (W_large, W_small)
        if P <= 0 or N <= 0:
            return float("nan"), P, N
        below = twice / 2.0
    # ``below``: weight of (large, small) pairs with the small row below, ties one half.
    wins = below if not small_is_pos else P * N - below
    return wins / (P * N), P, N


__all__ = ["exact_auc", "CHUNK"]
