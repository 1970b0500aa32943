"""The training loop for a model with several outputs (Keras 3's multi-output fit).

:class:`MultiTaskTrainer` runs :class:`~ctrkit.training.trainer.Trainer`'s loops unchanged;
only the loss and the metrics differ:

- the loss minimised is ``sum_t loss_weights[t] * loss_t``, where ``loss_t`` is task ``t``'s
  loss averaged over the batch's rows that have a label for it (a NaN label: the row adds
  nothing to that task's loss or gradient; a batch without any label for a task adds 0);
- logs carry Keras 3's names: ``loss`` (the weighted total), ``<task>_loss`` (over the pass's
  labelled rows), ``<task>_<metric>`` and their ``val_`` versions.

Not supported with several tasks (refused with an error): DDP and TorchRec strategies, and
bounded-memory streamed metrics (a streamed pass keeps its per-row predictions).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..errors import ConfigError
from ..tasks import Tasks, per_task
from .. import strategies as distributed
from ..losses import Loss, get_loss
from ..metrics.base import Metric, get_metrics
from .trainer import Trainer, grouped_metrics


class MultiTaskTrainer(Trainer):
    """:class:`Trainer` for a model whose ``task`` is a :class:`~ctrkit.tasks.Tasks`.

    Args:
        model: the multi-task model (``forward`` returns (B, T) logits).
        optimizer, lr, clipnorm, gauc_group: as for :class:`Trainer`.
        loss: one loss for all tasks, a dict keyed by task name, or a list in task order.
            ``'binary_crossentropy'`` (the default) means ``'mse'`` for a regression task.
        metrics: one list of metrics for all tasks, a dict keyed by task name, or a list of
            T lists in task order.
        loss_weights: one weight for all tasks (default 1.0), a dict, or a list in task order;
            finite and >= 0.

    Raises:
        ConfigError: a bad loss, metric or weight, or a distributed strategy.
    """

    def __init__(self, model, optimizer="adam", loss="binary_crossentropy", metrics=None,
                 lr: Optional[float] = None, clipnorm: Optional[float] = None,
                 gauc_group: Optional[str] = None, strategy: Optional[str] = None,
                 loss_weights: Any = None, dtype_policy: Any = None) -> None:
        tasks: Tasks = model.task
        self.model, self.tasks = model, tasks
        if strategy is not None or distributed.launched_with_torchrun():
            raise ConfigError(f"A multi-task model (tasks {list(tasks.names)}) trains in one "
                              f"process only; strategy={strategy!r} (or a torchrun launch) is "
                              f"not supported with several tasks yet.")
        self.strategy = distributed.check_strategy(None)
        specs = per_task(loss, tasks, "loss")
        specs = ["mse" if s == "binary_crossentropy" and kind == "regression" else s
                 for s, kind in zip(specs, tasks.types)]
        self.losses: List[Loss] = [get_loss(s, kind) for s, kind in zip(specs, tasks.types)]
        self.loss = self.losses[0]
        weights = per_task(1.0 if loss_weights is None else loss_weights, tasks, "loss_weights")
        for name, w in zip(tasks.names, weights):
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not (
                    math.isfinite(w) and w >= 0):
                raise ConfigError(f"loss_weights for task '{name}' must be a finite number "
                                  f">= 0, got {w!r}.")
        self.loss_weights: List[float] = [float(w) for w in weights]
        self.task_metrics: List[List[Metric]] = [
            grouped_metrics(get_metrics(m), gauc_group)
            for m in per_task(metrics, tasks, "metrics", nested=True)]
        # every metric object once (group_keys, bounded): the union over the tasks
        self.metrics = [m for ms in self.task_metrics for m in ms]
        self._optimizer(optimizer, lr, clipnorm, dtype_policy)

    # ------------------------------------------------------------------ losses
    def task_losses(self, logits: torch.Tensor, y: torch.Tensor, w: Optional[torch.Tensor]
                    ) -> Tuple[torch.Tensor, List[Optional[torch.Tensor]]]:
        """``(weighted total, [loss of each task or None where no row has its label])``."""
        total: Optional[torch.Tensor] = None
        parts: List[Optional[torch.Tensor]] = []
        head = self.model.head
        for t, (loss, weight) in enumerate(zip(self.losses, self.loss_weights)):
            z, yt = logits[:, t], y[:, t]
            labelled = ~torch.isnan(yt)
            wt = w
            if not bool(labelled.all()):
                z, yt = z[labelled], yt[labelled]
                wt = None if w is None else w[labelled]
            if len(yt) == 0:
                parts.append(None)
                term = logits[:, t].sum() * 0.0  # no label for this task: adds nothing
            else:
                value = loss(z if loss.from_logits else head.output_of(z, t), yt, wt)
                parts.append(value)
                term = value * weight
            total = term if total is None else total + term
        return total, parts

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, w: Optional[torch.Tensor]) -> torch.Tensor:
        return self.task_losses(logits, y, w)[0]

    # ------------------------------------------------------------------ metrics
    def bounded(self, source) -> bool:
        return False  # several tasks: the per-row store (see the module docstring)

    def metric_keys(self, with_val: bool) -> List[str]:
        keys = ["loss"] + [f"{n}_loss" for n in self.tasks.names] + [
            f"{n}_{m.name}" for n, ms in zip(self.tasks.names, self.task_metrics) for m in ms]
        return keys + (["val_" + k for k in keys] if with_val else [])

    def store_metrics(self, cols, prefix: str = "") -> Dict[str, float]:
        """``<task>_loss`` and ``<task>_<metric>`` of a pass, each over the rows that have
        that task's label."""
        logits, y, w = cols["logits"], cols["y"], cols.get("w")
        groups = {g: cols[f"group:{g}"].numpy() for g in self.group_keys()}
        head = self.model.head
        logs: Dict[str, float] = {}
        with torch.no_grad():
            for t, name in enumerate(self.tasks.names):
                labelled = ~torch.isnan(y[:, t])
                n = int(labelled.sum())
                if n == 0:  # no row of the pass has this task's label
                    logs[f"{prefix}{name}_loss"] = float("nan")
                    for m in self.task_metrics[t]:
                        logs[f"{prefix}{name}_{m.name}"] = float("nan")
                    continue
                z, yt = logits[labelled, t], y[labelled, t]
                wt = None if w is None else w[labelled]
                loss = self.losses[t]
                logs[f"{prefix}{name}_loss"] = float(
                    loss(z if loss.from_logits else head.output_of(z, t), yt, wt))
                mask = labelled.numpy()
                pred = head.output_of(z.double(), t).numpy()
                finite = bool(np.isfinite(pred).all())
                for m in self.task_metrics[t]:
                    key = f"{prefix}{name}_{m.name}"
                    if not finite:
                        logs[key] = float("nan")
                        continue
                    g = groups[m.group][mask] if m.needs_groups else None
                    logs[key] = m(yt.numpy(), pred,
                                  sample_weight=None if wt is None else wt.numpy(), groups=g)
        return logs


__all__ = ["MultiTaskTrainer"]
