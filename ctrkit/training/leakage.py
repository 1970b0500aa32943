"""A data check: validation rows that appear verbatim in the training rows.

A sample such as the Criteo head file (900 distinct rows, each repeated 12 times) split into
training and validation scores a validation AUC near 1.0 that says nothing about new data.
``fit`` hashes every row of both parts (vectorised, one 64-bit hash per row over all input
columns) and warns with :class:`~ctrkit.errors.DataLeakageWarning` when more than
:data:`MIN_FRACTION` of the validation rows, and at least :data:`MIN_ROWS` of them, are exact
copies of training rows, unless the declared features are so coarse that such copies happen by
chance (only sparse features whose vocabulary sizes multiply to fewer than 100 times the
training rows). Labels are not part of the comparison.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence, Tuple

import numpy as np
import torch

from ..errors import DataLeakageWarning
from ..features import Feature, SparseFeat, VarLenSparseFeat
from ..inputs import Columns

MIN_FRACTION = 0.5
MIN_ROWS = 50
_PRIME = np.uint64(0x100000001B3)


def row_hashes(columns: Columns) -> np.ndarray:
    """One uint64 per row over every input column (ids, dense values, sequences, lengths).

    Args:
        columns: validated inputs.

    Returns:
        (rows,) uint64; equal rows have equal hashes (distinct rows collide with probability
        about 2**-64).

    Example:
        >>> import torch
        >>> cols = Columns({"a": torch.tensor([1, 2, 1]), "b": torch.tensor([[.5], [.5], [.5]])}, 3)
        >>> h = row_hashes(cols)
        >>> bool(h[0] == h[2]), bool(h[0] == h[1])
        (True, False)
    """
    n = len(columns)
    h = np.full(n, 0xCBF29CE484222325, dtype=np.uint64)
    for key in sorted(columns.tensors):
        if key.startswith("group:"):
            continue
        t = columns.tensors[key].reshape(n, -1)
        bits = (t.double() if t.is_floating_point() else t.long()).numpy()
        words = np.ascontiguousarray(bits).view(np.uint64).reshape(n, -1)
        for j in range(words.shape[1]):  # columns, not rows: a handful of vectorised passes
            h = (h ^ words[:, j]) * _PRIME
            h ^= h >> np.uint64(29)
    return h


def duplicate_rows(train: Columns, val: Columns) -> Tuple[int, int]:
    """``(validation rows found verbatim in train, validation rows)``."""
    return int(np.isin(row_hashes(val), row_hashes(train)).sum()), len(val)


def chance_duplicates_likely(features: Sequence[Feature], n_train: int) -> bool:
    """True when only sparse features are declared and their combinations are few."""
    if not all(isinstance(f, SparseFeat) and not isinstance(f, VarLenSparseFeat)
               for f in features):
        return False
    space = math.prod(int(f.vocabulary_size) for f in features)  # type: ignore[union-attr]
    return space < 100 * max(n_train, 1)


def warn_on_leakage(features: Sequence[Feature], train: Columns, val: Columns,
                    source: str) -> None:
    """Warn (DataLeakageWarning) when most validation rows are copies of training rows."""
    if chance_duplicates_likely(features, len(train)):
        return
    with torch.no_grad():
        dup, n = duplicate_rows(train, val)
    if n and dup >= MIN_ROWS and dup > MIN_FRACTION * n:
        warnings.warn(
            f"{dup} of {n} validation rows ({dup / n:.0%}) from {source} appear verbatim in "
            f"the training rows, so validation metrics measure memorisation, not "
            f"generalisation. Deduplicate the data before splitting (e.g. "
            f"df.drop_duplicates()), or split by time or user. If the repetition is intended, "
            f"silence this with warnings.filterwarnings('ignore', "
            f"category=ctrkit.errors.DataLeakageWarning).", DataLeakageWarning, stacklevel=4)
