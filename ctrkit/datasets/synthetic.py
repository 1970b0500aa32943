"""A synthetic behaviour data set with a planted signal, the default when no data path is given.

Each user prefers a few categories and mostly browsed items of them; the click probability of a
candidate rises with how often its category appears in the user's history. A model that looks
at the history (DIN) can find the signal; one that ignores it cannot.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from ..features import Feature, SparseFeat, VarLenSparseFeat


def make_synthetic(n_rows: int = 20000, n_users: int = 1000, n_items: int = 2000,
                   n_categories: int = 50, maxlen: int = 20, embedding_dim: int = 8,
                   signal: float = 4.0, seed: int = 0
                   ) -> Tuple[Dict[str, np.ndarray], np.ndarray, List[Feature]]:
    """Generate ``(x, y, features)``.

    Ids start at 1 (0 is padding). Features: ``user``, ``item``, ``cate`` (the candidate),
    ``hist_item``, ``hist_cate`` (history of length ``seq_length`` in 1..maxlen).

    Args:
        signal: strength of the planted effect; 0 makes labels independent of the history.
        seed: the data is a pure function of the arguments.
    """
    rng = np.random.default_rng(seed)
    item_cate = rng.integers(1, n_categories + 1, size=n_items + 1)
    item_cate[0] = 0
    pref = rng.integers(1, n_categories + 1, size=(n_users + 1, 3))  # 3 liked categories per user
    by_cate = [np.flatnonzero(item_cate == c) for c in range(n_categories + 1)]
    users = rng.integers(1, n_users + 1, size=n_rows)
    lengths = rng.integers(1, maxlen + 1, size=n_rows)
    # History: 70% of positions from a liked category, the rest uniform.
    liked = pref[users[:, None], rng.integers(0, 3, size=(n_rows, maxlen))]
    from_liked = rng.random((n_rows, maxlen)) < 0.7
    uniform_items = rng.integers(1, n_items + 1, size=(n_rows, maxlen))
    sizes = np.array([max(len(b), 1) for b in by_cate])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate([b if len(b) else np.array([1]) for b in by_cate])
    pick = offsets[liked] + (rng.random((n_rows, maxlen)) * sizes[liked]).astype(np.int64)
    hist_item = np.where(from_liked, flat[pick], uniform_items)
    valid = np.arange(maxlen)[None, :] < lengths[:, None]
    hist_item = np.where(valid, hist_item, 0).astype(np.int64)
    hist_cate = item_cate[hist_item]
    items = rng.integers(1, n_items + 1, size=n_rows)
    half = rng.random(n_rows) < 0.5  # half the candidates come from a liked category
    cand_liked = pref[users, rng.integers(0, 3, size=n_rows)]
    pick_c = offsets[cand_liked] + (rng.random(n_rows) * sizes[cand_liked]).astype(np.int64)
    items = np.where(half, flat[pick_c], items).astype(np.int64)
    cate = item_cate[items]
    share = (hist_cate == cate[:, None]).sum(1) / lengths
    logit = signal * (share - 0.2) - 0.3 + 0.3 * rng.standard_normal(n_rows)
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    features: List[Feature] = [
        SparseFeat("user", n_users + 1, embedding_dim),
        SparseFeat("item", n_items + 1, embedding_dim),
        SparseFeat("cate", n_categories + 1, embedding_dim),
        VarLenSparseFeat(SparseFeat("hist_item", n_items + 1, embedding_dim), maxlen,
                         length_name="seq_length"),
        VarLenSparseFeat(SparseFeat("hist_cate", n_categories + 1, embedding_dim), maxlen,
                         length_name="seq_length"),
    ]
    x = {"user": users.astype(np.int64), "item": items, "cate": cate.astype(np.int64),
         "hist_item": hist_item, "hist_cate": hist_cate.astype(np.int64),
         "seq_length": lengths.astype(np.int64)}
    return x, y, features
