"""Per-row predictions (and labels, weights, group ids) of one pass, for exact epoch metrics.

Exact AUC/GAUC need every row's prediction at the end of the epoch, so this store is the one
part of a streamed fit whose memory grows with the rows: 4 bytes per row for the logit, 4 for
the label, 4 for a sample weight (when given) and 8 per group column (e.g. GAUC's user).
Bounded-memory metrics (``ApproxAUC``) do not need it; see ``docs/streaming.md``.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch


class PredictionStore:
    """Accumulates columns batch by batch; preallocated when the row count is known.

    Args:
        capacity: rows of the pass when known (None: grow in chunks).
        labels: keep the labels; weights: keep the sample weights.
        groups: group columns to keep (taken from each batch's ``x``).
    """

    def __init__(self, capacity: Optional[int], labels: bool = True, weights: bool = False,
                 groups: Sequence[str] = ()) -> None:
        self.capacity = capacity
        self.keys: List[str] = ["logits"] + (["y"] if labels else []) + (
            ["w"] if weights else []) + [f"group:{g}" for g in groups]
        self.groups = list(groups)
        self.seen = 0
        self._chunks: Dict[str, List[torch.Tensor]] = {k: [] for k in self.keys}
        self._buf: Optional[Dict[str, torch.Tensor]] = None
        # allocated at the first batch, whose columns give the row shape ((B,) or, with
        # several tasks, (B, T))
        self._lazy = capacity is not None

    def add(self, logits: torch.Tensor, batch) -> None:
        """Append one batch: its logits (B,) and the batch's labels/weights/group columns."""
        cols = {"logits": logits.detach().float().cpu()}
        if "y" in self.keys:
            cols["y"] = batch.y
        if "w" in self.keys:
            cols["w"] = batch.w
        for g in self.groups:
            cols[f"group:{g}"] = batch.x[g]
        n = len(cols["logits"])
        if self._lazy:
            self._lazy = False
            self._buf = {k: torch.empty((self.capacity,) + tuple(v.shape[1:]),
                                        dtype=self._dtype(k)) for k, v in cols.items()}
        if self._buf is not None and self.seen + n <= self.capacity:
            for k, v in cols.items():
                self._buf[k][self.seen:self.seen + n] = v
        else:
            if self._buf is not None:  # more rows than announced: keep what is there, grow
                for k in self.keys:
                    self._chunks[k].append(self._buf[k][:self.seen])
                self._buf = None
            for k, v in cols.items():
                self._chunks[k].append(v.detach().cpu().clone())
        self.seen += n

    def columns(self) -> Dict[str, torch.Tensor]:
        """Every stored column, trimmed to the rows seen."""
        if self._buf is not None:
            return {k: v[:self.seen] for k, v in self._buf.items()}
        return {k: (torch.cat(v) if v else torch.empty(0, dtype=self._dtype(k)))
                for k, v in self._chunks.items()}

    @staticmethod
    def _dtype(key: str) -> torch.dtype:
        return torch.float32 if key in ("logits", "y", "w") else torch.int64

    def result(self) -> Dict[str, torch.Tensor]:
        """What a pass hands to the metrics: the columns (gathered as rows under DDP)."""
        return self.columns()

    @property
    def bytes_per_row(self) -> int:
        return sum(4 if k in ("logits", "y", "w") else 8 for k in self.keys)


class StreamingMetrics:
    """The bounded-memory alternative to :class:`PredictionStore`: the mean loss and each
    metric's accumulator, updated batch by batch (no per-row memory).

    Args:
        metrics: the metrics, each with an ``accumulator``.
        loss: ``(logits, y, w) -> mean loss`` of a batch.
        output: ``logits -> predictions`` (float64).
    """

    def __init__(self, metrics, loss: Callable, output: Callable) -> None:
        self.metrics = list(metrics)
        self.accs = [m.accumulator() for m in self.metrics]
        self.loss, self.output = loss, output
        self.loss_sum = 0.0
        self.seen = 0
        self.nonfinite = 0

    def add(self, logits: torch.Tensor, batch) -> None:
        logits = logits.detach().float().cpu()
        n = len(logits)
        self.seen += n
        if batch.y is None:
            return
        with torch.no_grad():
            self.loss_sum += float(self.loss(logits, batch.y, batch.w)) * n
        p = self.output(logits.double()).numpy()
        if not np.isfinite(p).all():
            self.nonfinite += 1
            return
        y = batch.y.numpy()
        w = None if batch.w is None else batch.w.numpy()
        for acc in self.accs:
            acc.update(y, p, w)

    def result(self) -> "StreamingMetrics":
        return self

    def reduce(self, reduce_sum: Callable[[torch.Tensor], torch.Tensor]) -> "StreamingMetrics":
        """Sum the state over processes (``reduce_sum`` is an all-reduce)."""
        parts = [torch.tensor([self.loss_sum, float(self.seen), float(self.nonfinite)],
                              dtype=torch.float64)] + [a.state() for a in self.accs]
        sizes = [len(p) for p in parts]
        total = reduce_sum(torch.cat(parts))
        head, *states = torch.split(total, sizes)
        self.loss_sum, self.seen, self.nonfinite = float(head[0]), int(head[1]), int(head[2])
        for acc, st in zip(self.accs, states):
            acc.load_state(st.clone())
        return self

    def mean_loss(self) -> float:
        return self.loss_sum / max(self.seen, 1)

    def logs(self, prefix: str = "") -> Dict[str, float]:
        if self.nonfinite:
            return {prefix + m.name: float("nan") for m in self.metrics}
        return {prefix + m.name: acc.result()[0] for m, acc in zip(self.metrics, self.accs)}
