"""A synthetic behaviour data set with a planted signal, the default when no data path is given.

Each row is a user, a candidate item and the user's behaviour history. Items belong to
categories; each user likes a few categories and half of the history comes from them. Half of
the candidates are drawn from a category present in the history, half uniformly. The click
probability depends only on how many history items share the candidate's category:

    logit = (signal / 2) * (min(matches, 3) - 1)        (signal=4: p = 0.12, 0.5, 0.88, 0.98)

so the label is a function of (candidate, history) that no single id explains. A model that
matches the candidate against each behaviour (DIN's local activation) finds it quickly; one that
only sees a mean of the history (the Embedding&MLP base model) must untangle the mixture.
:func:`synthetic_click_probability` gives the true probabilities (the best reachable AUC).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from ..features import Feature, SparseFeat, VarLenSparseFeat

LIKED_PER_USER = 4
MATCH_CAP = 3


def _generate(n_rows: int, n_users: int, n_items: int, n_categories: int, maxlen: int,
              signal: float, seed: int):
    rng = np.random.default_rng(seed)
    item_cate = rng.integers(1, n_categories + 1, size=n_items + 1)
    item_cate[0] = 0
    # items grouped by category, to draw "an item of category c" without a loop
    by_cate = np.argsort(item_cate[1:], kind="stable") + 1
    counts = np.bincount(item_cate[1:], minlength=n_categories + 1)
    empty = counts == 0
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def item_of(c: np.ndarray) -> np.ndarray:
        c = np.where(empty[c], item_cate[by_cate[0]], c)  # a category without items: fall back
        return by_cate[offsets[c] + (rng.random(c.shape) * counts[c]).astype(np.int64)]

    liked = rng.integers(1, n_categories + 1, size=(n_users + 1, LIKED_PER_USER))
    users = rng.integers(1, n_users + 1, size=n_rows)
    lengths = rng.integers(max(1, maxlen // 4), maxlen + 1, size=n_rows)
    from_liked = rng.random((n_rows, maxlen)) < 0.5
    hist_c = np.where(from_liked,
                      liked[users[:, None], rng.integers(0, LIKED_PER_USER, (n_rows, maxlen))],
                      rng.integers(1, n_categories + 1, (n_rows, maxlen)))
    valid = np.arange(maxlen)[None, :] < lengths[:, None]
    hist_item = np.where(valid, item_of(hist_c), 0).astype(np.int64)
    hist_cate = item_cate[hist_item].astype(np.int64)
    from_hist = rng.random(n_rows) < 0.5
    pos = (rng.random(n_rows) * lengths).astype(np.int64)
    cand_c = np.where(from_hist, hist_cate[np.arange(n_rows), pos],
                      rng.integers(1, n_categories + 1, n_rows))
    items = item_of(cand_c).astype(np.int64)
    cate = item_cate[items].astype(np.int64)
    matches = (hist_cate == cate[:, None]).sum(1)
    logit = 0.5 * signal * (np.minimum(matches, MATCH_CAP) - 1)
    prob = 1.0 / (1.0 + np.exp(-logit))
    y = (rng.random(n_rows) < prob).astype(np.float32)
    x = {"user": users.astype(np.int64), "item": items, "cate": cate, "hist_item": hist_item,
         "hist_cate": hist_cate, "seq_length": lengths.astype(np.int64)}
    return x, y, prob


def make_synthetic(n_rows: int = 20000, n_users: int = 1000, n_items: int = 1000,
                   n_categories: int = 20, maxlen: int = 20, embedding_dim: int = 8,
                   signal: float = 4.0, seed: int = 0
                   ) -> Tuple[Dict[str, np.ndarray], np.ndarray, List[Feature]]:
    """Generate ``(x, y, features)``.

    Ids start at 1 (0 is padding). Features: ``user``, ``item``, ``cate`` (the candidate),
    ``hist_item``, ``hist_cate`` (history of length ``seq_length`` in ``maxlen//4..maxlen``).

    Args:
        n_rows: number of rows (impressions).
        n_users: number of users.
        n_items: number of items.
        n_categories: number of item categories.
        maxlen: history width T.
        embedding_dim: embedding width of every declared feature.
        signal: strength of the planted effect; 0 makes labels independent of everything.
        seed: the data is a pure function of the arguments.

    Returns:
        ``x`` (int64 arrays), ``y`` (float32 0/1), ``features`` (DIN pairs ``hist_X`` with X).

    Example:
        >>> x, y, features = make_synthetic(n_rows=10, maxlen=4)
        >>> x["hist_item"].shape, y.shape
        ((10, 4), (10,))
    """
    x, y, _ = _generate(n_rows, n_users, n_items, n_categories, maxlen, signal, seed)
    features: List[Feature] = [
        SparseFeat("user", n_users + 1, embedding_dim),
        SparseFeat("item", n_items + 1, embedding_dim),
        SparseFeat("cate", n_categories + 1, embedding_dim),
        VarLenSparseFeat(SparseFeat("hist_item", n_items + 1, embedding_dim), maxlen,
                         length_name="seq_length"),
        VarLenSparseFeat(SparseFeat("hist_cate", n_categories + 1, embedding_dim), maxlen,
                         length_name="seq_length"),
    ]
    return x, y, features


def synthetic_click_probability(n_rows: int = 20000, n_users: int = 1000, n_items: int = 1000,
                                n_categories: int = 20, maxlen: int = 20, signal: float = 4.0,
                                seed: int = 0) -> np.ndarray:
    """The true click probability of every row :func:`make_synthetic` draws (same arguments).

    Its AUC against ``y`` is the best any model can reach on that data.

    Example:
        >>> from ctrkit.metrics import gauc
        >>> x, y, _ = make_synthetic(n_rows=2000, seed=3)
        >>> p = synthetic_click_probability(n_rows=2000, seed=3)
        >>> p.shape, bool(0.5 < gauc(y, p, [0] * len(y)) < 1.0)   # the reachable AUC
        ((2000,), True)
    """
    return _generate(n_rows, n_users, n_items, n_categories, maxlen, signal, seed)[2]


__all__ = ["make_synthetic", "synthetic_click_probability"]
