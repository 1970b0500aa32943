"""The strategy interface, and the one-process strategy every other one extends.

The trainer asks :func:`ctrkit.strategies.plan` for a plan and calls the same few methods on it
whatever the strategy (see :mod:`ctrkit.strategies`). :class:`LocalPlan` is the plain loop of
one process and the base class of :class:`~ctrkit.strategies.ddp.DDPPlan` and
:class:`~ctrkit.strategies.torchrec.TorchRecPlan`. This module never imports a concrete
strategy.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import torch

from .comm import is_local_only, launched_with_torchrun, world


def is_sharded(model) -> bool:
    """True when ``model``'s embedding tables live elsewhere (sharded by strategy='torchrec')."""
    return getattr(getattr(model, "embeddings", None), "backend", None) is not None


def uses_ddp(model) -> bool:
    """True when ``predict``/``evaluate`` of ``model`` should shard across the process group."""
    trainer = getattr(model, "trainer", None)
    if is_local_only() or trainer is None or world()[1] == 1:
        return False
    return getattr(trainer, "strategy", None) is not None or launched_with_torchrun()


class LocalPlan:
    """One process: the rows, losses and logits of the plain loop, unchanged.

    Args:
        trainer: the Trainer; source: the training :class:`DataAdapter` (or its row count);
        batch_size: rows per step.
    """

    rank, world_size = 0, 1

    def __init__(self, trainer, source, batch_size: int) -> None:
        self.trainer, self.batch_size = trainer, batch_size
        self.source = source
        self.n = source.num_rows
        #: steps per epoch on this process (None: until the source runs out)
        self.steps = source.steps(batch_size)
        #: rows this process trains on per epoch, when known (sizes the prediction store)
        self.local_rows = self.n

    def callbacks(self, callbacks: List[Any], verbose: int) -> Tuple[List[Any], int]:
        return callbacks, verbose

    def batches(self, source, shuffle: bool, generator: torch.Generator):
        """This process's batches of one epoch (the source decides which rows, in what order)."""
        return source.train_batches(self, shuffle, generator)

    def rows(self, order: torch.Tensor, step: int) -> torch.Tensor:
        return order[slice(*self.local_bounds(step))]

    def local_bounds(self, step: int) -> Tuple[int, int]:
        """Positions ``[lo, hi)`` of this process's rows of ``step`` in the epoch's order
        (called once per step, in the training thread, before its loss)."""
        return step * self.batch_size, min((step + 1) * self.batch_size, self.n)

    def share(self) -> Tuple[int, List[int]]:
        """``(start, sizes)``: this process reads the epoch's rows ``start:start+sum(sizes)``
        (a contiguous part of the sequence every process agrees on) in batches of ``sizes``,
        one per step. For sources that split themselves (Parquet)."""
        n, b = self.n, self.batch_size
        return 0, [b] * (n // b) + ([n % b] if n % b else [])

    def train_loss(self, batch, y, w):
        return self.trainer.train_loss(batch, y, w)

    def batch_loss(self, loss: float, rows: int, aux: Optional[float] = None
                   ) -> Tuple[float, int, Optional[float], int]:
        """``(loss, rows, auxiliary loss or None, rows that had one)`` of the step."""
        return loss, rows, aux, (rows if aux is not None else 0)

    def stop(self, flag: bool) -> bool:
        return flag

    def end_epoch(self, store):
        """The epoch's stored columns (logits, labels, ...) of every process (or its
        bounded-memory :class:`StreamingMetrics`)."""
        return store.result()

    def close(self) -> None:
        """Release what the plan holds (nothing here)."""
