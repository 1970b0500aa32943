"""Embedding regularizers by name.

A regularizer is prepared once per ``fit`` with the training columns (so it can count ids) and
asked for a penalty on every training step with that step's batch.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch

from .errors import ConfigError
from .features import DenseFeat, VarLenSparseFeat
from .layers.pooling import sequence_mask
from .registry import REGULARIZERS, register_regularizer


class Regularizer:
    """Base class: ``prepare`` once per fit, ``penalty`` every step (a scalar tensor).

    Args:
        strength: the penalty's factor (``l2_reg_embedding`` of the model).

    Example:
        >>> import ctrkit
        >>> from ctrkit import SparseFeat
        >>> class FirstRowL1(Regularizer):           # penalise row 1 of every table
        ...     def penalty(self, model, batch):
        ...         return self.strength * sum(t.weight[1].abs().sum()
        ...                                    for t in model.embeddings.tables.values())
        >>> model = ctrkit.build("base", [SparseFeat("user", 3, embedding_dim=2)],
        ...                      embedding_regularizer=FirstRowL1(1e-3))
        >>> type(model.regularizer).__name__
        'FirstRowL1'
    """

    #: how the penalty is had with sharded tables (``strategy='torchrec'``): ``'rows'`` when it
    #: is a function of the rows the batch looks up (read them with
    #: ``model.embeddings.backend.rows_of(table, ids)``); None when it reads whole tables,
    #: which TorchRec then refuses.
    sharded_form: Optional[str] = None

    def __init__(self, strength: float = 0.0) -> None:
        self.strength = float(strength)

    def prepare(self, model, columns) -> None:  # noqa: D401 - hook
        """Called once at the start of ``fit`` with the training :class:`Columns`."""

    def penalty(self, model, batch: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        raise NotImplementedError  # pragma: no cover - abstract


@REGULARIZERS.register("l2")
class WholeTableL2(Regularizer):
    """DeepCTR's embedding L2: ``strength * sum(W**2)`` over every table, every step.

    With ``strategy='torchrec'`` (sharded tables, updated only through their lookups) it is
    computed in its row-wise form, :class:`BatchL2`: ``strength * sum ||w_j||**2`` over the
    rows j the batch looks up (see docs/scaling.md for how the two differ, and
    ``TorchRec(whole_table_l2='refuse')`` to refuse instead).

    Example:
        >>> import torch, ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("base", [SparseFeat("user", 3, embedding_dim=2)])
        >>> with torch.no_grad():
        ...     _ = model.embeddings.tables["user"].weight.fill_(1.0)
        >>> WholeTableL2(0.5).penalty(model, batch={}).item()      # 0.5 * 6 weights of 1
        3.0
    """

    #: sharded tables: computed as :class:`BatchL2` (the strategy may refuse instead)
    sharded_form = "rows"

    def penalty(self, model, batch):
        if self.strength == 0.0:
            return None
        if model.embeddings.backend is not None:
            return self.strength * batch_rows_penalty(model, batch, _features_by_table(model))
        return self.strength * sum((t.weight ** 2).sum() for t in model.embeddings.tables.values())


def _features_by_table(model) -> Dict[str, List]:
    """Table name -> the id features (sparse and sequence) that look it up, in name order."""
    by_table: Dict[str, List] = {}
    for f in sorted(model.features, key=lambda f: f.name):
        if not isinstance(f, DenseFeat):
            by_table.setdefault(model.embeddings.table_of[f.name], []).append(f)
    return by_table


def _valid_ids(f, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """The ids at valid (non-padded) positions of feature ``f`` in ``batch``, flattened."""
    ids = batch[f.name]
    if isinstance(f, VarLenSparseFeat):
        return ids[sequence_mask(ids, batch[f.length_name] if f.length_name else None)]
    return ids.reshape(-1)


def _batch_rows(model, table: str, ids: torch.Tensor) -> torch.Tensor:
    """(len(ids), E) rows of ``table`` at the unique ``ids``: read from the local weight, or,
    with sharded tables, from the rows this training step's lookups returned (so their
    gradient flows back through the same sharded lookup and fused update)."""
    backend = model.embeddings.backend
    if backend is not None:
        return backend.rows_of(table, ids)
    return model.embeddings.tables[table].weight.index_select(0, ids)


def batch_rows_penalty(model, batch: Dict[str, torch.Tensor], feats_by_table: Dict[str, List],
                       inv_counts: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
    """``sum_t sum_{j in batch} ||w_tj||**2 * inv_counts[t][j]`` (1 without ``inv_counts``)
    over the unique ids j at valid positions of the features of each table t.

    Args:
        model: the model (its tables, or with sharded tables this step's looked-up rows).
        batch: the step's input columns; feats_by_table: table -> the id features using it;
        inv_counts: table -> (rows,) factor per row (MBA's 1/n_j), or None for 1.

    Returns:
        a scalar tensor (0 without tables).

    Example:
        >>> import torch, ctrkit
        >>> model = ctrkit.build("base", [ctrkit.SparseFeat("user", 3, embedding_dim=2)])
        >>> row = model.embeddings.tables["user"].weight[1]
        >>> p = batch_rows_penalty(model, {"user": torch.tensor([1, 1])},   # row 1, once
        ...                        {"user": model.features[:1]})
        >>> bool(torch.isclose(p, (row ** 2).sum()))
        True
    """
    total = None
    for table, feats in feats_by_table.items():
        ids = torch.cat([_valid_ids(f, batch) for f in feats]).unique()
        sq = (_batch_rows(model, table, ids) ** 2).sum(1)
        if inv_counts is not None:
            sq = sq * inv_counts[table].index_select(0, ids)
        term = sq.sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros((), device=model.device)


@REGULARIZERS.register("batch_l2")
class BatchL2(Regularizer):
    """Row-wise L2 on the mini-batch: ``strength * sum ||w_j||**2`` over the embedding rows j
    that occur in the batch (at valid positions), every step.

    MBA with every n_j = 1, and the form :class:`WholeTableL2` takes with sharded tables
    (``strategy='torchrec'``): choose it to train one process exactly as TorchRec does. Rows a
    batch does not look up are not shrunk (whole-table L2 shrinks every row every step).

    Example:
        >>> import torch, ctrkit
        >>> model = ctrkit.build("din", ctrkit.datasets.make_synthetic(n_rows=4)[2],
        ...                      embedding_regularizer="batch_l2", l2_reg_embedding=0.5)
        >>> only_user = {"user": torch.tensor([2, 2, 0])}            # rows 0 and 2, once each
        >>> p = BatchL2(0.5).penalty(ctrkit.build("base", model.features[:1]), only_user)
        >>> type(model.regularizer).__name__, p.item() > 0
        ('BatchL2', True)
    """

    sharded_form = "rows"

    def penalty(self, model, batch):
        if self.strength == 0.0:
            return None
        return self.strength * batch_rows_penalty(model, batch, _features_by_table(model))


@REGULARIZERS.register("mba")
class MBA(Regularizer):
    """Mini-batch aware regularization (DIN paper §5.1).

    Each step adds ``strength · Σ_j ||w_j||² / n_j`` over the embedding rows j that occur in
    the mini-batch (at valid positions of any feature using the table), where n_j is the number
    of training samples in which id j occurs (a sample counts once however many of its
    features/positions hold j). n_j is counted per table over the training data once per
    ``fit`` (:meth:`prepare`). Rows that never occur in training get no gradient from it, so an
    unseen id's embedding stays exactly as initialised; whole-table L2 (``'l2'``) shrinks
    every row on every step instead.

    The paper's "number of occurrence for feature id j in all samples" can also be read as
    counting every occurrence (an id twice in one history counts twice); ``count='occurrences'``
    does that.

    Args:
        strength: λ (``l2_reg_embedding`` when chosen with ``embedding_regularizer='mba'``).
        count: ``'samples'`` (default, DESIGN.md) or ``'occurrences'``, what n_j counts.

    Raises:
        ConfigError: unknown ``count``.

    Example:
        >>> model = ctrkit.build("din", features, embedding_regularizer="mba",
        ...                      l2_reg_embedding=1e-3)               # doctest: +SKIP
    """

    COUNTS = ("samples", "occurrences")
    sharded_form = "rows"  # a function of the looked-up rows: the same under TorchRec

    def __init__(self, strength: float = 0.0, count: str = "samples") -> None:
        super().__init__(strength)
        if count not in self.COUNTS:
            raise ConfigError(f"MBA: count must be one of {list(self.COUNTS)}, got {count!r}.")
        self.count = count
        self.inv_counts: Dict[str, torch.Tensor] = {}

    def prepare(self, model, columns) -> None:
        """Count n_j per table over the training ``columns`` (vectorised, once per fit)."""
        self.prepare_streaming(model, [columns])

    def prepare_streaming(self, model, chunks, reduce=None) -> None:
        """Count n_j over training data that arrives in chunks (``Columns`` or dicts of
        tensors), e.g. a Parquet pass; ``reduce`` sums the counts over processes (each
        counting its own share under DDP)."""
        self.inv_counts = {}
        self._feats = _features_by_table(model)
        if self.strength == 0.0:
            return
        totals = {table: torch.zeros(model.embeddings.specs[table][0], dtype=torch.float64)
                  for table in self._feats}
        for columns in chunks:
            for table, feats in self._feats.items():
                totals[table] += self._count(columns, feats, len(totals[table]))
        for table, counts in totals.items():
            if reduce is not None:
                counts = reduce(counts)
            # Unseen rows never appear in a training batch; 1 only guards the division.
            self.inv_counts[table] = (1.0 / counts.to(torch.float32).clamp_min(1.0)).to(
                model.device)

    def _count(self, columns, feats, vocab: int) -> torch.Tensor:
        n = len(columns[feats[0].name])
        # One (n, K) matrix of the sample's ids over all features of the table, -1 where
        # invalid; after a row-wise sort, an id counts where it differs from its left.
        parts = []
        for f in feats:
            ids = columns[f.name].reshape(n, -1)
            if isinstance(f, VarLenSparseFeat):
                mask = sequence_mask(ids, columns[f.length_name] if f.length_name else None)
                ids = ids.masked_fill(~mask, -1)
            parts.append(ids)
        mat = torch.cat(parts, dim=1)
        keep = mat >= 0
        if self.count == "samples":
            mat = mat.sort(dim=1).values
            keep = mat >= 0
            keep[:, 1:] &= mat[:, 1:] != mat[:, :-1]
        return torch.bincount(mat[keep], minlength=vocab).to(torch.float64)

    def penalty(self, model, batch):
        if self.strength == 0.0:
            return None
        if not self.inv_counts:
            raise ConfigError("MBA needs the id counts of the training data: call "
                              "prepare(model, columns) first (model.fit does it).")
        if not self._feats:
            return None
        return self.strength * batch_rows_penalty(model, batch, self._feats, self.inv_counts)


def create_regularizer(spec, strength: float) -> Regularizer:
    """A :class:`Regularizer` from a registered name (``'l2'``, ``'mba'``) or an instance.

    Raises:
        UnknownNameError: unknown name (lists the registered names).

    Example:
        >>> reg = create_regularizer("mba", 1e-3)
        >>> type(reg).__name__, reg.strength
        ('MBA', 0.001)
    """
    if isinstance(spec, Regularizer):
        return spec
    return REGULARIZERS.get(spec)(strength)

__all__ = ["Regularizer", "WholeTableL2", "BatchL2", "MBA", "batch_rows_penalty", "create_regularizer", "register_regularizer"]
