"""The generic training loop behind ``compile``/``fit``/``evaluate``/``predict``.

It knows nothing about any particular model: a model is an ``nn.Module`` whose ``forward``
maps a batch dict of tensors to logits (B,), with a ``head`` that turns logits into
predictions, ``features``, ``task``, ``regularization_loss(batch)`` and ``device``.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..errors import ConfigError, InputError, NotCompiledError
from ..inputs import Columns, prepare_inputs, prepare_target, prepare_weights
from ..layers.frozen import frozen_weights
from . import allocator, distributed
from .callbacks import CallbackList, History, ProgbarLogger, check_callbacks
from .callbacks.backup_and_restore import resume_from_backup
from .losses import Loss, get_loss
from .metrics import Metric, get_metrics
from .optimizers import create_optimizer


class Data:
    """Validated inputs, targets, optional weights and optional group ids of one data set."""

    def __init__(self, x: Columns, y: Optional[torch.Tensor], w: Optional[torch.Tensor]) -> None:
        self.x, self.y, self.w = x, y, w

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, idx: torch.Tensor) -> "Data":
        return Data(self.x.subset(idx), None if self.y is None else self.y[idx],
                    None if self.w is None else self.w[idx])


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ConfigError(f"{name} must be an integer, got {value!r}.")
    return int(value)


def _check_verbose(verbose: Any) -> int:
    if isinstance(verbose, bool):
        return int(verbose)
    if not hasattr(verbose, "__index__") or int(verbose) not in (0, 1, 2):
        raise ConfigError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (one line per "
                          f"epoch), got {verbose!r}.")
    return int(verbose)


class Trainer:
    """Holds what ``compile`` chose and runs the loops.

    Args:
        model: the model (see module docstring for the contract).
        optimizer: name, ``torch.optim.Optimizer`` class or instance.
        loss: name, :class:`Loss` or callable ``f(y_pred, y_true)``.
        metrics: names, :class:`Metric` objects or callables.
        lr: learning rate (None: the optimizer's default).
        clipnorm: clip the global gradient norm to this value.
        gauc_group: feature whose ids group rows for group metrics such as ``gauc``.
        strategy: None (data-parallel when launched with torchrun) or ``'ddp'``; see
            :mod:`ctrkit.training.distributed`.
    """

    def __init__(self, model, optimizer="adam", loss="binary_crossentropy", metrics=None,
                 lr: Optional[float] = None, clipnorm: Optional[float] = None,
                 gauc_group: Optional[str] = None, strategy: Optional[str] = None) -> None:
        self.model = model
        self.strategy = distributed.check_strategy(strategy)
        self.loss: Loss = get_loss(loss, model.task)
        self.metrics: List[Metric] = get_metrics(metrics)
        if gauc_group is not None:
            self.metrics = [m if not m.needs_groups or m.group else
                            dataclasses.replace(m, group=gauc_group) for m in self.metrics]
        for m in self.metrics:
            if m.needs_groups and not m.group:
                raise ConfigError(
                    f"Metric '{m.name}' needs a group per row (e.g. the user) but none was "
                    f"named; pass compile(..., gauc_group='user') or a metric object such as "
                    f"GAUC(group='user').")
        if clipnorm is not None and not float(clipnorm) > 0:
            raise ConfigError(f"clipnorm must be > 0, got {clipnorm!r}.")
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.optimizer = create_optimizer(optimizer, model.parameters(), lr)
        if isinstance(optimizer, torch.optim.Optimizer):
            own = {id(p) for p in model.parameters()}
            if not any(id(p) in own for g in optimizer.param_groups for p in g["params"]):
                raise ConfigError(
                    f"The {type(optimizer).__name__} instance passed to compile holds none of "
                    f"this model's parameters; build it from them, e.g. "
                    f"torch.optim.Adam(model.parameters(), lr=1e-3), or pass a name.")

    # ------------------------------------------------------------------ data
    def group_keys(self) -> List[str]:
        return sorted({m.group for m in self.metrics if m.needs_groups})

    def prepare(self, x, y=None, sample_weight=None, *, need_y: bool = True,
                what: str = "x") -> Data:
        cols = prepare_inputs(self.model.features, x, extra=self.group_keys() if need_y else ())
        yt = prepare_target(y, len(cols), self.model.task) if (need_y or y is not None) else None
        w = prepare_weights(sample_weight, len(cols))
        if w is not None and not bool((w > 0).any()):
            raise InputError("sample_weight is 0 for every row, so the weighted loss and metrics "
                             "are undefined; give at least one row a positive weight.")
        return Data(cols, yt, w)

    def _validation(self, data: Data, validation_split: float, validation_data
                    ) -> Tuple[Data, Optional[Data]]:
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise InputError(
                    f"validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                    f"sample_weight), got {type(validation_data).__name__} of length "
                    f"{len(validation_data) if hasattr(validation_data, '__len__') else '?'}.")
            vx, vy = validation_data[0], validation_data[1]
            vw = validation_data[2] if len(validation_data) == 3 else None
            try:
                return data, self.prepare(vx, vy, vw)
            except InputError as e:
                raise type(e)(f"In validation_data: {e}") from e
        if (isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real)
                or not 0.0 <= validation_split < 1.0):
            raise ConfigError(f"validation_split must lie in [0, 1), got {validation_split!r}.")
        if validation_split == 0:
            return data, None
        n = len(data)
        split = int(n * (1.0 - validation_split))
        if split < 1 or split >= n:
            raise ConfigError(f"validation_split={validation_split} leaves {split} training and "
                              f"{n - split} validation rows out of {n}; both must be >= 1.")
        idx = torch.arange(n)
        # Keras semantics: the LAST fraction of rows, taken before any shuffling.
        return data.subset(idx[:split]), data.subset(idx[split:])

    # ------------------------------------------------------------------ loops
    def train_loss(self, batch: Dict[str, torch.Tensor], y: torch.Tensor,
                   w: Optional[torch.Tensor], scale: float = 1.0
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, data loss, loss to minimise)`` of one training batch; ``scale``
        multiplies the data loss in the last (see :mod:`ctrkit.training.distributed`)."""
        logits = self.model(batch)
        loss = self._loss(logits, y, w)
        reg = self.model.regularization_loss(batch)
        total = loss if scale == 1.0 else loss * scale
        return logits, loss, total if reg is None else total + reg

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, w: Optional[torch.Tensor]) -> torch.Tensor:
        head = self.model.head
        out = logits if self.loss.from_logits else head.output(logits)
        return self.loss(out, y, w)

    def compute_metrics(self, y: np.ndarray, pred: np.ndarray, w: Optional[np.ndarray],
                        x: Columns, prefix: str = "") -> Dict[str, float]:
        logs: Dict[str, float] = {}
        # After a diverged step (NaN/inf predictions) the metrics are NaN; sklearn would raise.
        finite = bool(np.isfinite(pred).all())
        for m in self.metrics:
            if not finite:
                logs[prefix + m.name] = float("nan")
                continue
            groups = x[m.group].numpy() if m.needs_groups else None
            logs[prefix + m.name] = m(y, pred, sample_weight=w, groups=groups)
        return logs

    def fit(self, x, y, batch_size: Optional[int] = None, epochs: int = 1, verbose: int = 1,
            initial_epoch: int = 0, validation_split: float = 0.0, validation_data=None,
            shuffle: bool = True, callbacks=None, sample_weight=None) -> History:
        """Train for epochs ``initial_epoch..epochs-1``; see ``BaseModel.fit`` for the arguments.

        Hooks run in Keras order: train_begin, then per epoch epoch_begin, train_batch_begin/
        end per step, test_begin/test_batch_*/test_end for validation, epoch_end; train_end.
        Callbacks run in list order, then History, then the progress bar. Every training step
        runs in train mode; ``model.stop_training`` is checked after each step and epoch.

        Returns:
            the :class:`History` of this call.

        Raises:
            ConfigError: bad epochs/initial_epoch/verbose/batch_size/validation_split.
            InputError: bad data or validation_data (nothing is trained then).
            CallbackError: a non-Callback in ``callbacks``, or a callback's monitor key that
                is not logged (at the end of the first epoch).
        """
        model = self.model
        batch_size = _positive_int("batch_size", 256 if batch_size is None else batch_size)
        epochs, initial_epoch = _int("epochs", epochs), _int("initial_epoch", initial_epoch)
        verbose = _check_verbose(verbose)
        if initial_epoch < 0 or epochs <= initial_epoch:
            raise ConfigError(f"epochs ({epochs}) must be greater than initial_epoch "
                              f"({initial_epoch}): fit runs epochs initial_epoch..epochs-1.")
        user_cbs = check_callbacks(callbacks)
        data = self.prepare(x, y, sample_weight)
        train, val = self._validation(data, validation_split, validation_data)
        n = len(train)
        plan = distributed.plan(self, train, batch_size)  # one process, or shards under torchrun
        steps = plan.steps
        user_cbs, verbose = plan.callbacks(user_cbs, verbose)  # rank 0 alone prints/writes
        history = History()
        # History and the progress bar come last, so they see keys callbacks add (e.g. 'lr').
        cbs = CallbackList(user_cbs + [history] + ([ProgbarLogger(verbose)] if verbose else []))
        cbs.set_model(model)
        cbs.set_params({"epochs": epochs, "steps": steps, "batch_size": batch_size,
                        "samples": n, "val_samples": len(val) if val is not None else 0,
                        "verbose": verbose, "metrics": self.metric_keys(val is not None)})
        model.stop_training = False
        model.regularizer.prepare(model, train.x)
        device = model.device
        gen = model.rng
        allocator.tune()  # steps reuse freed activation memory (see training/allocator.py)
        try:
            with torch.random.fork_rng(devices=_rng_devices(device)):
                torch.manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=gen)) + plan.rank)
                cbs.on_train_begin()
                # After every on_train_begin (which resets callback state), inside the RNG fork:
                # a BackupAndRestore callback resumes an interrupted run from its last backup
                # (and moves to the end of the list, to back up each epoch after the others).
                initial_epoch = resume_from_backup(cbs, initial_epoch)
                epoch_logs: Dict[str, Any] = {}
                for epoch in range(initial_epoch, epochs):
                    cbs.on_epoch_begin(epoch)
                    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
                    # logits; float64 probabilities at epoch end
                    preds = torch.empty(n, dtype=torch.float32)
                    loss_sum, seen = 0.0, 0
                    for step in range(steps):
                        idx = plan.rows(order, step)
                        cbs.on_train_batch_begin(step, {"size": len(idx)})
                        model.train()
                        batch = train.x.take(idx, device)
                        yb = train.y[idx].to(device)
                        wb = train.w[idx].to(device) if train.w is not None else None
                        logits, loss, total = plan.train_loss(batch, yb, wb)
                        self.optimizer.zero_grad(set_to_none=True)
                        total.backward()
                        if self.clipnorm is not None:
                            torch.nn.utils.clip_grad_norm_(model.parameters(), self.clipnorm)
                        self.optimizer.step()
                        preds[seen:seen + len(idx)] = logits.detach().float().cpu()
                        seen += len(idx)
                        batch_loss, size = plan.batch_loss(float(loss.detach()), len(idx))
                        loss_sum += batch_loss * size
                        cbs.on_train_batch_end(step, {"loss": batch_loss, "size": size})
                        if plan.stop(model.stop_training):
                            break
                    preds, seen = plan.end_epoch(preds, seen)  # all ranks' logits, in order
                    used = order[:seen]
                    epoch_logs = {"loss": loss_sum / max(seen, 1)}
                    epoch_logs.update(self.compute_metrics(
                        train.y[used].numpy(), model.head.output(preds[:seen].double()).numpy(),
                        None if train.w is None else train.w[used].numpy(),
                        train.x.subset(used) if self.group_keys() else train.x))
                    if val is not None:
                        epoch_logs.update(self._evaluate(val, batch_size, cbs, prefix="val_"))
                    cbs.on_epoch_end(epoch, epoch_logs)
                    if plan.stop(model.stop_training):
                        break
                cbs.on_train_end(epoch_logs)
        finally:  # also when a callback or the data raises mid-fit
            plan.close()
            allocator.release()
        model.train()
        return history

    def metric_keys(self, with_val: bool) -> List[str]:
        keys = ["loss"] + [m.name for m in self.metrics]
        return keys + (["val_" + k for k in keys] if with_val else [])

    def _evaluate(self, data: Data, batch_size: int, cbs: CallbackList, prefix: str = ""
                  ) -> Dict[str, float]:
        cbs.on_test_begin()
        logits = predict_logits(self.model, data.x, batch_size, cbs, test=True)
        with torch.no_grad():
            loss = self._loss(logits, data.y, data.w)
        pred = self.model.head.output(logits.double()).numpy()  # float64: no ties from rounding
        logs = {prefix + "loss": float(loss)}
        logs.update(self.compute_metrics(data.y.numpy(), pred,
                                         None if data.w is None else data.w.numpy(), data.x,
                                         prefix))
        cbs.on_test_end(logs)
        return logs

    def evaluate(self, x, y, batch_size: int = 256, sample_weight=None, verbose: int = 0,
                 callbacks=None) -> Dict[str, float]:
        batch_size = _positive_int("batch_size", batch_size)
        data = self.prepare(x, y, sample_weight)
        cbs = CallbackList(check_callbacks(callbacks))
        cbs.set_model(self.model)
        logs = self._evaluate(data, batch_size, cbs)
        if verbose and distributed.is_rank_zero():
            from .callbacks.progbar import format_logs
            print(format_logs(logs))
        return logs


