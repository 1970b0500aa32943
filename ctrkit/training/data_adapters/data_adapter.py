"""The one small contract the Trainer reads its rows through: a source of validated batches.

The Trainer, the distributed plans and the callbacks never ask what the input was (a dict of
arrays, a batch iterable, Parquet files); they call these few methods. One adapter per kind of
input implements them (STYLE.md 13; Keras 3 ``trainers/data_adapters``):

- :class:`~.array_data_adapter.ArrayDataAdapter`: validated in-memory columns (the fast path).
- :class:`~.iterable_data_adapter.IterableDataAdapter`: generators, ``torch.utils.data``
  DataLoaders, any iterable of ``(x_batch, y_batch[, w_batch])``.
- :class:`~.parquet_data_adapter.ParquetDataAdapter`: :class:`ctrkit.data.ParquetDataset`.

:func:`~ctrkit.training.data_adapters.get_data_adapter` picks one, once per call.
"""
from __future__ import annotations

from typing import Dict, Iterator, NamedTuple, Optional

import torch


class Batch(NamedTuple):
    """One validated batch on the CPU: ``x`` maps feature names (and group columns) to
    tensors (ids/lengths int64 (B,) or (B, T), dense float32 (B, D)); ``y``/``w`` are float32
    (B,) or None."""

    x: Dict[str, torch.Tensor]
    y: Optional[torch.Tensor]
    w: Optional[torch.Tensor]

    @property
    def size(self) -> int:
        return len(next(iter(self.x.values())))


class DataAdapter:
    """A source of validated batches (what the Trainer consumes).

    Attributes:
        num_rows: rows per pass when known before reading (None: unknown, e.g. a generator).
        has_targets: batches carry labels.
        has_weights: batches carry sample weights.
        in_memory: every row is already held in memory (the exact per-row metric store then
            costs nothing extra, and DDP ranks split rows by index).
        uses_batch_size: ``batch_size`` sizes the batches (False: the input makes its own).
    """

    num_rows: Optional[int] = None
    has_targets: bool = False
    has_weights: bool = False
    in_memory: bool = False
    #: the Trainer's ``batch_size`` sizes the batches (False: the input makes its own)
    uses_batch_size: bool = True

    def train_batches(self, plan, shuffle: bool, generator: torch.Generator) -> Iterator[Batch]:
        """The batches of one training epoch on this process, ``plan.steps`` of them when that
        is known, in an order the source controls (``shuffle`` draws from ``generator``)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def batches(self, batch_size: int) -> Iterator[Batch]:
        """Every row once, in order (predict/evaluate/validation)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def steps(self, batch_size: int) -> Optional[int]:
        """Batches in one training epoch of one process (None: unknown until read)."""
        if self.num_rows is None:
            return None
        return -(-self.num_rows // batch_size)

    def shard(self, rank: int, world_size: int) -> "DataAdapter":
        """The contiguous ``rank``-th of ``world_size`` parts, for collective predict/evaluate
        (concatenated in rank order, the parts are the rows in their original order)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def fingerprint(self) -> float:
        """A number every rank computes alike from the same data (DDP checks it)."""
        return 0.0

    def prepare_regularizer(self, regularizer, model) -> None:
        """Let the embedding regularizer count ids over the training data (once per fit)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def close(self) -> None:
        """Release readers and threads (called in a ``finally`` by the Trainer)."""
