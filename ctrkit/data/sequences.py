"""Behaviour sequences from an event log, and a per-user time split.

An event log has one row per (user, item, time, label) event, plus item attributes such as a
category. :func:`build_behavior_sequences` turns it into model inputs: for every event, the
user's history is the user's events with a **strictly earlier time** (events sharing the
row's timestamp are never in its history, whatever their order in the log), ordered by
(time, item), optionally only the positive ones, the most recent ``maxlen`` kept. The work is
one sort plus cumulative-index arithmetic; there is no loop over rows or users.

    >>> log = {"user": [1, 1, 1, 2], "item": [10, 11, 12, 10], "time": [1, 2, 3, 1],
    ...        "label": [1, 0, 1, 1], "cate": [5, 6, 5, 5]}
    >>> x, y, features = build_behavior_sequences(log, attributes=("cate",), maxlen=2)
    >>> x["seq_length"].tolist()
    [0, 1, 2, 0]
    >>> x["hist_item"].tolist()     # encoded ids: 10 -> 2, 11 -> 3, 12 -> 4 (0 pads, 1 is OOV)
    [[0, 0], [2, 0], [2, 3], [0, 0]]
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, MutableMapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ConfigError, InputError, InputTypeError
from ..features import Feature, SparseFeat, VarLenSparseFeat
from ..inputs import _to_numpy
from .encoders import CategoricalEncoder


def _columns(log: Any, needed: Sequence[str], what: str = "log") -> Dict[str, np.ndarray]:
    """Named 1-D columns of a dict of arrays or a DataFrame, all of one length."""
    if hasattr(log, "columns") and hasattr(log, "__getitem__") and not isinstance(log, Mapping):
        available = [str(c) for c in log.columns]
        get = lambda c: log[c]  # noqa: E731
    elif isinstance(log, Mapping):
        available = [str(c) for c in log]
        get = log.__getitem__
    else:
        raise InputTypeError(f"The {what} must be a dict of arrays or a pandas DataFrame, got "
                             f"{type(log).__name__}.")
    missing = [c for c in needed if c not in available]
    if missing:
        raise InputError(f"The {what} has no column(s) {missing}; it has {sorted(available)}. "
                         f"Name the columns with the user=/item=/time=/label=/attributes= "
                         f"arguments.")
    out: Dict[str, np.ndarray] = {}
    n: Optional[int] = None
    for c in dict.fromkeys(needed):
        arr = _to_numpy(get(c), c)
        if arr.ndim != 1:
            raise InputError(f"Column '{c}' of the {what} has shape {arr.shape}; it needs one "
                             f"value per event, shape (events,).")
        if n is not None and len(arr) != n:
            raise InputError(f"Column '{c}' of the {what} has {len(arr)} rows but the others "
                             f"have {n}.")
        n = len(arr)
        out[c] = arr
    return out


def _sortable_time(arr: np.ndarray, name: str) -> np.ndarray:
    """Times as int64/float64 keys; raises on anything that does not sort as time."""
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            r = int(np.argmax(np.isnat(arr)))
            raise InputError(f"Time column '{name}' has a missing time (NaT) at row {r}; drop "
                             f"or fill those events first.")
        return arr.astype("datetime64[ns]").astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            r = int(np.argmax(bad))
            raise InputError(f"Time column '{name}' has the unsortable value {arr[r]} at row {r}; "
                             f"times must be finite numbers or datetimes.")
        return arr.astype(np.float64)
    raise InputTypeError(f"Time column '{name}' has dtype {arr.dtype}, which does not sort as "
                         f"time; pass numbers (e.g. unix seconds) or datetime64 values "
                         f"(pandas: pd.to_datetime(log['{name}'])).")


def _binary_labels(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype.kind not in "fiub":
        raise InputTypeError(f"Label column '{name}' has dtype {arr.dtype}; labels must be 0 or "
                             f"1 (binarise first, e.g. rating >= 4).")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        r = int(np.argmax(bad))
        raise InputError(f"Label column '{name}' has the value {arr[r]} at row {r}; labels must "
                         f"be 0 or 1 (binarise first, e.g. rating >= 4).")
    return arr.astype(np.float32)


def _order_ranks(arr: np.ndarray) -> np.ndarray:
    """Dense ranks that sort like the raw values (strings and numbers alike)."""
    if arr.dtype.kind not in "iufbM":
        arr = arr.astype(str)
    return np.unique(arr, return_inverse=True)[1].reshape(-1)


def _group_starts(new_group: np.ndarray) -> np.ndarray:
    """For sorted rows, the position where each row's group starts."""
    return np.maximum.accumulate(np.where(new_group, np.arange(len(new_group)), 0))


