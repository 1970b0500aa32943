"""Ragged (variable-length) sequences: one shared padding policy for the whole of ctrkit.

Two layouts exist, and both are stated here once:

- :func:`pad_sequences` is Keras's ``keras.utils.pad_sequences`` (same arguments, same
  semantics, same defaults except ``dtype='int64'``, ctrkit's id type): by default it pads and
  truncates at the *front* (``'pre'``). Use it when you want Keras's layout.
- **The model-input policy** (:func:`ragged_to_padded`, and what ``fit``/``evaluate``/
  ``predict`` do with a ragged sequence column): each row's list is chronological, oldest
  first, as :func:`ctrkit.data.build_behavior_sequences` produces it. The **last** ``maxlen``
  entries (the most recent behaviours) are kept, left-aligned, followed by padding id 0, and the
  row's length is ``min(len(row), maxlen)``. This is exactly the layout of
  :func:`~ctrkit.data.build_behavior_sequences` (valid positions first, then padding), so
  ragged input and builder output agree.

Ragged data is carried as Arrow-style flat ``values`` plus ``offsets`` (``N + 1`` int64
positions: row ``i`` is ``values[offsets[i]:offsets[i + 1]]``); :func:`to_ragged` makes them from
Python lists of lists, numpy object arrays or a pandas column of lists/arrays.

    >>> values, offsets = to_ragged([[5, 6, 7], [8], []])
    >>> ids, lengths = ragged_to_padded(values, offsets, maxlen=2)
    >>> ids.tolist(), lengths.tolist()
    ([[6, 7], [8, 0], [0, 0]], [2, 1, 0])
    >>> pad_sequences([[5, 6, 7], [8]], maxlen=2).tolist()    # Keras: 'pre' padding/truncating
    [[6, 7], [0, 8]]
"""
from __future__ import annotations

import itertools
from typing import Any, Optional, Tuple

import numpy as np

from ..errors import ConfigError, InputError, InputTypeError

_SIDES = ("pre", "post")


def _is_missing(cell: Any) -> bool:
    return cell is None or (isinstance(cell, float) and cell != cell)


class Ragged:
    """A ragged column already flat: ``values`` and ``offsets`` as :func:`to_ragged` returns
    them (row ``r`` is ``values[offsets[r]:offsets[r + 1]]``). Readers that decode list
    columns flat (Parquet) pass this, so the in-memory rules convert them without a per-row
    copy.

    Example:
        >>> import numpy as np
        >>> col = Ragged(np.array([1, 2, 3]), np.array([0, 2, 2, 3]))
        >>> len(col), to_ragged(col)[1].tolist()
        (3, [0, 2, 2, 3])
    """

    def __init__(self, values: np.ndarray, offsets: np.ndarray) -> None:
        self.values, self.offsets = values, np.asarray(offsets, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1


def _cells(sequences: Any, name: str) -> Any:
    """The rows of a ragged column as an indexable sequence of per-row lists/arrays."""
    try:
        import torch
        if isinstance(sequences, torch.Tensor):
            sequences = sequences.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if hasattr(sequences, "to_numpy") and not isinstance(sequences, np.ndarray):
        sequences = sequences.to_numpy()  # pandas Series of lists -> object array (no copy)
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise InputTypeError(f"'{name}' must be a list of sequences (one list of ids per row), "
                             f"got {type(sequences).__name__}.")
    return sequences


def to_ragged(sequences: Any, name: str = "sequences") -> Tuple[np.ndarray, np.ndarray]:
    """Flat values and offsets of a column of variable-length rows.

    Args:
        sequences: a list of lists/tuples/arrays, a numpy object array of them, a pandas Series
            of lists/arrays, or a rectangular 2-D array/tensor (every row then has its full
            width; no value is treated as padding).
        name: used in error messages (e.g. the feature name).

    Returns:
        ``(values, offsets)``: ``values`` is the 1-D concatenation of all rows (numpy's dtype
        for those values; int64 when there are none), ``offsets`` int64 of shape ``(N + 1,)``
        with ``offsets[0] == 0``.

    Raises:
        InputTypeError: ``sequences`` is not a column of sequences, or a row is a scalar or a
            string.
        InputError: a row is missing (None/NaN): pass ``[]`` for an empty history instead.

    Example:
        >>> v, o = to_ragged([[1, 2], [], [3]])
        >>> v.tolist(), o.tolist()
        ([1, 2, 3], [0, 2, 2, 3])
    """
    if isinstance(sequences, Ragged):
        off = check_offsets(sequences.offsets, len(sequences.values), name)
        return np.asarray(sequences.values)[off[0]:off[-1]], off - off[0]
    seqs = _cells(sequences, name)
    if isinstance(seqs, np.ndarray) and seqs.dtype != object:
        if seqs.ndim != 2:
            raise InputError(f"'{name}' has shape {seqs.shape}; a sequence column needs one "
                             f"list of values per row (a list of lists or a 2-D array).")
        n, t = seqs.shape
        return seqs.reshape(-1), np.arange(n + 1, dtype=np.int64) * t
    n = len(seqs)
    lengths = np.empty(n, dtype=np.int64)
    for i, cell in enumerate(seqs):  # one pass over rows; values are never touched one by one
        if isinstance(cell, (str, bytes)) or not hasattr(cell, "__len__"):
            if _is_missing(cell):
                raise InputError(f"'{name}' has a missing row (None/NaN) at row {i}; pass an "
                                 f"empty list [] for a row without history.")
            raise InputTypeError(f"'{name}' has the value {cell!r} at row {i}, but each row "
                                 f"must be a list of values (e.g. [3, 7, 9]).")
        lengths[i] = len(cell)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] == 0:
        return np.zeros(0, dtype=np.int64), offsets
    if all(isinstance(c, np.ndarray) for c in seqs):
        values = np.concatenate([np.asarray(c).reshape(-1) for c in seqs])
    else:
        values = np.asarray(list(itertools.chain.from_iterable(seqs)))
    if values.ndim != 1 or len(values) != offsets[-1]:
        raise InputTypeError(f"'{name}' has nested rows; each row must be a flat list of "
                             f"values.")
    return values, offsets


