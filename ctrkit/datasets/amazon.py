"""Amazon review sequences and the DIN paper's Amazon protocol.

The data is never shipped with ctrkit: pass its folder as ``path`` or set ``CTRKIT_AMAZON``.
Two layouts are read, chosen by the files present for ``name`` (e.g. ``"Beauty"``):

- **S3-Rec / SASRec** (``<name>.txt`` + ``<name>_item2attributes.json``): one user per line,
  ``user item1 item2 ...`` in time order (no timestamps: the position is the time), and a JSON
  object mapping item id -> attribute ids. S3-Rec writes an item's attributes as its brand
  (when frequent enough) followed by its category paths from general to specific, with the
  top-level category (``Beauty``) dropped. **Category rule**: an item's category is its *last*
  attribute id, i.e. the most specific category of its last category path (the DIN paper's
  scripts take the most specific category of the first path; S3-Rec's ids do not say which
  attribute is a brand, so the last one is the only position that is a category whenever the
  item has any). An item whose only attribute is its brand gets that brand id as category;
  an item with no attributes (or missing from the JSON) gets the category ``-1``.
- **Raw Amazon 2014** (``reviews_<name>_5.json`` + ``meta_<name>.json``, as the DIN paper's
  scripts read): one review per line with ``reviewerID``, ``asin``, ``unixReviewTime``, and
  one item per line with ``asin`` and ``categories`` (a list of paths). Lines may be strict
  JSON or Python dict literals (the 2014 meta files are the latter). **Category rule**: the
  last element of the item's first category path (what the DIN paper's ``process_data.py``
  does); an item without meta gets ``"unknown"``. A user's reviews are ordered by
  ``unixReviewTime`` and then by their order in the file (the times are whole days, so
  same-day reviews are ordered by the file, as the paper's scripts do after a stable sort).

Protocol of :func:`amazon_ctr` (DIN paper §6.1, as in its public scripts):

- every review ``k >= 1`` of a user is a positive whose history is the user's reviews
  ``0..k-1`` (the most recent ``maxlen`` kept) with their categories;
- each positive gets ``negatives`` sampled negatives with the same history: items drawn
  uniformly from all items, never one the user reviewed (seeded by ``seed``);
- each user's last review (with its negatives) is test, the second-to-last validation, the
  rest training;
- features, as the paper's Amazon model: ``item`` and ``cate`` and their histories
  ``hist_item``/``hist_cate`` (sharing the candidate's tables in DIN), no user-id embedding
  (``user_feature=True`` adds one); ``x["user"]`` is always there for GAUC.

The samples are built by :func:`ctrkit.data.build_behavior_sequences` from an event log of the
positives and the negatives (``positive_only=True``, time = the review's position), so the
history rule is the one every ctrkit user gets.
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import ConfigError, DataNotFoundError, InputError
from ..features import Feature

ENV_VAR = "CTRKIT_AMAZON"


def _layout(folder: Path, name: str) -> Tuple[str, Path, Path]:
    s3 = (folder / f"{name}.txt", folder / f"{name}_item2attributes.json")
    raw = (folder / f"reviews_{name}_5.json", folder / f"meta_{name}.json")
    if s3[0].is_file():
        if not s3[1].is_file():
            raise DataNotFoundError(f"Amazon folder '{folder}' has '{s3[0].name}' but not "
                                    f"'{s3[1].name}' (the item attributes it needs).")
        return "s3rec", s3[0], s3[1]
    if raw[0].is_file():
        if not raw[1].is_file():
            raise DataNotFoundError(f"Amazon folder '{folder}' has '{raw[0].name}' but not "
                                    f"'{raw[1].name}' (the item categories it needs).")
        return "raw", raw[0], raw[1]
    raise DataNotFoundError(
        f"Amazon folder '{folder}' has neither '{s3[0].name}' + '{s3[1].name}' (S3-Rec layout) "
        f"nor '{raw[0].name}' + '{raw[1].name}' (raw Amazon 2014 layout) for name={name!r}.")


def amazon_path(path: Optional[os.PathLike] = None) -> Path:
    """The Amazon review folder from ``path`` or ``$CTRKIT_AMAZON``.

    Args:
        path: the folder; default ``$CTRKIT_AMAZON``.

    Returns:
        The folder as a ``Path``.

    Raises:
        DataNotFoundError: no path given and the variable unset, or the folder missing.

    Example:
        >>> amazon_path("/no/such/folder")
        Traceback (most recent call last):
        ...
        ctrkit.errors.DataNotFoundError: Amazon folder '/no/such/folder' does not exist; ...
    """
    if path is None:
        path = os.environ.get(ENV_VAR)
        if not path:
            raise DataNotFoundError(f"No Amazon review folder given: pass path=... or set "
                                    f"{ENV_VAR} to the folder holding '<name>.txt' (S3-Rec) "
                                    f"or 'reviews_<name>_5.json' (raw Amazon).")
    folder = Path(path)
    if not folder.is_dir():
        raise DataNotFoundError(f"Amazon folder '{folder}' does not exist; point the path or "
                                f"{ENV_VAR} at the folder holding the review files.")
    return folder


def _parse_line(line: str, where: str) -> Dict[str, Any]:
    try:
        return json.loads(line)
    except ValueError:
        pass
    try:
        value = ast.literal_eval(line)
    except (ValueError, SyntaxError) as e:
        raise InputError(f"{where} is neither JSON nor a Python dict literal: {e}") from e
    if not isinstance(value, dict):
        raise InputError(f"{where} holds a {type(value).__name__}, not a record (dict).")
    return value


def _read_s3rec(seq_file: Path, attr_file: Path) -> Dict[str, np.ndarray]:
    users: List[np.ndarray] = []
    items: List[np.ndarray] = []
    with open(seq_file, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                ids = np.array(parts, dtype=np.int64)
            except ValueError as e:
                raise InputError(f"'{seq_file}' line {n} is not 'user item1 item2 ...' with "
                                 f"integer ids: {e}") from e
            if len(ids) < 2:
                raise InputError(f"'{seq_file}' line {n} names user {ids[0]} with no items.")
            users.append(np.full(len(ids) - 1, ids[0], dtype=np.int64))
            items.append(ids[1:])
    if not users:
        raise InputError(f"'{seq_file}' holds no user sequences.")
    try:
        attrs = json.loads(attr_file.read_text(encoding="utf-8"))
    except ValueError as e:
        raise InputError(f"'{attr_file}' is not a JSON object of item -> attribute ids: {e}") \
            from e
    user, item = np.concatenate(users), np.concatenate(items)
    cate_of = {int(k): (int(v[-1]) if len(v) else -1) for k, v in attrs.items()}
    uniq, inv = np.unique(item, return_inverse=True)
    cates = np.array([cate_of.get(int(i), -1) for i in uniq], dtype=np.int64)
    # time = position in the user's line (the file is in time order)
    new_user = np.ones(len(user), dtype=bool)
    new_user[1:] = user[1:] != user[:-1]
    start = np.maximum.accumulate(np.where(new_user, np.arange(len(user)), 0))
    return {"user": user, "item": item, "time": np.arange(len(user)) - start,
            "cate": cates[inv.reshape(-1)]}


def _read_raw(review_file: Path, meta_file: Path) -> Dict[str, np.ndarray]:
    users: List[str] = []
    items: List[str] = []
    times: List[int] = []
    with open(review_file, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = _parse_line(line, f"'{review_file}' line {n}")
            missing = [k for k in ("reviewerID", "asin", "unixReviewTime") if k not in r]
            if missing:
                raise InputError(f"'{review_file}' line {n} lacks {missing}; a review needs "
                                 f"reviewerID, asin and unixReviewTime.")
            users.append(str(r["reviewerID"]))
            items.append(str(r["asin"]))
            times.append(int(r["unixReviewTime"]))
    if not users:
        raise InputError(f"'{review_file}' holds no reviews.")
    cate_of: Dict[str, str] = {}
    with open(meta_file, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            m = _parse_line(line, f"'{meta_file}' line {n}")
            paths = m.get("categories") or []
            if "asin" in m and paths and paths[0]:
                cate_of[str(m["asin"])] = str(paths[0][-1])
    user, item = np.array(users), np.array(items)
    t = np.array(times, dtype=np.int64)
    uniq, inv = np.unique(item, return_inverse=True)
    cates = np.array([cate_of.get(i, "unknown") for i in uniq.tolist()])
    # time = rank within the user by (unixReviewTime, file order): same-day reviews stay apart
    order = np.lexsort((np.arange(len(t)), t, user))
    u_s = user[order]
    new_user = np.ones(len(t), dtype=bool)
    new_user[1:] = u_s[1:] != u_s[:-1]
    rank_s = np.arange(len(t)) - np.maximum.accumulate(np.where(new_user, np.arange(len(t)), 0))
    rank = np.empty(len(t), dtype=np.int64)
    rank[order] = rank_s
    return {"user": user[order], "item": item[order], "time": rank[order],
            "cate": cates[inv.reshape(-1)][order], "unix_time": t[order]}


def load_amazon_reviews(path: Optional[os.PathLike] = None, name: str = "Beauty"
                        ) -> Dict[str, np.ndarray]:
    """One row per review, grouped by user in time order, with the item's category.

    Args:
        path: the folder (default ``$CTRKIT_AMAZON``); S3-Rec or raw layout (module doc).
        name: the category's file name part, e.g. ``"Beauty"``, ``"Electronics"``.

    Returns:
        A dict of arrays: ``user``, ``item`` (int64 in the S3-Rec layout, str in the raw one),
        ``time`` (int64: the review's position in its user's sequence, 0 first) and ``cate``
        (the category rule of the module doc); the raw layout adds ``unix_time``.

    Raises:
        DataNotFoundError: the folder or the files for ``name`` missing.
        InputError: a file in another format.

    Example:
        >>> log = load_amazon_reviews("/data/amazon_s3rec", "Beauty")   # doctest: +SKIP
        >>> len(log["user"])                                              # doctest: +SKIP
        198502
    """
    kind, first, second = _layout(amazon_path(path), name)
    return _read_s3rec(first, second) if kind == "s3rec" else _read_raw(first, second)


def _sample_negatives(user: np.ndarray, item: np.ndarray, pos_user: np.ndarray,
                      candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` items per row of ``pos_user``, uniform over ``candidates``, never one the user has.

    Rejection sampling on sorted (user, item) keys: redraws only the rejected draws, so the
    loop runs a handful of times, not once per row.
    """
    _, u_codes = np.unique(np.concatenate([user, pos_user]), return_inverse=True)
    u_codes = u_codes.reshape(-1)
    n_items = len(candidates)
    item_code = np.searchsorted(candidates, item)
    seen = np.unique(u_codes[:len(user)] * n_items + item_code)
    per_user = np.bincount(seen // n_items, minlength=int(u_codes.max()) + 1)
    full = np.flatnonzero(per_user[u_codes[len(user):]] >= n_items)
    if len(full):
        raise InputError(f"User {pos_user[full[0]]} reviewed every one of the {n_items} "
                         f"items, so no negative can be sampled for it; drop such users or add "
                         f"items.")
    rows = np.repeat(u_codes[len(user):], k)
    out = rng.integers(0, n_items, size=len(rows))
    todo = np.arange(len(rows))
    for _ in range(1000):
        keys = rows[todo] * n_items + out[todo]
        hit = np.searchsorted(seen, keys)
        bad = (hit < len(seen)) & (seen[np.minimum(hit, len(seen) - 1)] == keys)
        todo = todo[bad]
        if not len(todo):
            return candidates[out].reshape(-1, k)
        out[todo] = rng.integers(0, n_items, size=len(todo))
    raise InputError(f"Could not sample negatives for {len(todo)} rows in 1000 rounds: their "
                     f"users reviewed almost every one of the {n_items} items.")


def amazon_ctr(path: Optional[os.PathLike] = None, name: str = "Beauty", maxlen: int = 50,
               negatives: int = 1, seed: int = 0, embedding_dim: int = 8,
               user_feature: bool = False, max_users: Optional[int] = None,
               ) -> Tuple[Dict[str, Tuple[Dict[str, np.ndarray], np.ndarray]], List[Feature]]:
    """The DIN paper's Amazon samples and per-user time split (protocol in the module doc).

    Args:
        path: the folder (default ``$CTRKIT_AMAZON``).
        name: the category, e.g. ``"Beauty"``.
        maxlen: T, the most recent reviews kept in a history.
        negatives: sampled negatives per positive (>= 1).
        seed: seed of the negative sampling (the same seed gives the same samples).
        embedding_dim: width of every embedding.
        user_feature: also declare a ``user`` id feature (the paper's model has none).
        max_users: keep only the first ``max_users`` users (in id order) for quick runs.

    Returns:
        ``(splits, features)``: ``splits`` maps ``'train'``, ``'val'``, ``'test'`` to
        ``(x, y)``; ``x`` holds ``item``, ``cate``, ``hist_item``, ``hist_cate``
        (``(N, maxlen)``), ``seq_length``, plus ``user`` and ``time`` (the review's position).
        ``features`` declares ``item``, ``cate`` and the two histories (and ``user`` when asked).

    Raises:
        ConfigError: ``negatives``/``max_users``/``maxlen`` not a positive integer.
        DataNotFoundError, InputError: as :func:`load_amazon_reviews`.

    Example:
        >>> splits, features = amazon_ctr("/data/amazon_s3rec")   # doctest: +SKIP
        >>> [f.name for f in features]                             # doctest: +SKIP
        ['item', 'cate', 'hist_item', 'hist_cate']
    """
    for arg, value in (("negatives", negatives), ("max_users", max_users)):
        if value is None and arg == "max_users":
            continue
        if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 1:
            raise ConfigError(f"{arg} must be an integer >= 1, got {value!r}.")
    from ..data import build_behavior_sequences
    log = load_amazon_reviews(path, name)
    if max_users is not None:
        keep = np.isin(log["user"], np.unique(log["user"])[:int(max_users)])
        log = {k: v[keep] for k, v in log.items()}
    user, item, time, cate = log["user"], log["item"], log["time"], log["cate"]
    # each user's review count, and each review's position from the end (0 = last)
    uniq_u, u_inv, u_count = np.unique(user, return_inverse=True, return_counts=True)
    from_end = u_count[u_inv.reshape(-1)] - 1 - time
    pos = np.flatnonzero(time >= 1)  # reviews with a history: the positives
    candidates, c_first = np.unique(item, return_index=True)
    rng = np.random.default_rng(seed)
    neg_items = _sample_negatives(user, item, user[pos], candidates, int(negatives), rng)
    neg_src = np.repeat(pos, int(negatives))
    item_cate = cate[c_first]
    events = {
        "user": np.concatenate([user, user[neg_src]]),
        "item": np.concatenate([item, neg_items.reshape(-1)]),
        "time": np.concatenate([time, time[neg_src]]),
        "label": np.concatenate([np.ones(len(user), np.int64), np.zeros(len(neg_src), np.int64)]),
        "cate": np.concatenate([cate, item_cate[np.searchsorted(candidates,
                                                                neg_items.reshape(-1))]]),
    }
    x, y, feats = build_behavior_sequences(events, attributes=("cate",), maxlen=maxlen,
                                           positive_only=True, embedding_dim=embedding_dim)
    src_from_end = np.concatenate([from_end, from_end[neg_src]])
    is_sample = np.concatenate([time >= 1, np.ones(len(neg_src), dtype=bool)])
    # rows grouped user by user, time order, positive before its negatives
    order = np.lexsort((1 - events["label"], events["time"], events["user"]))
    order = order[is_sample[order]]
    splits = {}
    for split, keep in (("train", src_from_end[order] >= 2), ("val", src_from_end[order] == 1),
                        ("test", src_from_end[order] == 0)):
        idx = order[keep]
        splits[split] = ({k: v[idx] for k, v in x.items()}, y[idx])
    features = [f for f in feats if user_feature or f.name != "user"]
    return splits, features


__all__ = ["load_amazon_reviews", "amazon_ctr", "amazon_path", "ENV_VAR"]