def history_positions(user: np.ndarray, time: np.ndarray, item_rank: np.ndarray,
                      eligible: np.ndarray, maxlen: int
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of each event's history events, vectorised.

    Args:
        user: (N,) group key per event.
        time: (N,) sortable time.
        item_rank: (N,) tie-break among events of the same time.
        eligible: (N,) bool, events that may enter a history (e.g. positives only).
        maxlen: T, the most recent events kept.

    Returns:
        ``(positions (N, T) int64, valid (N, T) bool, lengths (N,) int64)``: ``positions[r, j]``
        is the log row of the j-th history event of row r (oldest first, left-aligned; 0 where
        not valid). History = same user, strictly earlier time, eligible, ordered by
        (time, item_rank), the last ``maxlen``.

    Example:
        >>> import numpy as np
        >>> pos, valid, lengths = history_positions(
        ...     user=np.array([0, 0, 0]), time=np.array([1, 2, 3]), item_rank=np.array([0, 0, 0]),
        ...     eligible=np.array([True, True, True]), maxlen=2)
        >>> pos.tolist(), lengths.tolist()          # row 2's history: rows 0 and 1
        ([[0, 0], [0, 0], [0, 1]], [0, 1, 2])
    """
    n = len(user)
    order = np.lexsort((item_rank, time, user))
    u_s, t_s = user[order], time[order]
    new_user = np.ones(n, dtype=bool)
    new_user[1:] = u_s[1:] != u_s[:-1]
    new_time = new_user.copy()
    new_time[1:] |= t_s[1:] != t_s[:-1]
    elig_s = eligible[order]
    before = np.concatenate([[0], np.cumsum(elig_s)])  # eligible events before position p
    end = before[_group_starts(new_time)]  # only events of strictly earlier times
    start = before[_group_starts(new_user)]
    kept = np.minimum(end - start, maxlen)
    j = np.arange(maxlen)
    valid_s = j[None, :] < kept[:, None]
    elig_rows = order[elig_s]  # log rows of eligible events, in sorted order
    src = np.where(valid_s, (end - kept)[:, None] + j[None, :], 0)
    pos_s = elig_rows[src] if len(elig_rows) else np.zeros_like(src)
    pos_s = np.where(valid_s, pos_s, 0)
    positions = np.empty_like(pos_s)
    positions[order] = pos_s
    valid = np.empty_like(valid_s)
    valid[order] = valid_s
    lengths = np.empty(n, dtype=np.int64)
    lengths[order] = kept
    return positions.astype(np.int64), valid, lengths


def build_behavior_sequences(
        log: Any, user: str = "user", item: str = "item", time: str = "time",
        label: str = "label", attributes: Sequence[str] = (), sparse: Sequence[str] = (),
        maxlen: int = 20, positive_only: bool = False,
        embedding_dim: Union[int, Mapping[str, int]] = 8, hist_prefix: str = "hist_",
        length_name: str = "seq_length",
        encoders: Optional[MutableMapping[str, CategoricalEncoder]] = None, min_count: int = 1,
) -> Tuple[Dict[str, np.ndarray], np.ndarray, List[Feature]]:
    """Model inputs with behaviour histories, one row per event of ``log``.

    For each event the history is the same user's events with a strictly earlier ``time``
    (ties in time are never history of each other), ordered by (time, item), restricted to
    ``label == 1`` when ``positive_only``, the most recent ``maxlen`` kept, oldest first and
    left-aligned (padding 0 at the end).

    Args:
        log: dict of 1-D arrays or a pandas DataFrame, one row per event.
        user: column name of the user id.
        item: column name of the item id.
        time: column name of the event time (numeric or datetime64).
        label: column name of the 0/1 label.
        attributes: item attribute columns (e.g. ``("genre",)``); each gets a candidate
            feature and a ``hist_<attr>`` sequence aligned with ``hist_<item>``.
        sparse: other categorical columns (user or context features), encoded as SparseFeats.
        maxlen: T, the history width.
        positive_only: only events with label 1 enter histories.
        embedding_dim: one width for all features, or a mapping from column name to width
            (a history uses its candidate's width).
        hist_prefix: prefix of the history features' names (``hist_`` + column).
        length_name: name of the length column.
        encoders: column name -> :class:`CategoricalEncoder`. Encoders present are used as
            given (fitted on training data, so unseen values become the OOV id 1); missing
            ones are fitted on this log and added to the mapping, so you can keep them.
        min_count: ``min_count`` of encoders fitted here.

    Returns:
        ``(x, y, features)``: ``x`` maps feature names to int64 arrays (ids, ``(N, maxlen)``
        histories, the ``(N,)`` length column) and also carries the raw ``time`` column; rows
        are in the order of ``log``. ``y`` is float32 (N,). ``features`` declares the inputs
        (histories named ``hist_<column>``, so ``ctrkit.build('din', features)`` pairs them).

    Raises:
        InputError: a missing column (named), an unsortable time, a label not 0/1, bad maxlen.

    Example:
        >>> log = {"user": ["ann", "ann", "ann", "bob"], "item": ["a", "b", "c", "a"],
        ...        "time": [1, 2, 3, 1], "label": [1, 0, 1, 1]}
        >>> x, y, features = build_behavior_sequences(log, maxlen=3, positive_only=True)
        >>> x["hist_item"].tolist()      # ids: a -> 2, b -> 3, c -> 4; ann's 2nd and 3rd rows
        [[0, 0, 0], [2, 0, 0], [2, 0, 0], [0, 0, 0]]
        >>> [f.name for f in features]
        ['user', 'item', 'hist_item']
    """
    if isinstance(maxlen, bool) or not hasattr(maxlen, "__index__") or int(maxlen) < 1:
        raise ConfigError(f"maxlen must be an integer >= 1, got {maxlen!r}.")
    maxlen = int(maxlen)
    attributes, sparse = list(attributes), list(sparse)
    clash = {user, item, time, label} & set(attributes + sparse)
    if clash:
        raise ConfigError(f"Column(s) {sorted(clash)} are named both as user/item/time/label and "
                          f"as attributes/sparse; list each column once.")
    cols = _columns(log, [user, item, time, label] + attributes + sparse)
    t = _sortable_time(cols[time], time)
    y = _binary_labels(cols[label], label)
    if encoders is None:
        encoders = {}
    ids: Dict[str, np.ndarray] = {}
    for c in [user, item] + attributes + sparse:
        enc = encoders.get(c)
        if enc is None:
            enc = encoders[c] = CategoricalEncoder(c, min_count=min_count).fit(cols[c])
        ids[c] = enc.transform(cols[c])

    def dim(c: str) -> int:
        return int(embedding_dim[c]) if isinstance(embedding_dim, Mapping) else int(embedding_dim)

    eligible = y == 1 if positive_only else np.ones(len(y), dtype=bool)
    positions, valid, lengths = history_positions(
        _order_ranks(cols[user]), t, _order_ranks(cols[item]), eligible, maxlen)
    x: Dict[str, np.ndarray] = {c: ids[c] for c in [user, item] + attributes + sparse}
    features: List[Feature] = [SparseFeat(c, encoders[c].vocabulary_size, dim(c))
                               for c in [user, item] + attributes + sparse]
    for c in [item] + attributes:
        name = hist_prefix + c
        if name in x or name == length_name:
            raise ConfigError(f"History feature name '{name}' collides with a column; choose "
                              f"another hist_prefix.")
        x[name] = np.where(valid, ids[c][positions], 0).astype(np.int64)
        features.append(VarLenSparseFeat(
            SparseFeat(name, encoders[c].vocabulary_size, dim(c)), maxlen,
            length_name=length_name))
    x[length_name] = lengths
    if time not in x:
        x[time] = cols[time]
    return x, y, features


def take_rows(data: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a dict of arrays (each array indexed) or of a DataFrame (``iloc``).

    Example:
        >>> import numpy as np
        >>> take_rows({"user": np.array([5, 6, 7])}, np.array([2, 0]))["user"].tolist()
        [7, 5]
    """
    if hasattr(data, "iloc"):
        return data.iloc[idx]
    return {k: _to_numpy(v, k)[idx] for k, v in data.items()}


def time_split(data: Any, user: str = "user", time: str = "time", last_k: int = 10,
               tiebreak: Optional[str] = None, return_index: bool = False) -> Tuple[Any, Any]:
    """Per-user time split: each user's last ``last_k`` events go to test, the rest to train.

    Events are ordered by (time, ``tiebreak`` column if given, row position). A user with at
    most ``last_k`` events has all of them in test.

    Args:
        data: dict of arrays (e.g. the ``x`` of :func:`build_behavior_sequences`, or a raw log)
            or a pandas DataFrame.
        user: column name of the user id.
        time: column name of the event time.
        tiebreak: optional column ordering same-time events (e.g. ``'item'``, as
            :func:`build_behavior_sequences` does).
        last_k: test events per user (>= 1).
        return_index: return sorted int64 row indices instead of the rows.

    Returns:
        ``(train, test)`` of the same type as ``data`` (or index arrays).

    Raises:
        InputError: a missing column or an unsortable time.
        ConfigError: bad ``last_k``.

    Example:
        >>> log = {"user": [1, 1, 1, 2, 2], "time": [3, 1, 2, 5, 4]}
        >>> train, test = time_split(log, last_k=1, return_index=True)
        >>> train.tolist(), test.tolist()        # each user's latest event is test
        ([1, 2, 4], [0, 3])
    """
    if isinstance(last_k, bool) or not hasattr(last_k, "__index__") or int(last_k) < 1:
        raise ConfigError(f"last_k must be an integer >= 1, got {last_k!r}.")
    needed = [user, time] + ([tiebreak] if tiebreak else [])
    cols = _columns(data, needed, what="data")
    t = _sortable_time(cols[time], time)
    n = len(t)
    tie = _order_ranks(cols[tiebreak]) if tiebreak else np.zeros(n, dtype=np.int64)
    u = _order_ranks(cols[user])
    order = np.lexsort((np.arange(n), tie, t, u))
    u_s = u[order]
    last_of_user = np.ones(n, dtype=bool)
    last_of_user[:-1] = u_s[1:] != u_s[:-1]
    # position of each user's last event, propagated backwards
    ends = np.minimum.accumulate(np.where(last_of_user, np.arange(n), n)[::-1])[::-1]
    from_end = ends - np.arange(n)
    is_test = np.zeros(n, dtype=bool)
    is_test[order] = from_end < int(last_k)
    train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if return_index:
        return train_idx, test_idx
    return take_rows(data, train_idx), take_rows(data, test_idx)


__all__ = ["build_behavior_sequences", "history_positions", "time_split", "take_rows"]
