"""Validate user data once and turn it into typed columnar tensors.

Sparse ids and lengths become int64 (an id above 2**24 keeps its own value), dense values
float32. Batches are taken by index from the columns; there is no per-sample Dataset.
"""
from __future__ import annotations

import collections.abc
import hashlib
import sys
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

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
    if arr.dtype.kind in "US" and arr.ndim == 1 and isinstance(value, (list, tuple)):
        # numpy writes a NaN among strings as the string 'nan': keep the cells as given, so
        # that a missing value in a list is missing (ctrkit.inputs.missing_mask) as in pandas
        cells = np.empty(len(value), dtype=object)
        cells[:] = list(value)
        if missing_mask(cells).any():
            arr = cells
    if arr.dtype == object and arr.ndim == 1 and len(arr) and isinstance(
            arr[0], (list, tuple, np.ndarray)):
        try:  # a column of equal-length lists (pandas cell per row)
            arr = np.stack([np.asarray(v) for v in arr])
        except ValueError as e:
            raise InputError(f"'{name}' holds lists of different lengths, where one value or "
                             f"one fixed-width row per row is needed (only sequence features "
                             f"take ragged lists).") from e
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
        _check_list_order(features, names, x)
        return dict(zip(names, x))
    raise InputTypeError(f"x must be a dict of arrays keyed by feature name (or a pandas "
                         f"DataFrame), got {type(x).__name__}.")


def _check_list_order(features: Sequence[Feature], names: List[str], x: Sequence[Any]) -> None:
    """A list ``x`` follows ``get_feature_names(features)``; refuse arrays whose shape or dtype
    shows they belong to another slot (a history where one id per row is expected, ...)."""
    kind = {f.name: f for f in features}
    for i, (name, value) in enumerate(zip(names, x)):
        f = kind.get(name)
        try:
            arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
        except ValueError:  # ragged lists: only a sequence takes them
            arr = np.empty(0, dtype=object)
        wide = arr.ndim == 2 and arr.shape[1] > 1
        numeric = arr.dtype.kind in "fiub"
        problem = None
        if isinstance(f, VarLenSparseFeat):
            if arr.ndim == 1 and numeric:
                problem = (f"a 1-D array, but sequence feature '{name}' expects one list of ids "
                           f"per row (2-D)")
        elif isinstance(f, DenseFeat):
            if wide and arr.shape[1] != f.dimension:
                problem = (f"shape {arr.shape}, but dense feature '{name}' has dimension "
                           f"{f.dimension}")
        elif wide:  # a sparse id or a length column
            problem = f"shape {arr.shape}, but '{name}' expects one id per row (1-D)"
        elif arr.dtype.kind == "f" and arr.size:
            frac = np.isfinite(arr) & (np.mod(arr, 1) != 0)  # NaN has its own error later
            if frac.any():
                problem = (f"non-integer floats (e.g. {arr[frac].ravel()[0]}), but '{name}' "
                           f"expects integer ids")
        if problem:
            raise InputError(f"x is a list, so its arrays must follow get_feature_names(features)"
                             f" order {names}; x[{i}] has {problem}. The list is probably in "
                             f"another order: reorder it, or pass a dict keyed by feature name.")


