"""In-memory columns: the fast path (rows taken by index; no per-sample collation)."""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import torch

from ...errors import InputError
from ...inputs import Columns, prepare_inputs, prepare_target, prepare_weights
from .data_adapter import Batch, DataAdapter


class ArrayDataAdapter(DataAdapter):
    """Validated inputs, targets, optional weights (and group columns) held in memory.

    Training batches are ``plan.rows(order, step)`` of a per-epoch permutation ``order``
    drawn from the model's generator (``arange`` without shuffling); the DDP plan splits each
    global step between ranks by position (see :mod:`ctrkit.strategies`).

    Args:
        x: the validated :class:`~ctrkit.inputs.Columns`.
        y: float32 (n,) labels or None.
        w: float32 (n,) sample weights or None.
    """

    in_memory = True

    def __init__(self, x: Columns, y: Optional[torch.Tensor], w: Optional[torch.Tensor]) -> None:
        self.x, self.y, self.w = x, y, w
        self.num_rows = len(x)
        self.has_targets = y is not None
        self.has_weights = w is not None

    @classmethod
    def from_arrays(cls, features, task: str, x: Any, y: Any = None, sample_weight: Any = None,
                    *, groups: Sequence[str] = (), need_y: bool = True,
                    check_weights: bool = True) -> "ArrayDataAdapter":
        """Validate ``x`` (and ``y``, ``sample_weight``) once into columns.

        ``check_weights`` refuses weights that are 0 on every row (a whole data set; one
        streamed batch may be all zero).

        Raises:
            InputError: naming the feature, the offending value and the fix.
        """
        cols = prepare_inputs(features, x, extra=groups if need_y else ())
        yt = prepare_target(y, len(cols), task) if (need_y or y is not None) else None
        w = prepare_weights(sample_weight, len(cols))
        if check_weights and w is not None and not bool((w > 0).any()):
            raise InputError("sample_weight is 0 for every row, so the weighted loss and metrics "
                             "are undefined; give at least one row a positive weight.")
        return cls(cols, yt, w)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, idx: torch.Tensor) -> "ArrayDataAdapter":
        return ArrayDataAdapter(self.x.subset(idx), None if self.y is None else self.y[idx],
                                None if self.w is None else self.w[idx])

    def _batch(self, idx: torch.Tensor) -> Batch:
        return Batch(self.x.take(idx), None if self.y is None else self.y[idx],
                     None if self.w is None else self.w[idx])

    def train_batches(self, plan, shuffle: bool, generator: torch.Generator) -> Iterator[Batch]:
        n = len(self.x)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for step in range(plan.steps):
            yield self._batch(plan.rows(order, step))

    def batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(self.x), batch_size):
            stop = min(start + batch_size, len(self.x))  # row slices are views: no copy
            yield Batch(self.x.slice(start, stop), None if self.y is None else self.y[start:stop],
                        None if self.w is None else self.w[start:stop])

    def shard(self, rank: int, world_size: int) -> "ArrayDataAdapter":
        n = len(self.x)
        return self.subset(torch.arange(n * rank // world_size, n * (rank + 1) // world_size))

    def fingerprint(self) -> float:
        return 0.0 if self.y is None else float(self.y.double().sum())

    def prepare_regularizer(self, regularizer, model) -> None:
        regularizer.prepare(model, self.x)