def _rng_devices(device: torch.device) -> list:
    if device.type == "cuda":
        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []


def predict_logits(model, cols: Columns, batch_size: int, cbs: Optional[CallbackList] = None,
                   test: bool = False) -> torch.Tensor:
    """Logits (n,) on the CPU, in eval mode and without autograd; the mode is restored after.

    Under DDP (:func:`distributed.uses_ddp`) each rank predicts a shard and all rows return.
    """
    if distributed.uses_ddp(model):
        return distributed.gather_predictions(
            lambda shard: _predict_logits(model, shard, batch_size, cbs, test), cols)
    return _predict_logits(model, cols, batch_size, cbs, test)


def _predict_logits(model, cols: Columns, batch_size: int, cbs: Optional[CallbackList],
                    test: bool) -> torch.Tensor:
    was_training = model.training
    model.eval()
    allocator.tune()  # batches reuse freed memory instead of faulting fresh pages in
    n = len(cols)
    out = torch.empty(n, dtype=torch.float32)
    begin, end = ("on_test_batch_begin", "on_test_batch_end") if test else (
        "on_predict_batch_begin", "on_predict_batch_end")
    try:
        hooks = cbs is not None and bool(cbs.callbacks)
        with torch.inference_mode(), frozen_weights() as frozen:
            for step, start in enumerate(range(0, n, batch_size)):
                stop = min(start + batch_size, n)
                if hooks:
                    getattr(cbs, begin)(step, {"size": stop - start})
                    frozen.clear()  # the callbacks (this one and last batch's end) may edit weights
                out[start:stop] = model(cols.slice(start, stop, model.device)).float().cpu()
                if hooks:
                    getattr(cbs, end)(step, {"size": stop - start})
    finally:
        model.train(was_training)
    return out.clone()


def require_trainer(model) -> Trainer:
    trainer = getattr(model, "trainer", None)
    if trainer is None:
        raise NotCompiledError(
            f"{type(model).__name__} is not compiled: call model.compile(optimizer, loss, "
            f"metrics) before fit/evaluate, e.g. model.compile('adam', 'binary_crossentropy', "
            f"metrics=['auc']).")
    return trainer