def _mix64(v: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a stable, well-spread hash of int64 values."""
    z = v.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def missing_mask(values: Any) -> np.ndarray:
    """Where a column of raw categorical values is missing: the one missing-value test.

    Missing is ``None`` (JSON ``null``, a null in Parquet), a float NaN, and pandas' ``NA`` and
    ``NaT``. Every path that turns raw values into ids (a :class:`ctrkit.data.CategoricalEncoder`
    at fit and transform, ``use_hash=True`` hashing, Parquet streaming, a JSON request) asks
    this function, so a missing value gets the same id however it arrives (see
    ``docs/data.md``, "Missing values"). Vectorised: pandas' ``isna`` when pandas is loaded
    (values holding ``pd.NA`` come from it), else ``v is None or v != v`` per object cell.

    Args:
        values: an array-like of raw values (any shape).

    Returns:
        A bool array of the values' shape, True where a value is missing.

    Example:
        >>> missing_mask(np.array(["a", None, float("nan")], dtype=object)).tolist()
        [False, True, True]
        >>> missing_mask(np.array([1.0, np.nan])).tolist()
        [False, True]
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "iubUS":
        return np.zeros(arr.shape, dtype=bool)
    if arr.dtype.kind in "fc":
        return np.isnan(arr)
    if arr.dtype.kind in "mM":
        return np.isnat(arr)
    pd = sys.modules.get("pandas")
    if pd is not None:
        return np.asarray(pd.isna(arr), dtype=bool).reshape(arr.shape)
    flat = arr.reshape(-1)
    out = np.fromiter((v is None or v != v for v in flat.tolist()), dtype=bool, count=flat.size)
    return out.reshape(arr.shape)


def hash_values(values: Any, buckets: int) -> np.ndarray:
    """Hash raw values (ints or strings) into ``[1, buckets)``; 0 stays reserved for padding.

    The raw value ``0``, ``""`` and every missing value (:func:`missing_mask`: ``None``,
    NaN, pandas ``NA``/``NaT``) map to 0. Stable across processes and runs. Integers are
    hashed arithmetically (vectorised); other values are hashed once per distinct value with
    BLAKE2b.

    Example:
        >>> hash_values(np.array(["a", None, float("nan")], dtype=object), 100)[1:].tolist()
        [0, 0]
    """
    if buckets < 2:
        raise InputError(f"Hashing needs vocabulary_size >= 2 (0 is padding), got {buckets}.")
    arr = np.asarray(values)
    missing = missing_mask(arr)
    if missing.any():
        out = np.zeros(arr.shape, dtype=np.int64)
        out[~missing] = hash_values(arr[~missing], buckets)
        return out
    arr = _numbers(arr)
    if arr.dtype.kind == "f":
        # an integral float hashes as the integer it holds: a pandas int column that a
        # missing value turned into float64 hashes like the ints a JSON request sends
        whole = (arr == np.round(arr)) & (np.abs(arr) <= 2 ** 53)
        out = np.empty(arr.shape, dtype=np.int64)
        out[whole] = hash_values(arr[whole].astype(np.int64), buckets)
        out[~whole] = hash_values(arr[~whole].astype(str), buckets)
        return out
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


def _numbers(arr: np.ndarray) -> np.ndarray:
    """An object column whose values are all numbers (ints/floats/bools among ``None`` once
    the missing ones are taken out, as JSON and pandas object columns give them) as the
    numeric array it stands for; anything else unchanged."""
    if arr.dtype == object and arr.size:
        inferred = np.asarray(arr.tolist())
        if inferred.dtype.kind in "iufb":
            return inferred
    return arr


#: Floats represent every integer exactly only up to this magnitude (float64: 2**53,
#: float32: 2**24); a float id beyond it may already have been rounded, e.g. by a pandas merge.
_EXACT_FLOAT_INT = {np.dtype(np.float64): 2 ** 53, np.dtype(np.float32): 2 ** 24,
                    np.dtype(np.float16): 2 ** 11}


def _where(pos: Tuple[int, ...], offsets: Optional[np.ndarray] = None) -> str:
    """'row r[, position p]' of a position in a column (or in flat ragged values)."""
    if offsets is not None:
        row = int(np.searchsorted(offsets, pos[0], side="right") - 1)
        return f"row {row}, position {int(pos[0] - offsets[row])}"
    return f"row {pos[0]}" + (f", position {pos[1]}" if len(pos) > 1 else "")


def _float_ids(name: str, arr: np.ndarray, offsets: Optional[np.ndarray]) -> np.ndarray:
    """Integral-valued float ids as int64, exactly; anything else is refused with the fix."""
    finite = np.isfinite(arr)
    if not finite.all():
        pos = tuple(np.argwhere(~finite)[0])
        what = "NaN (a missing value)" if np.isnan(arr[pos]) else f"{arr[pos]} (infinite)"
        raise InputError(
            f"Feature '{name}' has {what} at {_where(pos, offsets)}; ids must be integers. Fill "
            f"missing ids first (e.g. with the padding id 0 or an 'unknown' category) and "
            f"convert the column to int64.")
    frac = arr != np.floor(arr)
    if frac.any():
        pos = tuple(np.argwhere(frac)[0])
        raise InputTypeError(
            f"Feature '{name}' must hold integer ids, but has the non-integer value {arr[pos]} at "
            f"{_where(pos, offsets)} (dtype {arr.dtype}). Encode the values to ints (e.g. with "
            f"ctrkit.data encoders) or declare the feature with use_hash=True.")
    limit = _EXACT_FLOAT_INT.get(arr.dtype, 2 ** 11)
    big = np.abs(arr) > limit
    if big.any():
        pos = tuple(np.argwhere(big)[0])
        raise InputTypeError(
            f"Feature '{name}' holds ids as {arr.dtype} and has the id {arr[pos]:.0f} at "
            f"{_where(pos, offsets)}, above {limit}, the largest magnitude up to which {arr.dtype} "
            f"stores every integer exactly: the id may already be rounded. Keep the column "
            f"integer (pandas: a merge that introduces missing values turns int64 into float64; "
            f"fill them and use .astype('int64'), or the nullable 'Int64' dtype).")
    return arr.astype(np.int64)


def _check_ids(name: str, arr: np.ndarray, vocab: int, *, offsets: Optional[np.ndarray] = None,
               hint: str = "") -> np.ndarray:
    """Ids as int64 within ``[0, vocab)``; ``offsets`` when ``arr`` is flat ragged values."""
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "b":
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "f":
            arr = _float_ids(name, arr, offsets)
        else:
            raise InputTypeError(
                f"Feature '{name}' must hold integer ids, got an array of dtype {arr.dtype}. "
                f"Encode the values to ints in [0, {vocab}) (e.g. with ctrkit.data encoders or "
                f".astype('int64')), or declare the feature with use_hash=True.{hint}")
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise InputError(f"Feature '{name}' has an id above int64's range.")
    arr = arr.astype(np.int64, copy=False)
    # min/max first: no (rows, T) temporaries unless something is out of range
    if arr.size == 0 or (int(arr.min()) >= 0 and int(arr.max()) < vocab):
        return arr
    bad = (arr < 0) | (arr >= vocab)
    if bad.any():
        pos = tuple(np.argwhere(bad)[0])
        raise InputError(
            f"Feature '{name}' has id {arr[pos]} at {_where(pos, offsets)}, but its "
            f"vocabulary_size is {vocab} (valid ids 0..{vocab - 1}). Raise vocabulary_size or "
            f"re-encode the ids.{hint}")
    return arr


_DENSE_FIX = (" A dense feature has no missing-value id: fill or drop missing values before "
              "passing them (e.g. df['{name}'].fillna(0), or the training mean) and convert "
              "strings with pd.to_numeric(df['{name}']); ctrkit does not guess a value.")


def _dense_numbers(name: str, arr: np.ndarray) -> np.ndarray:
    """A dense column as numbers; a missing value or a string is refused with its row and the
    fix (a float NaN is refused by :func:`_check_finite` with its row)."""
    if arr.dtype.kind in "fiub":
        return arr
    missing = missing_mask(arr) if arr.dtype == object else np.zeros(arr.shape, dtype=bool)
    fix = _DENSE_FIX.format(name=name).strip()
    if missing.any():
        pos = tuple(np.argwhere(missing)[0])
        raise InputError(f"Dense feature '{name}' has a missing value "
                         f"({arr[pos]!r}) at {_where(pos)}. {fix}")
    numbers = _numbers(arr)
    if numbers.dtype.kind in "fiub":
        return numbers
    flat = arr.reshape(-1)
    bad = next((i for i, v in enumerate(flat.tolist())
                if isinstance(v, (str, bytes)) or not np.isscalar(v)), 0)
    pos = np.unravel_index(bad, arr.shape)
    raise InputTypeError(f"Dense feature '{name}' must be numeric, got dtype {arr.dtype} with "
                         f"the value {flat[bad]!r} at {_where(tuple(pos))}. {fix}")


def _check_finite(name: str, arr: np.ndarray, fix: str = "") -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        pos = tuple(np.argwhere(~finite)[0])
        raise InputError(f"'{name}' has a non-finite value {arr[pos]} at row {pos[0]}; replace "
                         f"NaN/inf (e.g. fill with 0 or the column mean) before passing it."
                         + fix)


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


class RawColumns(collections.abc.Mapping):
    """Columns of raw values together with the vocabularies that turn them into ids.

    :meth:`ctrkit.models.base.BaseModel.encode_inputs` returns one; :func:`prepare_inputs`
    encodes while it validates (so ragged lists and the padding of padded blocks are handled
    by the one padding policy). Indexing a column gives it encoded value by value, for callers
    that encode column by column.

    Args:
        data: the columns (a mapping of arrays).
        vocabularies: feature name -> :class:`ctrkit.vocabulary.Vocabulary` (may be empty).
        hint: appended to id errors (how to switch between raw values and ids).
    """

    def __init__(self, data: Mapping[str, Any], vocabularies: Mapping[str, Any],
                 hint: str = "") -> None:
        self.data, self.vocabularies, self.hint = data, vocabularies, hint

    def __getitem__(self, key: str) -> Any:
        value = self.data[key]
        vocab = self.vocabularies.get(key)
        return value if vocab is None else vocab.encode(key, _to_numpy(value, key))

    def __iter__(self):
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _is_rectangular(value: Any) -> bool:
    """A padded (rows, T) block (numpy/tensor), as opposed to a column of per-row lists."""
    if isinstance(value, torch.Tensor):
        return value.dim() != 1
    return isinstance(value, np.ndarray) and value.dtype != object and value.ndim != 1


def _length_column(data: Mapping[str, Any], lname: str, n: int) -> np.ndarray:
    arr = _to_numpy(data[lname], lname)
    _rows(lname, arr, n)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1 and arr.dtype.kind == "f" and arr.size:
        arr = _float_ids(lname, arr, None)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise InputTypeError(f"Length feature '{lname}' must be one integer per row, got "
                             f"shape {arr.shape} and dtype {arr.dtype}.")
    return arr.astype(np.int64)


class _Encoder:
    """Raw values -> checked int64 ids for one sparse feature (vocabulary, hash, range)."""

    def __init__(self, f: SparseFeat, vocab: Any, hint: str) -> None:
        self.f, self.vocab, self.hint = f, vocab, hint

    def __call__(self, arr: np.ndarray, offsets: Optional[np.ndarray] = None) -> np.ndarray:
        f = self.f
        if self.vocab is not None:
            arr = self.vocab.encode(f.name, arr)
        elif f.use_hash:
            arr = hash_values(arr, f.vocabulary_size)
        return _check_ids(f.name, arr, f.vocabulary_size, offsets=offsets, hint=self.hint)


def _padded_sequence(f: VarLenSparseFeat, arr: np.ndarray, lengths: Optional[np.ndarray],
                     encode: _Encoder) -> np.ndarray:
    """A (rows, maxlen) block already in the model layout (the length column gives validity)."""
    if arr.ndim != 2 or arr.shape[1] != f.maxlen:
        raise InputError(
            f"Sequence feature '{f.name}' has shape {arr.shape} but needs (rows, "
            f"maxlen={f.maxlen}) as a padded block. Pass each row as an unpadded list (ctrkit "
            f"keeps the most recent {f.maxlen} and derives the length column), or pad with "
            f"ctrkit.data.pad_sequences(rows, maxlen={f.maxlen}, padding='post', "
            f"truncating='pre').")
    if encode.vocab is None:
        return encode(arr)
    if lengths is None:  # raw values: which entries are padding is unknowable without lengths
        raise InputError(
            f"Sequence feature '{f.name}' is a padded (rows, {f.maxlen}) block of raw values but "
            f"declares no length_name, so its padding cannot be told from values. Pass each row "
            f"as an unpadded list of raw values, or pass encoded ids with encoded=True.")
    valid = np.arange(f.maxlen)[None, :] < lengths[:, None]
    ids = np.zeros(arr.shape, dtype=np.int64)
    ids[valid] = encode(arr[valid])  # padding positions' raw values are never looked up
    return ids


def _ragged_sequence(f: VarLenSparseFeat, values: np.ndarray, offsets: np.ndarray,
                     encode: _Encoder) -> Tuple[np.ndarray, np.ndarray]:
    from .data.padding import ragged_to_padded
    ids = encode(values, offsets)
    zero = ids == 0
    if zero.any():
        pos = int(np.argmax(zero))
        raise InputError(
            f"Sequence feature '{f.name}' holds the padding id 0 at {_where((pos,), offsets)} of "
            f"its lists. Lists are unpadded: every entry is a real behaviour (drop the padding), "
            f"or pass a padded (rows, {f.maxlen}) array together with its length column.")
    return ragged_to_padded(ids, offsets, f.maxlen)


def prepare_inputs(features: Sequence[Feature], x: Any, *, extra: Iterable[str] = (),
                   vocabularies: Optional[Mapping[str, Any]] = None,
                   ids_hint: str = "") -> Columns:
    """Validate ``x`` against ``features`` and convert it once.

    Sequence features take either a padded ``(rows, maxlen)`` block (numpy array or tensor;
    valid positions first, with the length column when the feature declares ``length_name``)
    or a **ragged** column: a list of lists, a numpy object array or a pandas column of
    lists/arrays, one unpadded chronological list per row. Ragged rows follow
    :mod:`ctrkit.data.padding`'s policy: the most recent ``maxlen`` entries are kept,
    left-aligned, and the length column is derived (if ``x`` also has it, it must agree: each
    row's list length, or that length capped at ``maxlen``).

    Args:
        features: the model's declarations.
        x: dict of arrays (numpy, list, tensor, pandas Series) keyed by feature name, a pandas
            DataFrame, or a list of arrays in :func:`get_feature_names` order. Extra keys are
            ignored. A :class:`Columns` is returned as it is.
        extra: further keys of ``x`` to carry along unchecked (int64), e.g. a GAUC group column.
        vocabularies: feature name -> :class:`ctrkit.vocabulary.Vocabulary` for features whose
            values are raw and must be encoded; others take ids.
        ids_hint: appended to errors about ids (e.g. how to switch between raw values and ids).

    Returns:
        :class:`Columns` holding int64 ids/lengths and float32 dense values.

    Raises:
        InputError: naming the feature, the offending value and the fix (also for 0 rows).
    """
    if isinstance(x, Columns):
        return _checked_columns(features, x, extra)
    if isinstance(x, RawColumns):
        vocabularies, ids_hint, x = x.vocabularies, x.hint, x.data
    vocabularies = vocabularies or {}
    data = _as_mapping(features, x)
    seqs = [f for f in features if isinstance(f, VarLenSparseFeat)]
    n = _row_count(features, data, seqs, extra)
    given_len = {ln: _length_column(data, ln, n) for ln in {f.length_name for f in seqs
                                                           if f.length_name} if ln in data}
    out: Dict[str, torch.Tensor] = {}
    derived: Dict[str, Tuple[str, np.ndarray]] = {}
    for f in features:
        if isinstance(f, DenseFeat):
            out[f.name] = _tensor(convert_dense(f, data[f.name], n))
            continue
        encode = _Encoder(f, vocabularies.get(f.name), ids_hint)
        if not isinstance(f, VarLenSparseFeat):
            out[f.name] = _tensor(convert_sparse(f, data[f.name], n, encode))
            continue
        given = given_len.get(f.length_name) if f.length_name else None
        ids, lengths = convert_sequence(f, data[f.name], n, given, encode)
        out[f.name] = _tensor(ids)
        if f.length_name and lengths is not None:
            share_length(derived, f, lengths)
    for f in seqs:
        ln = f.length_name
        if ln and ln not in out:
            out[ln] = _tensor(derived[ln][1] if ln in derived else given_len[ln])
    for key in extra:
        if key not in out:
            out[key] = _tensor(_extra_column(data, key, n))
    return Columns(out, n)


def _checked_columns(features: Sequence[Feature], x: Columns, extra: Iterable[str]) -> Columns:
    """Validated :class:`Columns` as they are, once they hold every needed column."""
    missing = [k for k in list(get_feature_names(features)) + list(extra) if k not in x.tensors]
    if missing:
        raise InputError(f"The validated Columns lack {missing}; build them with "
                         f"model.input_columns(x, extra={missing}) to carry those columns "
                         f"(e.g. the GAUC group), or pass x itself.")
    return x


def _row_count(features: Sequence[Feature], data: Mapping[str, Any],
               seqs: Sequence[VarLenSparseFeat], extra: Iterable[str]) -> int:
    """The rows of ``x``, once every needed column is there (or derivable) and all agree.

    Raises:
        InputError: a missing feature (with the fix: derivable length columns, close names),
            columns of different lengths, or no rows.
    """
    needed = get_feature_names(features)
    derivable = {f.length_name for f in seqs if f.length_name}
    derivable = {ln for ln in derivable if ln not in data and all(
        s.name in data and not _is_rectangular(data[s.name]) for s in seqs
        if s.length_name == ln)}
    missing = [k for k in needed if k not in data and k not in derivable]
    if missing:
        raise InputError(_missing_message(missing, needed, data, seqs))
    present = [k for k in needed if k in data]
    _check_row_counts(data, present + [k for k in extra if k in data])
    from .data.padding import Ragged
    first = data[present[0]]
    if isinstance(first, Ragged):
        n = len(first)
    else:
        first = first if isinstance(first, (list, tuple)) else _to_numpy(first, present[0])
        n = len(first) if np.ndim(first) else 0
    if n == 0:
        raise InputError(f"x has 0 rows (feature '{present[0]}' is empty); fit, evaluate, "
                         f"predict and explain need at least one row. Check the filter or "
                         f"split that produced x.")
    return n


def _missing_message(missing: List[str], needed: List[str], data: Mapping[str, Any],
                     seqs: Sequence[VarLenSparseFeat]) -> str:
    import difflib
    owners: Dict[str, List[str]] = {}
    for f in seqs:
        if f.length_name:
            owners.setdefault(f.length_name, []).append(f"'{f.name}'")
    why = "".join(f" '{k}' is the length column of {' and '.join(owners[k])}: pass it, or "
                  f"pass {' and '.join(owners[k])} as unpadded lists so that ctrkit derives "
                  f"it." for k in missing if k in owners)
    spare = [str(k) for k in data if k not in needed]
    close = {k: difflib.get_close_matches(k, spare, n=1, cutoff=0.6) for k in missing}
    why += "".join(f" Did you mean '{c[0]}' for '{k}'? Rename that column to '{k}'."
                   for k, c in close.items() if c)
    return (f"x is missing feature(s) {missing}. The model needs {needed}; "
            f"x has {sorted(map(str, data))}.{why}")


def convert_dense(f: DenseFeat, value: Any, n: int) -> np.ndarray:
    """One dense feature's column as float32 ``(n, dimension)`` (its ``transform_fn`` applied).

    Raises:
        InputError: wrong row count or width, non-numeric or non-finite values.
    """
    arr = _to_numpy(value, f.name)
    _rows(f.name, arr, n)
    arr = _dense_numbers(f.name, arr)
    if f.transform_fn is not None:
        arr = np.asarray(f.transform_fn(arr))
    arr = arr.astype(np.float32).reshape(n, -1)
    if arr.shape[1] != f.dimension:
        raise InputError(f"Dense feature '{f.name}' has {arr.shape[1]} values per row "
                         f"but is declared with dimension={f.dimension}.")
    _check_finite(f.name, arr, _DENSE_FIX.format(name=f.name))
    return arr


def convert_sparse(f: SparseFeat, value: Any, n: int, encode: "_Encoder") -> np.ndarray:
    """One categorical feature's column as checked int64 ids ``(n,)``.

    Raises:
        InputError: wrong shape or row count, ids out of range (with the fix).
    """
    arr = _to_numpy(value, f.name)
    _rows(f.name, arr, n)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"Sparse feature '{f.name}' has shape {arr.shape}; it takes "
                         f"one id per row, shape (rows,).")
    return encode(arr)


