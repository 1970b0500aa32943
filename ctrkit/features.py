"""Feature declarations, field-for-field compatible with DeepCTR-Torch's feature columns.

Declarations are small frozen value objects validated on construction::

    >>> SparseFeat('user', 3, embedding_dim=8)
    SparseFeat(name='user', vocabulary_size=3, embedding_dim=8, use_hash=False, dtype='int32', embedding_name='user', group_name='default_group')
    >>> get_feature_names([SparseFeat('item', 4), VarLenSparseFeat(SparseFeat('hist_item', 4), 5, length_name='len')])
    ['item', 'hist_item', 'len']
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from .errors import ConfigError

DEFAULT_GROUP_NAME = "default_group"
COMBINERS = ("mean", "sum", "max")
#: the fitted transforms a DenseFeat may declare (see ctrkit.layers.dense_transform)
DENSE_TRANSFORMS = ("log1p", "normalize", "log1p+normalize", "quantile")


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{kind} name must be a non-empty string, got {name!r}.")


def _check_int(feature: str, arg: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ConfigError(f"Feature '{feature}': {arg} must be an integer >= {minimum}, "
                          f"got {value!r}.")
    value = int(value)
    if value < minimum:
        raise ConfigError(f"Feature '{feature}': {arg} must be >= {minimum}, got {value}. "
                          f"Fix the declaration of '{feature}'.")
    return value


def _dtype_name(feature: str, dtype: Any) -> str:
    """A declared dtype as its name: ``torch.int32``, ``np.int32``, ``np.dtype('int32')`` and
    ``'int32'`` all give ``'int32'`` (DeepCTR-Torch's examples pass torch dtypes; a name saves
    as plain data). Strings are kept as given (``'string'`` for hashed raw values)."""
    import numpy as np
    import torch
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, torch.dtype):
        return str(dtype)[len("torch."):]
    try:
        if dtype is None:
            raise TypeError
        return np.dtype(dtype).name
    except TypeError:
        raise ConfigError(f"Feature '{feature}': dtype must be a dtype name such as 'int32', a "
                          f"torch dtype or a numpy dtype, got {dtype!r}.") from None


class _DefaultTableName(str):
    """A ``SparseFeat.embedding_name`` the user did not give (it equals the feature's name).

    A plain ``str`` in every use; its type records "not given", so a copy made with
    ``dataclasses.replace(f, name=...)`` (which passes every field back to the constructor)
    takes its new name's table instead of silently keeping the old name as an explicit one.
    """

    __slots__ = ()


@dataclass(frozen=True)
class SparseFeat:
    """A categorical feature: one id in ``[0, vocabulary_size)`` per row.

    Args:
        name: the key of the feature in ``x``.
        vocabulary_size: number of ids (table rows); ids must lie in ``[0, vocabulary_size)``.
        embedding_dim: embedding width, or ``"auto"`` for ``6 * int(vocabulary_size ** 0.25)``.
        use_hash: hash raw values (ints or strings) into ``vocabulary_size`` buckets.
        dtype: declared id dtype (kept for DeepCTR compatibility; ids are int64 internally).
        embedding_name: the embedding table; features naming the same table share it. Left out,
            it is the feature's name, as a ``str`` subclass that marks it as not given (so a
            copy made with ``dataclasses.replace(f, name=...)`` follows the new name); use
            ``str(f.embedding_name)`` where an exact ``str`` is needed (e.g. data for
            ``torch.load(weights_only=True)``).
        group_name: feature group (used by models that interact groups).

    Example:
        >>> f = SparseFeat("city", vocabulary_size=1000, embedding_dim="auto")
        >>> f.embedding_dim, f.embedding_name
        (30, 'city')
    """

    name: str
    vocabulary_size: int
    embedding_dim: Union[int, str] = 4
    use_hash: bool = False
    dtype: str = "int32"
    embedding_name: Optional[str] = None
    group_name: str = DEFAULT_GROUP_NAME
    # True when the user named the table explicitly (models must then not re-share it).
    embedding_name_given: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name("SparseFeat", self.name)
        object.__setattr__(self, "dtype", _dtype_name(self.name, self.dtype))
        vocab = _check_int(self.name, "vocabulary_size", self.vocabulary_size, 1)
        object.__setattr__(self, "vocabulary_size", vocab)
        dim = self.embedding_dim
        if dim == "auto":
            dim = 6 * int(pow(vocab, 0.25))
        object.__setattr__(self, "embedding_dim", _check_int(self.name, "embedding_dim", dim, 1))
        given = not (self.embedding_name is None or isinstance(self.embedding_name, _DefaultTableName))
        object.__setattr__(self, "embedding_name_given", given)
        if not given:
            object.__setattr__(self, "embedding_name", _DefaultTableName(self.name))
        _check_name(f"Feature '{self.name}': embedding_name", self.embedding_name)
        if not isinstance(self.use_hash, bool):
            raise ConfigError(f"Feature '{self.name}': use_hash must be True or False, "
                              f"got {self.use_hash!r}.")


@dataclass(frozen=True)
class DenseFeat:
    """A numeric feature of ``dimension`` float values per row.

    Args:
        name: the key of the feature in ``x``.
        dimension: values per row (a column of shape (N,) or (N, dimension)).
        dtype: declared dtype (kept for DeepCTR compatibility; values become float32).
        transform_fn: applied to the column before validation (not saved with a model).
        transform: a fitted transform inside the model, saved with it and exported with it:
            ``"log1p"``, ``"normalize"`` (training mean/std), ``"log1p+normalize"`` or
            ``"quantile"`` (the training deciles: Keras's ``Discretization``); adapted
            on the training data at the first ``fit`` (see
            :mod:`ctrkit.layers.dense_transform`). None: the values are used as given.

    Example:
        >>> DenseFeat("price", 1)
        DenseFeat(name='price', dimension=1, dtype='float32', transform_fn=None)
        >>> DenseFeat("clicks", transform="log1p+normalize").transform
        'log1p+normalize'
    """

    name: str
    dimension: int = 1
    dtype: str = "float32"
    transform_fn: Optional[Callable[[Any], Any]] = None
    transform: Optional[str] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_name("DenseFeat", self.name)
        if self.transform is not None and self.transform not in DENSE_TRANSFORMS:
            raise ConfigError(f"Feature '{self.name}': unknown transform {self.transform!r}; use "
                              f"one of {list(DENSE_TRANSFORMS)} (or None).")
        object.__setattr__(self, "dtype", _dtype_name(self.name, self.dtype))
        object.__setattr__(self, "dimension",
                           _check_int(self.name, "dimension", self.dimension, 1))


@dataclass(frozen=True)
class VarLenSparseFeat:
    """A padded sequence of ids (e.g. a behaviour history) of width ``maxlen``.

    Positions at or beyond the row's length (from the ``length_name`` column, or, without one,
    positions holding id 0) are padding and never influence a model's output.

    Args:
        sparsefeat: the :class:`SparseFeat` describing one element.
        maxlen: the sequence width T.
        combiner: pooling when the model pools the sequence: ``mean``, ``sum`` or ``max``.
        length_name: the feature holding each row's valid length.

    Example:
        >>> hist = VarLenSparseFeat(SparseFeat("hist_item", 100, embedding_dim=8), maxlen=20,
        ...                         length_name="seq_length")
        >>> hist.name, hist.maxlen, hist.embedding_dim, hist.combiner
        ('hist_item', 20, 8, 'mean')
    """

    sparsefeat: SparseFeat
    maxlen: int
    combiner: str = "mean"
    length_name: Optional[str] = None

    def __post_init__(self) -> None:
        if not isinstance(self.sparsefeat, SparseFeat):
            raise ConfigError(f"VarLenSparseFeat needs a SparseFeat, got {self.sparsefeat!r}.")
        object.__setattr__(self, "maxlen", _check_int(self.name, "maxlen", self.maxlen, 1))
        if self.combiner not in COMBINERS:
            raise ConfigError(f"Feature '{self.name}': unknown combiner {self.combiner!r}; "
                              f"use one of {list(COMBINERS)}.")
        if self.length_name is not None:
            _check_name(f"Feature '{self.name}': length_name", self.length_name)

    name = property(lambda self: self.sparsefeat.name)
    vocabulary_size = property(lambda self: self.sparsefeat.vocabulary_size)
    embedding_dim = property(lambda self: self.sparsefeat.embedding_dim)
    use_hash = property(lambda self: self.sparsefeat.use_hash)
    dtype = property(lambda self: self.sparsefeat.dtype)
    embedding_name = property(lambda self: self.sparsefeat.embedding_name)
    group_name = property(lambda self: self.sparsefeat.group_name)
    embedding_name_given = property(lambda self: self.sparsefeat.embedding_name_given)


Feature = Union[SparseFeat, DenseFeat, VarLenSparseFeat]


def get_feature_names(feature_columns: Iterable[Feature]) -> List[str]:
    """Input names in DeepCTR order: each feature, and a ``length_name`` right after the first
    sequence that names it.

    Example:
        >>> get_feature_names([SparseFeat("item", 4), DenseFeat("price"),
        ...                    VarLenSparseFeat(SparseFeat("hist_item", 4), 5, length_name="n")])
        ['item', 'price', 'hist_item', 'n']
    """
    names: List[str] = []
    for f in feature_columns:
        if f.name not in names:
            names.append(f.name)
        if isinstance(f, VarLenSparseFeat) and f.length_name and f.length_name not in names:
            names.append(f.length_name)
    return names


def validate_features(features: Sequence[Feature]) -> List[Feature]:
    """Check a feature list as a whole; return it as a list.

    Raises:
        ConfigError: not a list of declarations, a duplicate name, a ``length_name`` that
            collides with a feature, or one table declared with two vocabularies or widths.
    """
    if isinstance(features, (SparseFeat, DenseFeat, VarLenSparseFeat)) or features is None:
        raise ConfigError("features must be a list of SparseFeat/DenseFeat/VarLenSparseFeat.")
    features = list(features)
    if not features:
        raise ConfigError("features is empty: declare at least one feature.")
    seen: Dict[str, Feature] = {}
    for f in features:
        if not isinstance(f, (SparseFeat, DenseFeat, VarLenSparseFeat)):
            raise ConfigError(f"features must hold SparseFeat/DenseFeat/VarLenSparseFeat, "
                              f"got {f!r}.")
        if f.name in seen:
            raise ConfigError(f"Feature name '{f.name}' is declared twice; feature names must "
                              f"be unique within one feature list.")
        seen[f.name] = f
    for f in features:
        if isinstance(f, VarLenSparseFeat) and f.length_name in seen:
            raise ConfigError(f"Feature '{f.name}': length_name '{f.length_name}' is also the "
                              f"name of a feature; give the length column its own name.")
    tables: Dict[str, Feature] = {}
    for f in features:
        if isinstance(f, DenseFeat):
            continue
        other = tables.setdefault(f.embedding_name, f)
        if (other.vocabulary_size, other.embedding_dim) != (f.vocabulary_size, f.embedding_dim):
            raise ConfigError(
                f"Features '{other.name}' and '{f.name}' share embedding_name "
                f"'{f.embedding_name}' but declare vocabulary_size/embedding_dim "
                f"{other.vocabulary_size}/{other.embedding_dim} vs "
                f"{f.vocabulary_size}/{f.embedding_dim}; a shared table needs one shape.")
    return features


def feature_to_dict(f: Feature) -> Dict[str, Any]:
    """Plain-data form of a declaration (for saving). ``transform_fn`` cannot be saved."""
    if isinstance(f, VarLenSparseFeat):
        return {"type": "VarLenSparseFeat", "sparsefeat": feature_to_dict(f.sparsefeat),
                "maxlen": f.maxlen, "combiner": f.combiner, "length_name": f.length_name}
    d = {k.name: getattr(f, k.name) for k in dataclasses.fields(f) if k.init}
    if isinstance(f, SparseFeat) and not f.embedding_name_given:
        d["embedding_name"] = None
    if isinstance(f, DenseFeat):
        if f.transform_fn is not None:
            raise ConfigError(f"Feature '{f.name}' has a transform_fn, which cannot be saved as "
                              f"plain data; apply it to the data before fit instead.")
        d.pop("transform_fn")
    d["type"] = type(f).__name__
    return d


def feature_from_dict(d: Dict[str, Any]) -> Feature:
    """Inverse of :func:`feature_to_dict`."""
    d = dict(d)
    kind = d.pop("type", None)
    if kind == "VarLenSparseFeat":
        d["sparsefeat"] = feature_from_dict(d["sparsefeat"])
        return VarLenSparseFeat(**d)
    if kind == "SparseFeat":
        return SparseFeat(**d)
    if kind == "DenseFeat":
        return DenseFeat(**d)
    raise ConfigError(f"Unknown feature type {kind!r} in saved declaration {d!r}.")


__all__ = ["SparseFeat", "DenseFeat", "VarLenSparseFeat", "get_feature_names",
           "validate_features", "feature_to_dict", "feature_from_dict", "DEFAULT_GROUP_NAME"]
