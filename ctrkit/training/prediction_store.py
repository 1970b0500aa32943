"""Per-row predictions (and labels, weights, group ids) of one pass, for exact epoch metrics.

Exact AUC/GAUC need every row's prediction at the end of the epoch, so this store is the one
part of a streamed fit whose memory grows with the rows: 4 bytes per row for the logit, 4 for
the label, 4 for a sample weight (when given) and 8 per group column (e.g. GAUC's user).
Bounded-memory metrics (``ApproxAUC``) do not need it; see ``docs/streaming.md``.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

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
        if capacity is not None:
            dtypes = {"logits": torch.float32, "y": torch.float32, "w": torch.float32}
            self._buf = {k: torch.empty(capacity, dtype=dtypes.get(k, torch.int64))
                         for k in self.keys}

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
        return {k: (torch.cat(v) if v else torch.empty(0)) for k, v in self._chunks.items()}

    @property
    def bytes_per_row(self) -> int:
        return sum(4 if k in ("logits", "y", "w") else 8 for k in self.keys)