def convert_sequence(f: VarLenSparseFeat, value: Any, n: int, given: Optional[np.ndarray],
                     encode: "_Encoder") -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """One sequence feature's column as int64 ids ``(n, maxlen)``, and the lengths derived from
    unpadded lists (None for a padded block, whose lengths come from its length column).

    ``value`` is a padded block (with ``given``, its length column) or a ragged column of
    per-row lists (:func:`ctrkit.data.padding.to_ragged` reads every ragged form).

    Raises:
        InputError: a bad shape, ids out of range, padding inside lists, or a length column
            that disagrees with the lists.
    """
    if _is_rectangular(value):
        arr = _to_numpy(value, f.name)
        _rows(f.name, arr, n)
        if given is not None:
            _check_length_range(f, given)
        return _padded_sequence(f, arr, given, encode), None
    from .data.padding import to_ragged
    values, offsets = to_ragged(value, f.name)
    _rows(f.name, offsets[1:], n)
    full = np.diff(offsets)
    if given is not None and len(values) and bool((full == f.maxlen).all()):
        # equal-width lists with a length column: a padded block given as lists
        _check_length_range(f, given)
        return _padded_sequence(f, values.reshape(n, f.maxlen), given, encode), None
    ids, lengths = _ragged_sequence(f, values, offsets, encode)
    if given is not None:
        bad = (given != full) & (given != lengths)
        if bad.any():
            r = int(np.argmax(bad))
            raise InputError(
                f"Length feature '{f.length_name}' says {given[r]} at row {r}, but "
                f"the list of '{f.name}' there has {full[r]} entries. With unpadded "
                f"lists the length column is derived: drop it, or make it agree.")
    return ids, lengths


