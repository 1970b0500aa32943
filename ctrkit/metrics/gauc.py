"""GAUC, the DIN paper's user-weighted AUC, and RelaImpr.

``GAUC = Σ_g w_g·AUC_g / Σ_g w_g`` over groups g (usually users), where ``AUC_g`` is the exact
AUC of the group's rows (a tie between a positive and a negative counts one half, as in
``sklearn.metrics.roc_auc_score``) and ``w_g`` is the group's number of rows
(``'impressions'``, the paper's choice), its number of positives (``'clicks'``) or 1
(``'uniform'``). A group whose rows are all one class has no AUC; it is skipped and counted.

The computation is vectorised over all groups: one ``lexsort`` by (group, score), then tie
blocks and per-group sums with ``np.add.reduceat``; there is no Python loop over groups.

``sample_weight`` (optional) makes each group's AUC the weighted AUC that
``roc_auc_score(..., sample_weight=w)`` computes (a positive/negative pair counts ``w_i·w_j``),
and the group weights become weight sums (``'impressions'``: Σ w, ``'clicks'``: Σ w·y). An
integer weight therefore behaves exactly like repeating the row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..errors import ConfigError, InputError
from ..registry import METRICS
from .base import Metric

GROUP_WEIGHTINGS = ("impressions", "clicks", "uniform")


@dataclass(frozen=True)
class GAUCResult:
    """What :func:`gauc` computed, with ``return_details=True``.

    Attributes:
        value: the GAUC.
        n_groups: number of distinct groups in the data.
        n_groups_used: groups with both classes (they make up the average).
        n_groups_skipped: groups whose rows are all one class (no AUC; left out).
        n_rows_skipped: rows belonging to skipped groups.
        groups: the ids of the used groups, sorted.
        group_auc: AUC of each used group, aligned with ``groups``.
        group_weight: weight of each used group in the average, aligned with ``groups``.

    Example:
        >>> res = gauc([1, 0, 1, 0, 1], [0.9, 0.1, 0.2, 0.8, 0.5], groups=[7, 7, 8, 8, 9],
        ...            return_details=True)
        >>> res.value, res.n_groups_used, res.n_groups_skipped, res.groups.tolist()
        (0.5, 2, 1, [7, 8])
    """

    value: float
    n_groups: int
    n_groups_used: int
    n_groups_skipped: int
    n_rows_skipped: int
    groups: np.ndarray = field(repr=False)
    group_auc: np.ndarray = field(repr=False)
    group_weight: np.ndarray = field(repr=False)

    def __float__(self) -> float:
        return float(self.value)


def _column(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"gauc: {name} must be one value per row, shape (n,), got shape "
                         f"{arr.shape}.")
    return arr


def _group_codes(g: np.ndarray, n: int) -> np.ndarray:
    """int64 codes in [0, n·k) with equal codes for equal groups and order kept."""
    if g.dtype.kind in "iub" and len(g):
        lo, hi = int(g.min()), int(g.max())
        if hi - lo < (1 << 62) // max(n, 1):  # the key below cannot overflow
            return g.astype(np.int64) - lo if g.dtype.kind != "u" else (g - lo).astype(np.int64)
    if g.dtype.kind == "O":
        g = g.astype(str)
    return np.unique(g, return_inverse=True)[1].reshape(-1).astype(np.int64)


def gauc(y_true: Any, y_pred: Any, groups: Any, weights: str = "impressions",
         sample_weight: Any = None, return_details: bool = False):
    """Group-weighted AUC (the DIN paper's user-weighted AUC), exact and vectorised.

    Args:
        y_true: labels in {0, 1}, shape (n,).
        y_pred: scores, shape (n,); only their order within a group matters.
        groups: the group (e.g. user id) of every row, shape (n,): ints, strings, anything
            numpy can sort.
        weights: ``'impressions'`` (rows per group, the paper), ``'clicks'`` (positives per
            group) or ``'uniform'`` (every group counts once).
        sample_weight: optional non-negative row weights, shape (n,); see the module docstring.
        return_details: return a :class:`GAUCResult` (value and counts of used/skipped groups)
            instead of a float.

    Returns:
        The GAUC as a float, or a :class:`GAUCResult`.

    Raises:
        InputError: lengths differ, labels are not 0/1, scores or weights are not finite,
            weights are negative, or no group has both classes (GAUC is undefined then).
        ConfigError: ``weights`` is not one of the three names.

    Example:
        >>> gauc([1, 0, 1, 0], [0.9, 0.1, 0.2, 0.8], groups=[7, 7, 8, 8])
        0.5
    """
    if weights not in GROUP_WEIGHTINGS:
        raise ConfigError(f"gauc: weights must be one of {list(GROUP_WEIGHTINGS)}, got "
                          f"{weights!r}.")
    y, s, g, w = _checked_columns(y_true, y_pred, groups, sample_weight)
    n = len(y)
    order, group_start, wins, pos_g, neg_g = _group_pair_counts(y == 1, s, g, w)
    used = (pos_g > 0) & (neg_g > 0)
    n_groups = len(group_start)
    n_used = int(used.sum())
    if n_used == 0:
        raise InputError(
            f"gauc: every one of the {n_groups} group(s) has labels of one class only, so no "
            f"group has an AUC and GAUC is undefined. Evaluate on more rows per group (e.g. a "
            f"larger validation set) or use the plain 'auc' metric.")
    auc_g = wins[used] / (pos_g[used] * neg_g[used])
    if weights == "impressions":
        weight_g = (pos_g + neg_g)[used]
    elif weights == "clicks":
        weight_g = pos_g[used]
    else:
        weight_g = np.ones(n_used)
    value = float(np.dot(weight_g, auc_g) / weight_g.sum())
    if not return_details:
        return value
    sizes = np.diff(np.append(group_start, n))
    return GAUCResult(value=value, n_groups=n_groups, n_groups_used=n_used,
                      n_groups_skipped=n_groups - n_used,
                      n_rows_skipped=int(sizes[~used].sum()),
                      groups=g[order[group_start[used]]], group_auc=auc_g, group_weight=weight_g)


def _checked_columns(y_true: Any, y_pred: Any, groups: Any, sample_weight: Any):
    """(labels, scores, groups, float64 weights or None) as 1-D arrays, validated."""
    y = _column("y_true", y_true)
    s = _column("y_pred", y_pred)
    g = _column("groups", groups)
    n = len(y)
    if len(s) != n or len(g) != n:
        raise InputError(f"gauc: y_true, y_pred and groups need one entry per row, got "
                         f"lengths {n}, {len(s)} and {len(g)}.")
    if n == 0:
        raise InputError("gauc: no rows; GAUC needs at least one group with both classes.")
    if y.dtype.kind not in "biuf":
        raise InputError(f"gauc: y_true must be numeric 0/1 labels, got dtype {y.dtype}.")
    bad = (y != 0) & (y != 1)
    if bad.any():
        r = int(np.argmax(bad))
        raise InputError(f"gauc: y_true has label {y[r].item()!r} at row {r}; labels must be 0 or 1.")
    if s.dtype.kind not in "biuf":
        raise InputError(f"gauc: y_pred must be numeric scores, got dtype {s.dtype}.")
    if not np.isfinite(s).all():
        r = int(np.argmax(~np.isfinite(s)))
        raise InputError(f"gauc: y_pred has the non-finite score {s[r]} at row {r}.")
    if sample_weight is None:
        return y, s, g, None
    w = _column("sample_weight", sample_weight).astype(np.float64)
    if len(w) != n:
        raise InputError(f"gauc: sample_weight has {len(w)} entries but there are {n} rows.")
    if not np.isfinite(w).all() or (w < 0).any():
        raise InputError("gauc: sample_weight must be finite and >= 0.")
    return y, s, g, w


def _group_pair_counts(pos: np.ndarray, s: np.ndarray, g: np.ndarray,
                       w: Optional[np.ndarray]):
    """Per group, the (weighted) count of correctly ordered (positive, negative) pairs, ties
    counting one half, and the group's positive and negative weight.

    Returns (row order sorted by (group, score), each group's first position in that order,
    wins, positives, negatives) with one entry per group.
    """
    n = len(pos)
    # One sort by (group, score). A single int64 key ``group code * n + score rank`` sorts
    # several times faster than np.lexsort; tied scores stay adjacent within a group.
    codes = _group_codes(g, n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(s)] = np.arange(n, dtype=np.int64)
    order = np.argsort(codes * n + rank)
    gs, ss, ps = codes[order], s[order], pos[order]  # scores keep their dtype: ties stay ties
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(gs[1:], gs[:-1], out=new_group[1:])
    new_block = new_group.copy()  # a tie block: same group and same score
    new_block[1:] |= ss[1:] != ss[:-1]
    block_start = np.flatnonzero(new_block)
    group_start = np.flatnonzero(new_group)
    if w is None:
        wpos = ps.astype(np.float64)
    else:
        ws = w[order]
        wpos = np.where(ps, ws, 0.0)
    wneg = (1.0 if w is None else ws) - wpos
    pos_b = np.add.reduceat(wpos, block_start)
    neg_b = np.add.reduceat(wneg, block_start)
    # Negative weight strictly below each block, within its group.
    group_of_block = np.cumsum(new_group[block_start]) - 1
    cum_neg = np.cumsum(neg_b) - neg_b
    first_block = np.flatnonzero(new_group[block_start])
    neg_below = cum_neg - cum_neg[first_block][group_of_block]
    pairs_b = pos_b * (neg_below + 0.5 * neg_b)
    first_of_group = np.searchsorted(block_start, group_start)
    wins = np.add.reduceat(pairs_b, first_of_group)
    pos_g = np.add.reduceat(pos_b, first_of_group)
    neg_g = np.add.reduceat(neg_b, first_of_group)
    return order, group_start, wins, pos_g, neg_g


def GAUC(group: Optional[str] = None, weights: str = "impressions", name: str = "gauc"
         ) -> Metric:
    """A GAUC :class:`Metric` for ``compile(metrics=[...])``, grouped by the feature ``group``.

    ``compile(metrics=['gauc'], gauc_group='user')`` is the same as
    ``compile(metrics=[GAUC(group='user')])``. It is logged as ``gauc`` (``val_gauc`` on
    validation data), in training, validation and ``evaluate``; higher is better.

    Args:
        group: the column of ``x`` whose ids group the rows (usually the user feature); None
            leaves it to ``compile(..., gauc_group=...)``.
        weights: ``'impressions'``, ``'clicks'`` or ``'uniform'`` (see :func:`gauc`).
        name: the logged key (give two GAUC metrics different names to log both).

    Returns:
        A :class:`Metric` with ``direction='max'`` and ``needs_groups=True``.

    Raises:
        ConfigError: unknown ``weights``.

    Example:
        >>> model.compile("adam", "binary_crossentropy", metrics=["auc", GAUC(group="user")])
        ... # doctest: +SKIP
    """
    if weights not in GROUP_WEIGHTINGS:
        raise ConfigError(f"GAUC: weights must be one of {list(GROUP_WEIGHTINGS)}, got "
                          f"{weights!r}.")
    if group is not None and (not isinstance(group, str) or not group):
        raise ConfigError(f"GAUC: group must name a column of x (e.g. 'user'), got {group!r}.")

    def _gauc(y, p, sample_weight=None, groups=None):
        if groups is None:
            raise ConfigError(f"Metric '{name}' needs the group of every row; compile with "
                              f"gauc_group='user' or GAUC(group='user').")
        return gauc(y, p, groups, weights=weights, sample_weight=sample_weight)

    _gauc.__name__ = name
    return Metric(name, _gauc, "max", needs_groups=True, group=group)


METRICS.register("gauc", GAUC())


def rela_impr(auc_model: float, auc_base: float) -> float:
    """RelaImpr of the DIN paper, in percent: ``((auc_model − 0.5) / (auc_base − 0.5) − 1)·100``.

    Args:
        auc_model: AUC (or GAUC) of the model being judged.
        auc_base: AUC of the base model; must differ from 0.5 (a random base has no lift).

    Returns:
        The relative improvement over the base model's lift above random, in percent.

    Raises:
        InputError: an AUC outside [0, 1] or ``auc_base == 0.5``.

    Example:
        >>> round(rela_impr(0.8818, 0.8624), 2)   # DIN vs BaseModel on Amazon (paper)
        5.35
    """
    for name, v in (("auc_model", auc_model), ("auc_base", auc_base)):
        if not 0.0 <= float(v) <= 1.0:
            raise InputError(f"rela_impr: {name} must be an AUC in [0, 1], got {v!r}.")
    if float(auc_base) == 0.5:
        raise InputError("rela_impr: auc_base is 0.5 (a random model), so the relative "
                         "improvement over its lift is undefined.")
    return ((float(auc_model) - 0.5) / (float(auc_base) - 0.5) - 1.0) * 100.0


__all__ = ["gauc", "GAUC", "GAUCResult", "rela_impr", "GROUP_WEIGHTINGS"]
