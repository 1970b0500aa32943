"""Validate user data once and turn it into typed columnar tensors.

Sparse ids and lengths become int64 (an id above 2**24 keeps its own value), dense values
float32. Batches are taken by index from the columns; there is no per-sample Dataset.
"""
from __future__ import annotations

import hashlib
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch

from .errors import InputError, InputTypeError
from .features import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, get_feature_names


def _to_numpy(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if hasattr(value, "to_numpy"):  # pandas Series / DataFrame
        value = value.to_numpy()
    arr = np.asarray(value)
    if arr.dtype == object and arr.ndim == 1 and len(arr) and isinstance(
            arr[0], (list, tuple, np.ndarray)):
        try:  # a column of equal-length lists (pandas cell per row)
            arr = np.stack([np.asarray(v) for v in arr])
        except ValueError as e:
            raise InputError(f"Feature '{name}' holds lists of different lengths; pad every "
                             f"row to the declared maxlen first.") from e
    return arr


def _tensor(arr: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``arr``'s memory when it may (contiguous and writable), else a copy.

    pandas hands out read-only views (``Series.to_numpy``); torch warns on those and could
    write through them, so they are copied once here.
    """
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:
        arr = arr.copy()
    return torch.from_numpy(arr)


def _as_mapping(features: Sequence[Feature], x: Any) -> Mapping[str, Any]:
    if isinstance(x, Mapping):
        return x
    if hasattr(x, "columns") and hasattr(x, "__getitem__"):  # pandas DataFrame
        return {c: x[c] for c in x.columns}
    if isinstance(x, (list, tuple)):
        names = get_feature_names(features)
        if len(x) != len(names):
            raise InputError(f"x is a list of {len(x)} arrays but the features need "
                             f"{len(names)} inputs in this order: {names}. Pass a dict keyed by "
                             f"feature name instead.")
        return dict(zip(names, x))
    raise InputTypeError(f"x must be a dict of arrays keyed by feature name (or a pandas "
                         f"DataFrame), got {type(x).__name__}.")


def _mix64(v: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a stable, well-spread hash of int64 values."""
    z = v.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def hash_values(values: Any, buckets: int) -> np.ndarray:
    """Hash raw values (ints or strings) into ``[1, buckets)``; 0 stays reserved for padding.

    The raw value ``0`` (and ``""``/``None``) maps to 0. Stable across processes and runs.
    Integers are hashed arithmetically (vectorised); other values are hashed once per
    distinct value with BLAKE2b.
    """
    if buckets < 2:
        raise InputError(f"Hashing needs vocabulary_size >= 2 (0 is padding), got {buckets}.")
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        h = _mix64(arr.astype(np.int64))
        out = (h % np.uint64(buckets - 1)).astype(np.int64) + 1
        return np.where(arr == 0, 0, out)
    uniq, inverse = np.unique(arr.astype(str), return_inverse=True)
    codes = np.array([int.from_bytes(hashlib.blake2b(u.encode(), digest_size=8).digest(), "little")
                      for u in uniq], dtype=np.uint64)
    out = (codes % np.uint64(buckets - 1)).astype(np.int64) + 1
    out = np.where((uniq == "") | (uniq == "None") | (uniq == "0"), 0, out)
    return out[inverse].reshape(arr.shape)


def _check_ids(name: str, arr: np.ndarray, vocab: int) -> np.ndarray:
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "b":
            arr = arr.astype(np.int64)
        else:
            raise InputTypeError(
                f"Feature '{name}' must hold integer ids, got an array of dtype {arr.dtype}. "
                f"Encode the values to ints in [0, {vocab}) (e.g. with ctrkit.data encoders or "
                f".astype('int64')), or declare the feature with use_hash=True.")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise InputError(f"Feature '{name}' has an id above int64's range.")
    arr = arr.astype(np.int64, copy=False)
    # min/max first: no (rows, T) temporaries unless something is out of range
    if arr.size == 0 or (int(arr.min()) >= 0 and int(arr.max()) < vocab):
        return arr
    bad = (arr < 0) | (arr >= vocab)
    if bad.any():
        pos = np.argwhere(bad)[0]
        where = f"row {pos[0]}" + (f", position {pos[1]}" if arr.ndim > 1 else "")
        raise InputError(
            f"Feature '{name}' has id {arr[tuple(pos)]} at {where}, but its vocabulary_size is "
            f"{vocab} (valid ids 0..{vocab - 1}). Raise vocabulary_size or re-encode the ids.")
    return arr


def _check_finite(name: str, arr: np.ndarray) -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        pos = tuple(np.argwhere(~finite)[0])
        raise InputError(f"'{name}' has a non-finite value {arr[pos]} at row {pos[0]}; replace "
                         f"NaN/inf (e.g. fill with 0 or the column mean) before passing it.")


def _rows(name: str, arr: np.ndarray, n: Optional[int]) -> int:
    if arr.ndim == 0:
        raise InputError(f"Feature '{name}' is a scalar; pass one value per row.")
    if n is not None and arr.shape[0] != n:
        raise InputError(f"Feature '{name}' has {arr.shape[0]} rows but the other inputs have "
                         f"{n}; every input must have one entry per row.")
    return arr.shape[0]


def _check_row_counts(data: Mapping[str, Any], keys: List[str]) -> None:
    counts = {}
    for k in keys:
        try:
            counts[k] = len(data[k])
        except TypeError:
            continue  # scalars are reported by the per-feature checks
    if len(set(counts.values())) > 1:
        values = list(counts.values())
        common = max(set(values), key=values.count)
        odd = {k: c for k, c in counts.items() if c != common}
        raise InputError(
            "Inputs have different row counts: "
            + ", ".join(f"feature '{k}' has {c} rows" for k, c in odd.items())
            + f" but the other inputs have {common}; every input must have one entry per row.")


class Columns:
    """Validated inputs: a dict of CPU tensors with the same number of rows.

    ``take(idx)`` gathers a batch by index (vectorised; no per-sample collation);
    ``slice(start, stop)`` gives consecutive rows as views.
    """

    def __init__(self, tensors: Dict[str, torch.Tensor], n_rows: int) -> None:
        self.tensors = tensors
        self.n_rows = n_rows

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.tensors[key]

    def take(self, idx: torch.Tensor, device: Optional[torch.device] = None) -> Dict[str, torch.Tensor]:
        out = {k: v.index_select(0, idx) for k, v in self.tensors.items()}
        if device is not None and device.type != "cpu":
            out = {k: v.to(device, non_blocking=True) for k, v in out.items()}
        return out

    def slice(self, start: int, stop: int,
              device: Optional[torch.device] = None) -> Dict[str, torch.Tensor]:
        """Rows ``start:stop`` as views (no copy on the CPU): the batches of predict."""
        out = {k: v[start:stop] for k, v in self.tensors.items()}
        if device is not None and device.type != "cpu":
            out = {k: v.to(device, non_blocking=True) for k, v in out.items()}
        return out

    def subset(self, idx: torch.Tensor) -> "Columns":
        return Columns({k: v.index_select(0, idx) for k, v in self.tensors.items()}, len(idx))


def prepare_inputs(features: Sequence[Feature], x: Any, *, extra: Iterable[str] = ()) -> Columns:
    """Validate ``x`` against ``features`` and convert it once.

    Args:
        features: the model's declarations.
        x: dict of arrays (numpy, list, tensor, pandas Series) keyed by feature name, a pandas
            DataFrame, or a list of arrays in :func:`get_feature_names` order. Extra keys are
            ignored.
        extra: further keys of ``x`` to carry along unchecked (int64), e.g. a GAUC group column.

    Returns:
        :class:`Columns` holding int64 ids/lengths and float32 dense values.

    Raises:
        InputError: naming the feature, the offending value and the fix.
    """
    data = _as_mapping(features, x)
    out: Dict[str, torch.Tensor] = {}
    n: Optional[int] = None
    needed = get_feature_names(features)
    missing = [k for k in needed if k not in data]
    if missing:
        raise InputError(f"x is missing feature(s) {missing}. The model needs {needed}; "
                         f"x has {sorted(map(str, data))}.")
    _check_row_counts(data, list(needed) + [k for k in extra if k in data])
    lengths: Dict[str, VarLenSparseFeat] = {}
    for f in features:
        arr = _to_numpy(data[f.name], f.name)
        n = _rows(f.name, arr, n)
        if isinstance(f, DenseFeat):
            if arr.dtype.kind not in "fiub":
                raise InputTypeError(f"Dense feature '{f.name}' must be numeric, got dtype "
                                     f"{arr.dtype}.")
            if f.transform_fn is not None:
                arr = np.asarray(f.transform_fn(arr))
            arr = arr.astype(np.float32).reshape(n, -1)
            if arr.shape[1] != f.dimension:
                raise InputError(f"Dense feature '{f.name}' has {arr.shape[1]} values per row "
                                 f"but is declared with dimension={f.dimension}.")
            _check_finite(f.name, arr)
            out[f.name] = _tensor(arr)
            continue
        if isinstance(f, VarLenSparseFeat):
            if arr.ndim != 2 or arr.shape[1] != f.maxlen:
                raise InputError(
                    f"Sequence feature '{f.name}' has shape {arr.shape} but needs (rows, "
                    f"maxlen={f.maxlen}); pad or truncate each row to {f.maxlen} ids "
                    f"(padding id 0).")
            if f.length_name:
                lengths.setdefault(f.length_name, f)
        else:
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim != 1:
                raise InputError(f"Sparse feature '{f.name}' has shape {arr.shape}; it takes "
                                 f"one id per row, shape (rows,).")
        if f.use_hash:
            arr = hash_values(arr, f.vocabulary_size)
        arr = _check_ids(f.name, arr, f.vocabulary_size)
        out[f.name] = _tensor(arr)
    for lname, f in lengths.items():
        arr = _to_numpy(data[lname], lname)
        n = _rows(lname, arr, n)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise InputTypeError(f"Length feature '{lname}' must be one integer per row, got "
                                 f"shape {arr.shape} and dtype {arr.dtype}.")
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr > f.maxlen)
        if bad.any():
            r = int(np.argmax(bad))
            raise InputError(f"Length feature '{lname}' has value {arr[r]} at row {r}, but it "
                             f"must lie in 0..{f.maxlen} (the maxlen of '{f.name}').")
        out[lname] = _tensor(arr)
    for key in extra:
        if key in out:
            continue
        if key not in data:
            raise InputError(f"x has no column '{key}', which is needed here (e.g. as the GAUC "
                             f"group); x has {sorted(map(str, data))}.")
        arr = _to_numpy(data[key], key).reshape(-1)
        n = _rows(key, arr, n)
        if arr.dtype.kind not in "iu":
            arr = np.unique(arr.astype(str), return_inverse=True)[1]
        out[key] = _tensor(arr.astype(np.int64))
    assert n is not None
    return Columns(out, n)


def prepare_target(y: Any, n: int, task: str, *, name: str = "y") -> torch.Tensor:
    """Labels as a float32 (n,) tensor; binary labels must be 0 or 1."""
    if y is None:
        raise InputError(f"{name} is None; pass one label per row.")
    arr = _to_numpy(y, name)
    if arr.dtype.kind not in "fiub":
        raise InputTypeError(f"{name} must be numeric, got dtype {arr.dtype}.")
    arr = arr.astype(np.float32)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"{name} has shape {arr.shape}; pass one label per row, shape (rows,).")
    if arr.shape[0] != n:
        raise InputError(f"{name} has {arr.shape[0]} labels but x has {n} rows.")
    _check_finite(name, arr)
    if task == "binary":
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            r = int(np.argmax(bad))
            raise InputError(f"{name} has label {arr[r]} at row {r}, but task='binary' needs "
                             f"labels in {{0, 1}}. Binarise the labels or use "
                             f"task='regression'.")
    return _tensor(arr)


def prepare_weights(w: Any, n: int, *, name: str = "sample_weight") -> Optional[torch.Tensor]:
    if w is None:
        return None
    t = prepare_target(w, n, "regression", name=name)
    if (t < 0).any():
        raise InputError(f"{name} has a negative weight; weights must be >= 0.")
    return t


__all__ = ["Columns", "prepare_inputs", "prepare_target", "prepare_weights", "hash_values"]
