"""Categorical encoders: raw values (ints or strings) -> int64 ids ready for a SparseFeat.

Layout of the ids an encoder produces:

- ``0`` is padding (never produced for a real value by a vocabulary encoder);
- ``1`` is the out-of-vocabulary id: every value unseen at ``fit`` time, seen fewer than
  ``min_count`` times, or **missing** (``None``/JSON ``null``, NaN, pandas ``NA``/``NaT``; see
  :func:`ctrkit.inputs.missing_mask`) maps to it, so ids new at predict time never crash a
  model and a missing value gets the same id at fit, predict, from Parquet and from JSON;
- ``2 .. vocabulary_size - 1`` are the known values, in sorted order of the raw values (so the
  ids keep the raw values' order).

With ``num_buckets=N`` the encoder hashes instead (no vocabulary; ``fit`` is not needed): values
go to ``[1, N)`` with the same stable hash a ``SparseFeat(use_hash=True)`` applies
(:func:`ctrkit.inputs.hash_values`), so hashing in the encoder or in the feature gives the same
ids; hashing maps a missing value to 0, as it maps ``""`` and ``0``.

An encoder is plain data: :meth:`CategoricalEncoder.to_dict` holds only lists, ints and strings,
and :meth:`CategoricalEncoder.from_dict` rebuilds it (a saved model can carry its encoders).

    >>> enc = CategoricalEncoder("city").fit(["paris", "rome", "paris"])
    >>> enc.transform(["rome", "paris", "oslo"]).tolist()
    [3, 2, 1]
    >>> enc.vocabulary_size
    4
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from .. import errors
from ..errors import ConfigError, InputError, InputTypeError
from ..inputs import _numbers, _to_numpy, hash_values, missing_mask
from ..registry import ENCODERS

PAD_ID = 0
OOV_ID = 1
_FIRST_ID = 2
_KINDS = ("int", "float", "str")


def _kind_of(arr: np.ndarray) -> str:
    if arr.dtype.kind in "iub":
        return "int"
    if arr.dtype.kind == "f":
        return "float"
    return "str"


@ENCODERS.register("categorical")
class CategoricalEncoder:
    """Maps raw categorical values to int64 ids (0 padding, 1 out-of-vocabulary).

    Args:
        name: what the encoder encodes (used in error messages), e.g. the column name.
        min_count: values seen fewer times than this at ``fit`` map to the OOV id. The encoder
            remembers them (``rare_``) so that the model's out-of-vocabulary check
            (:mod:`ctrkit.vocabulary`) does not take them for unseen values.
        num_buckets: hash into this many buckets instead of learning a vocabulary
            (``vocabulary_size == num_buckets``; ids in ``[1, num_buckets)``, 0 padding).

    Raises:
        ConfigError: ``min_count < 1`` or ``num_buckets < 2``.

    Example:
        >>> CategoricalEncoder("tag", num_buckets=100).transform(["a", "b"]).shape
        (2,)
    """

    def __init__(self, name: str = "value", min_count: int = 1,
                 num_buckets: Optional[int] = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"CategoricalEncoder name must be a non-empty string, got {name!r}.")
        if isinstance(min_count, bool) or not hasattr(min_count, "__index__") or min_count < 1:
            raise ConfigError(f"CategoricalEncoder '{name}': min_count must be an integer >= 1, "
                              f"got {min_count!r}.")
        if num_buckets is not None and (isinstance(num_buckets, bool) or not hasattr(
                num_buckets, "__index__") or num_buckets < 2):
            raise ConfigError(f"CategoricalEncoder '{name}': num_buckets must be an integer >= 2 "
                              f"(0 is padding), got {num_buckets!r}.")
        self.name = name
        self.min_count = int(min_count)
        self.num_buckets = None if num_buckets is None else int(num_buckets)
        self.kind: Optional[str] = None
        self.classes_: Optional[np.ndarray] = None
        self.rare_: Optional[np.ndarray] = None

    # ---------------------------------------------------------------- state
    @property
    def fitted(self) -> bool:
        """True once :meth:`fit` ran (hashing encoders need no fit and are always fitted)."""
        return self.num_buckets is not None or self.classes_ is not None

    @property
    def vocabulary_size(self) -> int:
        """Rows the embedding table needs: ``len(classes_) + 2`` (or ``num_buckets``).

        Raises:
            NotFittedError: a vocabulary encoder before :meth:`fit`.
        """
        if self.num_buckets is not None:
            return self.num_buckets
        self._check_fitted("vocabulary_size")
        return len(self.classes_) + _FIRST_ID

    def _check_fitted(self, what: str) -> None:
        if not self.fitted:
            raise errors.NotFittedError(f"CategoricalEncoder '{self.name}' is not fitted yet; call "
                                 f".fit(train_values) before {what}.")

    def _values(self, values: Any) -> np.ndarray:
        arr = _to_numpy(values, self.name)
        if arr.ndim == 0:
            raise InputError(f"CategoricalEncoder '{self.name}' got a scalar {arr!r}; pass an "
                             f"array of values.")
        return arr

    # ---------------------------------------------------------------- API
    def fit(self, values: Any) -> "CategoricalEncoder":
        """Learn the vocabulary from training values (any shape; flattened).

        Returns:
            self.

        Raises:
            InputError: no values, or only missing ones.
        """
        if self.num_buckets is not None:
            return self
        arr = self._values(values).reshape(-1)
        arr = _numbers(arr[~missing_mask(arr)])  # missing values are not classes: they map to OOV
        if arr.size == 0:
            raise InputError(f"CategoricalEncoder '{self.name}' cannot be fitted on 0 values "
                             f"(missing values do not count).")
        kind = _kind_of(arr)
        arr = self._cast(arr, kind)
        uniq, counts = np.unique(arr, return_counts=True)
        self.kind = kind
        self.classes_ = uniq[counts >= self.min_count]
        self.rare_ = uniq[counts < self.min_count]
        return self

    def _cast(self, arr: np.ndarray, kind: str) -> np.ndarray:
        if arr.size == 0:
            return np.asarray([], dtype={"int": np.int64, "float": np.float64, "str": str}[kind])
        if arr.dtype == object and kind != "str" and arr.size:
            # numbers held as Python objects (a pandas object column, inverse_transform output)
            inferred = np.asarray(arr.tolist())
            if inferred.dtype.kind in "iufb":
                arr = inferred
        if kind == "str":
            return arr.astype(str)
        if kind == "float":
            if arr.dtype.kind not in "fiub":
                raise InputTypeError(
                    f"CategoricalEncoder '{self.name}' was fitted on numbers but got values of "
                    f"dtype {arr.dtype}; pass the same kind of values as at fit.")
            return arr.astype(np.float64)
        if arr.dtype.kind not in "iub":
            if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                return arr.astype(np.int64)
            raise InputTypeError(
                f"CategoricalEncoder '{self.name}' was fitted on integers but got values of dtype "
                f"{arr.dtype}; pass integers as at fit (or refit on strings).")
        return arr.astype(np.int64)

    def transform(self, values: Any) -> np.ndarray:
        """Encode values (any shape) to int64 ids of the same shape; unseen, rare and missing
        values -> 1 (the OOV id) with a vocabulary, missing -> 0 when hashing.

        Raises:
            NotFittedError: a vocabulary encoder before :meth:`fit`.
            InputTypeError: values of another kind than at fit (e.g. strings for integers).
        """
        self._check_fitted("transform")
        arr = self._values(values)
        if self.num_buckets is not None:
            return hash_values(arr, self.num_buckets).astype(np.int64)
        flat = arr.reshape(-1)
        present = ~missing_mask(flat)
        ids = np.full(flat.shape, OOV_ID, dtype=np.int64)
        found, pos = self._lookup(self.classes_, self._cast(_numbers(flat[present]), self.kind))
        ids[present] = np.where(found, pos + _FIRST_ID, OOV_ID)
        return ids.reshape(arr.shape)

    @staticmethod
    def _lookup(table: np.ndarray, flat: np.ndarray):
        """(found, position) of each value in the sorted ``table``."""
        if len(table) == 0:
            return np.zeros(flat.shape, dtype=bool), np.zeros(flat.shape, dtype=np.int64)
        pos = np.minimum(np.searchsorted(table, flat), len(table) - 1)
        return table[pos] == flat, pos

    def unseen(self, values: Any) -> np.ndarray:
        """Where ``values`` were never seen at ``fit``: not missing, not a class, not rare.

        The model's out-of-vocabulary check counts these (a rare value mapped to OOV by
        ``min_count`` and a missing value are expected OOV ids, not signs of wrong input).

        Returns:
            A bool array of the values' shape (all False for a hashing encoder).

        Raises:
            NotFittedError: a vocabulary encoder before :meth:`fit`.

        Example:
            >>> enc = CategoricalEncoder("c", min_count=2).fit(["a", "a", "b"])
            >>> enc.transform(["a", "b", "z", None]).tolist()
            [2, 1, 1, 1]
            >>> enc.unseen(["a", "b", "z", None]).tolist()
            [False, False, True, False]
        """
        self._check_fitted("unseen")
        arr = self._values(values)
        flat = arr.reshape(-1)
        out = np.zeros(flat.shape, dtype=bool)
        if self.num_buckets is None:
            present = ~missing_mask(flat)
            vals = self._cast(_numbers(flat[present]), self.kind)
            known = self._lookup(self.classes_, vals)[0]
            if self.rare_ is not None:
                known |= self._lookup(self.rare_, vals)[0]
            out[present] = ~known
        return out.reshape(arr.shape)

    def fit_transform(self, values: Any) -> np.ndarray:
        """``fit(values)`` then ``transform(values)``."""
        return self.fit(values).transform(values)

    def inverse_transform(self, ids: Any) -> np.ndarray:
        """Raw values of known ids; padding and OOV ids give ``None`` (object array).

        Raises:
            NotFittedError: before :meth:`fit`; InputError for a hashing encoder or a bad id.
        """
        self._check_fitted("inverse_transform")
        if self.num_buckets is not None:
            raise InputError(f"CategoricalEncoder '{self.name}' hashes values; hashing cannot be "
                             f"inverted.")
        ids = np.asarray(ids, dtype=np.int64)
        if ((ids < 0) | (ids >= self.vocabulary_size)).any():
            raise InputError(f"CategoricalEncoder '{self.name}': ids must lie in "
                             f"0..{self.vocabulary_size - 1}.")
        table = np.empty(self.vocabulary_size, dtype=object)
        table[_FIRST_ID:] = self.classes_.tolist()
        return table[ids]

    # ---------------------------------------------------------------- plain data
    def to_dict(self) -> Dict[str, Any]:
        """Plain data (lists, ints, strings, None) that :meth:`from_dict` turns back into it."""
        return {"type": "CategoricalEncoder", "name": self.name, "min_count": self.min_count,
                "num_buckets": self.num_buckets, "kind": self.kind,
                "classes": None if self.classes_ is None else self.classes_.tolist(),
                "rare": None if self.rare_ is None else self.rare_.tolist()}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "CategoricalEncoder":
        """Rebuild an encoder from :meth:`to_dict` output.

        Raises:
            ConfigError: not a CategoricalEncoder dict, or an unknown value kind.
        """
        if not isinstance(d, dict) or d.get("type") != "CategoricalEncoder":
            raise ConfigError(f"Not a saved CategoricalEncoder: {d!r:.200}")
        enc = cls(d["name"], d.get("min_count", 1), d.get("num_buckets"))
        classes: Optional[List[Any]] = d.get("classes")
        if classes is not None:
            kind = d.get("kind")
            if kind not in _KINDS:
                raise ConfigError(f"Saved CategoricalEncoder '{enc.name}' has unknown kind "
                                  f"{kind!r}; expected one of {list(_KINDS)}.")
            dtype = {"int": np.int64, "float": np.float64, "str": str}[kind]
            enc.kind = kind
            enc.classes_ = np.asarray(classes, dtype=dtype).reshape(-1)
            rare = d.get("rare")  # absent in files saved before rare values were kept
            enc.rare_ = None if rare is None else np.asarray(rare, dtype=dtype).reshape(-1)
        return enc

    def __repr__(self) -> str:
        if self.num_buckets is not None:
            return f"CategoricalEncoder({self.name!r}, num_buckets={self.num_buckets})"
        size = "unfitted" if self.classes_ is None else f"vocabulary_size={self.vocabulary_size}"
        return f"CategoricalEncoder({self.name!r}, min_count={self.min_count}, {size})"


__all__ = ["CategoricalEncoder", "PAD_ID", "OOV_ID"]