def check_offsets(offsets: Any, n_values: int, name: str = "sequences") -> np.ndarray:
    """Offsets as int64, checked: 1-D, non-decreasing, within ``values``."""
    off = np.asarray(offsets)
    if off.ndim != 1 or off.size < 1 or off.dtype.kind not in "iu":
        raise InputError(f"'{name}': offsets must be a 1-D integer array of N + 1 positions, "
                         f"got shape {off.shape} and dtype {off.dtype}.")
    off = off.astype(np.int64, copy=False)
    if (np.diff(off) < 0).any() or off[0] < 0 or off[-1] > n_values:
        raise InputError(f"'{name}': offsets must be non-decreasing positions in "
                         f"0..{n_values} (the number of values).")
    return off


def ragged_to_padded(values: Any, offsets: Any, maxlen: int
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """The model-input layout of ragged rows: the most recent ``maxlen`` ids, left-aligned.

    Each row ``values[offsets[i]:offsets[i + 1]]`` is chronological (oldest first). Its
    **last** ``maxlen`` entries are kept, in order, at positions ``0..len-1``; the rest of the
    row is padding id 0; ``lengths[i] = min(row length, maxlen)``. Vectorised: no loop over
    rows. ``offsets[0]`` need not be 0 (an Arrow slice).

    Args:
        values: 1-D integer ids (numpy, list or tensor).
        offsets: ``N + 1`` non-decreasing int positions into ``values``.
        maxlen: T, the width of the output (>= 0).

    Returns:
        ``(ids, lengths)``: int64 ``(N, maxlen)`` and int64 ``(N,)``.

    Raises:
        ConfigError: ``maxlen`` is not an integer >= 0.
        InputTypeError: ``values`` are not integers (encode raw values first).
        InputError: malformed ``offsets``.

    Example:
        >>> ragged_to_padded([1, 2, 3, 4], [0, 3, 3, 4], maxlen=2)[0].tolist()
        [[2, 3], [0, 0], [4, 0]]
    """
    if isinstance(maxlen, bool) or not hasattr(maxlen, "__index__") or int(maxlen) < 0:
        raise ConfigError(f"maxlen must be an integer >= 0, got {maxlen!r}.")
    maxlen = int(maxlen)
    vals = np.asarray(values.detach().cpu().numpy() if hasattr(values, "detach") else values)
    if vals.size == 0:
        vals = vals.astype(np.int64)
    if vals.ndim != 1:
        raise InputError(f"values must be 1-D, got shape {vals.shape}.")
    if vals.dtype.kind not in "iub":
        raise InputTypeError(f"ragged_to_padded takes integer ids, got dtype {vals.dtype}; "
                             f"encode raw values first (e.g. with a CategoricalEncoder).")
    off = check_offsets(offsets, len(vals))
    kept = np.minimum(np.diff(off), maxlen)
    j = np.arange(maxlen, dtype=np.int64)
    valid = j[None, :] < kept[:, None]
    src = np.where(valid, (off[1:] - kept)[:, None] + j[None, :], 0)
    if len(vals):
        ids = np.where(valid, vals.astype(np.int64, copy=False)[src], 0)
    else:
        ids = np.zeros(valid.shape, dtype=np.int64)
    return ids.astype(np.int64, copy=False), kept.astype(np.int64, copy=False)


def pad_sequences(sequences: Any, maxlen: Optional[int] = None, dtype: Any = "int64",
                  padding: str = "pre", truncating: str = "pre", value: Any = 0) -> np.ndarray:
    """Pad sequences to one length, with the semantics of ``keras.utils.pad_sequences``.

    Sequences longer than ``maxlen`` are truncated (``truncating='pre'`` drops values at the
    front, ``'post'`` at the end); shorter ones are filled with ``value`` (``padding='pre'``
    before the values, ``'post'`` after them). ``maxlen=None`` pads to the longest sequence.
    Entries may themselves be arrays of one shape (taken from the first non-empty sequence).
    The one default that differs from Keras is ``dtype='int64'`` (Keras: ``'int32'``):
    ctrkit keeps ids int64 end to end.

    Note the defaults put padding at the **front**; ctrkit's models read a sequence with its
    length column as valid positions first (``padding='post'``, ``truncating='pre'`` gives that
    layout, see :func:`ragged_to_padded`). ``fit``/``predict`` accept unpadded lists directly.

    Args:
        sequences: list of sequences (lists/arrays; a pandas column or object array works too).
        maxlen: output width (None: the longest sequence).
        dtype: output dtype (a string dtype needs a string ``value``).
        padding: ``'pre'`` or ``'post'``: where the padding goes.
        truncating: ``'pre'`` or ``'post'``: which end a too-long sequence loses.
        value: the padding value.

    Returns:
        numpy array of shape ``(len(sequences), maxlen) + sample_shape``.

    Raises:
        ConfigError: ``padding``/``truncating`` not 'pre'/'post', ``maxlen`` < 0, a string dtype
            with a non-string ``value``.
        InputError: entries of different shapes, or a sequence that is not a list.

    Example:
        >>> pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="post").tolist()
        [[2, 3], [4, 0]]
    """
    if padding not in _SIDES:
        raise ConfigError(f"padding must be 'pre' or 'post', got {padding!r}.")
    if truncating not in _SIDES:
        raise ConfigError(f"truncating must be 'pre' or 'post', got {truncating!r}.")
    if maxlen is not None and (isinstance(maxlen, bool) or not hasattr(maxlen, "__index__")
                               or int(maxlen) < 0):
        raise ConfigError(f"maxlen must be None or an integer >= 0, got {maxlen!r}.")
    dt = np.dtype(dtype)
    if dt.kind in "SU" and not isinstance(value, str):
        raise ConfigError(f"dtype {dtype!r} is not compatible with value's type "
                          f"{type(value).__name__}; pass a string value (e.g. value='').")
    seqs = _cells(sequences, "sequences")
    rows = list(seqs)
    lengths = np.empty(len(rows), dtype=np.int64)
    for i, s in enumerate(rows):
        if isinstance(s, (str, bytes)) or not hasattr(s, "__len__"):
            raise InputError(f"sequences must be a list of iterables; row {i} is {s!r}.")
        lengths[i] = len(s)
    width = int(lengths.max()) if (maxlen is None and len(rows)) else int(maxlen or 0)
    sample_shape: Tuple[int, ...] = ()
    for s in rows:
        if len(s):
            sample_shape = np.asarray(s).shape[1:]
            break
    out = np.full((len(rows), width) + sample_shape, value, dtype=dt)
    if width == 0 or not len(rows) or lengths.sum() == 0:
        return out
    nonempty = [np.asarray(s) for s in rows if len(s)]
    flat = np.concatenate([a.reshape((len(a),) + a.shape[1:]) for a in nonempty]) \
        if all(a.shape[1:] == sample_shape for a in nonempty) else None
    if flat is None:
        bad = next(i for i, s in enumerate(rows) if len(s)
                   and np.asarray(s).shape[1:] != sample_shape)
        raise InputError(f"Shape of sample {np.asarray(rows[bad]).shape[1:]} of sequence at "
                         f"position {bad} is different from expected shape {sample_shape}.")
    flat = flat.astype(dt)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    kept = np.minimum(lengths, width)
    j = np.arange(width, dtype=np.int64)
    # source start of each row's kept values, and the output column of its first kept value
    start = offsets[:-1] + (lengths - kept if truncating == "pre" else 0)
    first_col = width - kept if padding == "pre" else np.zeros_like(kept)
    rel = j[None, :] - first_col[:, None]
    valid = (rel >= 0) & (rel < kept[:, None])
    r, c = np.nonzero(valid)
    out[r, c] = flat[start[r] + rel[r, c]]
    return out


__all__ = ["Ragged", "pad_sequences", "ragged_to_padded", "to_ragged", "check_offsets"]
