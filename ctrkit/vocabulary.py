"""Vocabularies belong to embedding tables, not to features.

A model's ``encoders`` dict maps a feature name *or* an embedding-table name to a fitted
encoder (anything with ``transform(values) -> int ids``, e.g.
:class:`ctrkit.data.CategoricalEncoder`). :func:`table_vocabularies` resolves it per table:
every feature that looks up a table (the candidate ``item`` and its ``hist_item`` sequence,
whether they share the table by ``embedding_name`` or by DIN's pairing) is encoded with that
table's one encoder. Attaching ``encoders={"item": enc}`` therefore also encodes ``hist_item``;
attaching two different encoders to features of one table is refused.

Raw values versus ids is explicit: ``fit``/``evaluate``/``predict``/``explain`` take
``encoded=None`` (the default: raw values when the model carries vocabularies, ids otherwise),
``encoded=True`` (the columns already hold ids; no encoder runs) or ``encoded=False`` (raw
values; refused when the model has no vocabulary). Features whose table has no encoder always
take ids.

Guessing wrong is caught where it can be: when more than ``max_oov_fraction`` (default 0.5) of
at least :data:`MIN_VALUES_FOR_OOV_CHECK` values of a feature were never seen by its encoder
(values rarer than a ``min_count`` and missing values map to the OOV id too, but the encoder
knows them, so they do not count as unseen), the
call raises an :class:`~ctrkit.errors.InputError` naming the feature and saying whether the
values look like already-encoded ids or like raw values the vocabulary has not seen. It cannot
catch encoded ids that happen to be valid raw values too (e.g. MovieLens item ids 1..1682,
encoded as 2..1683): the ``encoded`` switch is the contract, the check a safety net.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from .errors import ConfigError, InputError

#: Calls with fewer vocabulary-encoded values than this in a feature are not judged by their
#: out-of-vocabulary fraction (a single cold-start item must not be an error).
MIN_VALUES_FOR_OOV_CHECK = 20
#: Default largest fraction of a feature's values that may fall outside its vocabulary.
DEFAULT_MAX_OOV_FRACTION = 0.5


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return a.to_dict() == b.to_dict()
    except Exception:  # encoders without comparable plain data are different objects
        return False


@dataclass(frozen=True)
class Vocabulary:
    """One table's encoder and the features that share it.

    Attributes:
        table: the embedding table's name.
        encoder: the fitted encoder.
        features: every feature that looks up ``table``.
        max_oov_fraction: see the module docstring (1.0 disables the check).
    """

    table: str
    encoder: Any
    features: Tuple[str, ...]
    max_oov_fraction: float = DEFAULT_MAX_OOV_FRACTION

    def encode(self, feature: str, values: np.ndarray) -> np.ndarray:
        """Raw ``values`` (any shape) of ``feature`` -> int64 ids; refuses mostly-OOV input.

        Raises:
            InputError: more than ``max_oov_fraction`` of the values are out of vocabulary.
        """
        ids = np.asarray(self.encoder.transform(values))
        if ids.shape != np.shape(values):
            ids = ids.reshape(np.shape(values))
        self._check_oov(feature, np.asarray(values), ids)
        return ids

    def _check_oov(self, feature: str, values: np.ndarray, ids: np.ndarray) -> None:
        if getattr(self.encoder, "num_buckets", None) is not None or ids.size == 0:
            return  # hashing has no out-of-vocabulary values
        if ids.size < MIN_VALUES_FOR_OOV_CHECK or self.max_oov_fraction >= 1.0:
            return
        oov_id = getattr(self.encoder, "oov_id", 1)
        oov = ids == oov_id
        frac = float(oov.mean())
        if frac <= self.max_oov_fraction:
            return
        unseen = getattr(self.encoder, "unseen", None)
        if unseen is not None:  # rare-at-fit and missing values are expected OOV ids
            oov = np.asarray(unseen(values)).reshape(ids.shape)
            frac = float(oov.mean())
            if frac <= self.max_oov_fraction:
                return
        size = getattr(self.encoder, "vocabulary_size", None)
        flat = values.reshape(-1)
        sample = ", ".join(repr(v) for v in flat[oov.reshape(-1)][:3].tolist())
        looks_like_ids = False
        if flat.dtype.kind in "iu" or (flat.dtype.kind == "f" and np.isfinite(flat).all()
                                       and (flat == np.floor(flat)).all()):
            looks_like_ids = size is not None and flat.min() >= 0 and flat.max() < size
        head = (f"Feature '{feature}': {frac:.0%} of its {ids.size} values are not in the "
                f"vocabulary of embedding table '{self.table}' (they map to the "
                f"out-of-vocabulary id {oov_id}), e.g. {sample}. ")
        if looks_like_ids:
            raise InputError(
                head + f"They look like already-encoded ids (integers in 0..{size - 1}): pass "
                f"encoded=True to use the columns as ids, or pass the raw values.")
        fitted = getattr(self.encoder, "classes_", None)
        seen = ""
        if fitted is not None and len(fitted):
            examples = ", ".join(repr(v) for v in np.asarray(fitted[:3]).tolist())
            seen = f" The vocabulary was fitted on values such as {examples}."
        raise InputError(
            head + f"They look like raw values the vocabulary has not seen: check that the "
            f"column holds the same kind of values the encoder was fitted on (not another "
            f"column, not ids).{seen} If this is expected (many new values), raise "
            f"model.max_oov_fraction (1.0 turns the check off).")


def table_vocabularies(encoders: Optional[Mapping[str, Any]], table_of: Mapping[str, str],
                       table_sizes: Mapping[str, int],
                       max_oov_fraction: float = DEFAULT_MAX_OOV_FRACTION
                       ) -> Dict[str, Vocabulary]:
    """Resolve ``encoders`` (keyed by feature or table name) to one vocabulary per table.

    Args:
        encoders: feature name or table name -> fitted encoder.
        table_of: every sparse feature's table (``model.embeddings.table_of``).
        table_sizes: rows of each table.
        max_oov_fraction: stored on each :class:`Vocabulary`.

    Returns:
        feature name -> :class:`Vocabulary`, for every feature whose table has an encoder.

    Raises:
        ConfigError: a key that is neither a sparse feature nor a table; two different encoders
            for one table; an encoder with more ids than its table has rows.
    """
    if not encoders:
        return {}
    tables = set(table_of.values())
    by_table: Dict[str, Tuple[str, Any]] = {}
    for key, enc in encoders.items():
        if key in table_of:
            table = table_of[key]
        elif key in tables:
            table = key
        else:
            raise ConfigError(
                f"model.encoders has an encoder for '{key}', which is neither a sparse feature "
                f"nor an embedding table of this model (features: {sorted(table_of)}; tables: "
                f"{sorted(tables)}).")
        if table in by_table and not _same(by_table[table][1], enc):
            raise ConfigError(
                f"'{by_table[table][0]}' and '{key}' share embedding table '{table}' but carry "
                f"different encoders; a table has one vocabulary. Attach one encoder (e.g. "
                f"model.encoders['{by_table[table][0]}'] = encoder serves every feature of the "
                f"table).")
        by_table.setdefault(table, (key, enc))
        size = getattr(enc, "vocabulary_size", None)
        if isinstance(size, int) and size > table_sizes[table]:
            raise ConfigError(
                f"The encoder of '{key}' has vocabulary_size {size} but embedding table "
                f"'{table}' has {table_sizes[table]} rows; declare the features with "
                f"vocabulary_size={size} (the encoder's vocabulary_size).")
    out: Dict[str, Vocabulary] = {}
    for table, (_, enc) in by_table.items():
        feats = tuple(sorted(f for f, t in table_of.items() if t == table))
        vocab = Vocabulary(table, enc, feats, float(max_oov_fraction))
        for f in feats:
            out[f] = vocab
    return out


def check_encoded(encoded: Any, has_vocabularies: bool) -> bool:
    """Resolve the ``encoded`` switch: True when the inputs are ids.

    Raises:
        ConfigError: ``encoded`` is not None/True/False, or ``encoded=False`` (raw values) for a
            model that carries no vocabulary.
    """
    if encoded is None:
        return not has_vocabularies
    if not isinstance(encoded, (bool, np.bool_)):
        raise ConfigError(f"encoded must be None (raw values when the model carries "
                          f"vocabularies, else ids), True (ids) or False (raw values), got "
                          f"{encoded!r}.")
    if not encoded and not has_vocabularies:
        raise ConfigError("encoded=False (raw values) but this model carries no vocabulary "
                          "(model.encoders is empty): encode the values to ids yourself, or "
                          "attach the fitted encoders, e.g. model.encoders = encoders.")
    return bool(encoded)


__all__ = ["Vocabulary", "table_vocabularies", "check_encoded", "MIN_VALUES_FOR_OOV_CHECK",
           "DEFAULT_MAX_OOV_FRACTION"]
