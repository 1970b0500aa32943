"""Taobao UserBehavior (Tianchi data set 649) as click-through and purchase tasks.

The data is never shipped with ctrkit: pass the CSV (``user,item,category,behavior,timestamp``
without a header; behaviours ``pv``, ``cart``, ``fav``, ``buy``) as ``path`` or set
``CTRKIT_TAOBAO``. A cut last line (a file truncated mid-row, as the 84,475-row head is) is
dropped; a malformed line anywhere else is refused, naming it.

Protocol of :func:`taobao_multitask` (used by ``benchmarks/multitask.py --data taobao``):

- **rows**: one per (user, item) pair the user interacted with, at the time of the pair's
  first event (any behaviour), plus ``negatives`` sampled pairs per interacted pair: an item the
  user never interacted with, drawn by popularity (from the interacted pairs' items), shown at
  the same time as the pair it was drawn for. The log has no impressions without a click, so
  the sampled items stand in for them.
- **task ``click``** (click-through): 1 for an interacted pair (the user opened the item's
  page, or put it in the cart or favourites or bought it), 0 for a sampled one.
- **task ``buy``** (purchase, over the entire space, ESMM's pCTCVR): 1 when the user bought
  the item (at any time of the log), else 0, sampled pairs included. ``buy`` implies
  ``click``.
- **features**: user, item, the item's category, and the user's **history**: the items (and
  their categories) of the user's interacted pairs with a strictly earlier first event,
  ordered by time, the last ``maxlen`` (built by :func:`ctrkit.data.build_behavior_sequences`
  with ``positive_only=True``, so sampled pairs never enter a history).
- **split**: by time over all users: rows at or after the ``1 - test_fraction`` quantile of
  the rows' times are test, the rest train (validation, if wanted, is carved from train the
  same way). Vocabularies are fitted on all rows; an item seen only in test keeps its
  untrained initial embedding.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import ConfigError, DataNotFoundError, InputError
from ..features import Feature

ENV_VAR = "CTRKIT_TAOBAO"
COLUMNS = ("user", "item", "category", "behavior", "time")
BEHAVIORS = ("pv", "cart", "fav", "buy")
TASKS = ("click", "buy")


def taobao_path(path: Optional[os.PathLike] = None) -> Path:
    """The UserBehavior CSV from ``path`` or ``$CTRKIT_TAOBAO`` (a file, or a folder holding
    ``UserBehavior.csv``).

    Raises:
        DataNotFoundError: no path given and the variable unset, or no such file.

    Example:
        >>> taobao_path("/no/such/UserBehavior.csv")
        Traceback (most recent call last):
        ...
        ctrkit.errors.DataNotFoundError: Taobao UserBehavior file '/no/such/UserBehavior.csv' does not exist; ...
    """
    if path is None:
        path = os.environ.get(ENV_VAR)
        if not path:
            raise DataNotFoundError(f"No Taobao UserBehavior file given: pass path=... or set "
                                    f"{ENV_VAR} to UserBehavior.csv (or its folder).")
    p = Path(path)
    if p.is_dir():
        p = p / "UserBehavior.csv"
    if not p.is_file():
        raise DataNotFoundError(f"Taobao UserBehavior file '{p}' does not exist; point the path "
                                f"or {ENV_VAR} at UserBehavior.csv (user,item,category,"
                                f"behavior,timestamp; no header).")
    return p


def load_taobao_userbehavior(path: Optional[os.PathLike] = None) -> Dict[str, np.ndarray]:
    """The raw log: ``{'user', 'item', 'category', 'time'}`` int64 and ``'behavior'`` str.

    Args:
        path: the CSV (default ``$CTRKIT_TAOBAO``).

    Returns:
        one array per column, one entry per complete line, in file order. A last line cut
        short (fewer than five fields, or an empty one) is dropped.

    Raises:
        DataNotFoundError: no file.
        InputError: a malformed line other than the last (named), or an unknown behaviour.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> p = Path(tempfile.mkdtemp()) / "UserBehavior.csv"
        >>> _ = p.write_text("1,10,7,pv,100\\n1,11,7,buy,105\\n2,10,7,pv")
        >>> log = load_taobao_userbehavior(p)        # the cut last line is dropped
        >>> log["item"].tolist(), log["behavior"].tolist()
        ([10, 11], ['pv', 'buy'])
    """
    import pandas as pd
    file = taobao_path(path)
    try:
        frame = pd.read_csv(file, header=None, names=list(COLUMNS), dtype=str,
                            keep_default_na=False, on_bad_lines="error", engine="c")
    except pd.errors.ParserError as e:
        raise InputError(f"'{file}' is not a UserBehavior CSV (user,item,category,behavior,"
                         f"timestamp per line): {e}") from e
    bad = np.flatnonzero((frame.isna() | (frame == "")).to_numpy().any(axis=1))
    if len(bad) and bad[-1] == len(frame) - 1:  # the file was cut in its last line
        frame = frame.iloc[:-1]
        bad = bad[:-1]
    if len(bad):
        raise InputError(f"'{file}' line {int(bad[0]) + 1} is incomplete "
                         f"({frame.iloc[bad[0]].tolist()}); every line needs user,item,"
                         f"category,behavior,timestamp.")
    out: Dict[str, np.ndarray] = {}
    for c in ("user", "item", "category", "time"):
        try:
            out[c] = frame[c].to_numpy().astype(np.int64)
        except ValueError as e:
            raise InputError(f"'{file}' column '{c}' holds a non-integer value: {e}") from e
    out["behavior"] = frame["behavior"].to_numpy().astype(str)
    unknown = sorted(set(np.unique(out["behavior"]).tolist()) - set(BEHAVIORS))
    if unknown:
        row = int(np.flatnonzero(~np.isin(out["behavior"], BEHAVIORS))[0])
        raise InputError(f"'{file}' line {row + 1} has behaviour {unknown[0]!r}; expected one of "
                         f"{list(BEHAVIORS)}.")
    return out


def _pairs(log: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """One row per (user, item) pair: its first event's time and category, and whether it
    was ever bought."""
    key = log["user"] * (int(log["item"].max()) + 1) + log["item"]
    order = np.lexsort((log["item"], log["time"], key))  # by pair, then time
    k = key[order]
    first = order[np.r_[True, k[1:] != k[:-1]]]
    bought_keys = np.unique(key[log["behavior"] == "buy"])
    return {"user": log["user"][first], "item": log["item"][first],
            "category": log["category"][first], "time": log["time"][first],
            "buy": np.isin(key[first], bought_keys).astype(np.float32)}


def _sample_negatives(pairs: Dict[str, np.ndarray], negatives: int,
                      rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """``negatives`` sampled pairs per pair: a popularity-drawn item the user never
    interacted with, at the pair's time."""
    n = len(pairs["user"])
    src = np.repeat(np.arange(n), negatives)
    users = pairs["user"][src]
    span = int(pairs["item"].max()) + 1
    seen = np.unique(pairs["user"] * span + pairs["item"])
    pick = rng.integers(0, n, len(src))
    for _ in range(100):
        clash = np.isin(users * span + pairs["item"][pick], seen)
        if not clash.any():
            break
        pick[clash] = rng.integers(0, n, int(clash.sum()))
    else:  # pragma: no cover - a user who interacted with (nearly) every item
        raise InputError("Could not sample items the users never interacted with; the log's "
                         "users cover almost every item. Lower negatives.")
    return {"user": users, "item": pairs["item"][pick], "category": pairs["category"][pick],
            "time": pairs["time"][src], "buy": np.zeros(len(src), np.float32)}