def share_length(derived: Dict[str, Tuple[str, np.ndarray]], f: VarLenSparseFeat,
                 lengths: np.ndarray) -> None:
    """Record the lengths ``f``'s lists derive for its length column; sequences that share the
    column must derive the same ones.

    Raises:
        InputError: two sequences of one length column disagree at a row (named).
    """
    if f.length_name in derived:
        other, prev = derived[f.length_name]
        if not np.array_equal(prev, lengths):
            r = int(np.argmax(prev != lengths))
            raise InputError(
                f"'{other}' and '{f.name}' share the length column '{f.length_name}' but their "
                f"lists at row {r} keep {prev[r]} and {lengths[r]} entries; aligned sequences "
                f"need lists of equal length per row.")
    else:
        derived[f.length_name] = (f.name, lengths)


def _extra_column(data: Mapping[str, Any], key: str, n: int) -> np.ndarray:
    """A carried column (e.g. the GAUC group) as int64 (strings become category codes)."""
    if key not in data:
        raise InputError(f"x has no column '{key}', which is needed here (e.g. as the GAUC "
                         f"group); x has {sorted(map(str, data))}.")
    arr = _to_numpy(data[key], key).reshape(-1)
    _rows(key, arr, n)
    if arr.dtype.kind not in "iu":
        arr = np.unique(arr.astype(str), return_inverse=True)[1]
    return arr.astype(np.int64)