def taobao_multitask(path: Optional[os.PathLike] = None, maxlen: int = 20,
                     negatives: int = 1, embedding_dim: int = 8, test_fraction: float = 0.2,
                     seed: int = 0
                     ) -> Tuple[Dict[str, Tuple[Dict[str, np.ndarray], np.ndarray]],
                                List[Feature]]:
    """Taobao UserBehavior as two tasks, ``click`` and ``buy`` (the protocol in the module doc).

    Args:
        path: the CSV (default ``$CTRKIT_TAOBAO``).
        maxlen: history width.
        negatives: sampled pairs per interacted pair (>= 1).
        embedding_dim: every feature's width.
        test_fraction: the latest fraction of rows (by time) held out as test.
        seed: the negative sampling.

    Returns:
        ``(splits, features)``: ``splits`` maps ``'train'`` and ``'test'`` to ``(x, y)`` with
        ``y`` (n, 2) float32 in :data:`TASKS` order (``click``, ``buy``); ``x`` carries the raw
        ``time``. ``features``: user, item, category, and ``hist_item``/``hist_category``
        (length ``seq_length``).

    Raises:
        DataNotFoundError: no file; InputError: a malformed file; ConfigError: bad arguments.

    Example:
        >>> splits, features = taobao_multitask()          # doctest: +SKIP
        >>> splits["train"][1].mean(0)                       # doctest: +SKIP
        array([0.5 , 0.013], dtype=float32)
    """
    from ..data import build_behavior_sequences, take_rows
    if isinstance(negatives, bool) or not hasattr(negatives, "__index__") or int(negatives) < 1:
        raise ConfigError(f"negatives must be an integer >= 1, got {negatives!r}.")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction must lie in (0, 1), got {test_fraction!r}.")
    pairs = _pairs(load_taobao_userbehavior(path))
    neg = _sample_negatives(pairs, int(negatives), np.random.default_rng(seed))
    rows = {k: np.concatenate([pairs[k], neg[k]]) for k in pairs}
    rows["click"] = np.r_[np.ones(len(pairs["user"]), np.int64),
                          np.zeros(len(neg["user"]), np.int64)]
    x, click, features = build_behavior_sequences(
        rows, user="user", item="item", time="time", label="click", attributes=("category",),
        maxlen=maxlen, positive_only=True, embedding_dim=embedding_dim)
    y = np.stack([click, rows["buy"]], axis=1).astype(np.float32)
    cut = np.quantile(rows["time"], 1.0 - float(test_fraction))
    test = rows["time"] >= cut
    splits = {name: (take_rows(x, np.flatnonzero(mask)), y[mask])
              for name, mask in (("train", ~test), ("test", test))}
    return splits, features


__all__ = ["load_taobao_userbehavior", "taobao_multitask", "taobao_path", "ENV_VAR", "TASKS"]