def _check_length_range(f: VarLenSparseFeat, arr: np.ndarray) -> None:
    bad = (arr < 0) | (arr > f.maxlen)
    if bad.any():
        r = int(np.argmax(bad))
        raise InputError(f"Length feature '{f.length_name}' has value {arr[r]} at row {r}, but it "
                         f"must lie in 0..{f.maxlen} (the maxlen of '{f.name}').")


def prepare_target(y: Any, n: int, task: str, *, name: str = "y") -> torch.Tensor:
    """Labels as a float32 (n,) tensor; binary labels must be 0 or 1. For a multi-task
    model (``task`` a :class:`ctrkit.tasks.Tasks`): (n, T), see
    :func:`ctrkit.tasks.prepare_targets`."""
    if not isinstance(task, str):
        from .tasks import prepare_targets
        return prepare_targets(y, n, task, name=name)
    if y is None:
        raise InputError(f"{name} is None; pass one label per row.")
    arr = _to_numpy(y, name)
    if arr.dtype.kind not in "fiub":
        raise InputTypeError(_non_numeric_labels(arr, name))
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


def _non_numeric_labels(arr: np.ndarray, name: str) -> str:
    """The message for string/object labels: which values, where, and the explicit conversion."""
    flat = arr.ravel()
    kinds = np.array([isinstance(v, (str, bytes)) for v in flat]) if flat.dtype == object \
        else np.full(flat.shape, flat.dtype.kind in "USa")
    row = int(np.argmax(kinds)) if kinds.any() else 0
    seen = sorted({str(v) for v in flat[:10000]})
    lower = {v.strip().lower() for v in seen}
    if lower <= {"0", "1", "0.0", "1.0"}:
        fix = f"{name}.astype(int)"
    else:
        positive = next((v for v in seen if v.strip().lower() in
                         ("1", "yes", "true", "y", "t", "click", "clicked", "positive")), seen[-1])
        fix = f"({name} == {positive!r}).astype(int)"
    return (f"{name} must be numeric, got dtype {arr.dtype} with values such as "
            f"{seen[:5]} (row {row}: {flat[row]!r}). ctrkit does not guess which string means a "
            f"click; convert explicitly, e.g. {fix}.")


def prepare_weights(w: Any, n: int, *, name: str = "sample_weight") -> Optional[torch.Tensor]:
    if w is None:
        return None
    t = prepare_target(w, n, "regression", name=name)
    if (t < 0).any():
        raise InputError(f"{name} has a negative weight; weights must be >= 0.")
    return t


__all__ = ["Columns", "RawColumns", "prepare_inputs", "prepare_target", "prepare_weights",
           "hash_values"]
