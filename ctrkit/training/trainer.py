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
from ..inputs import Columns
from ..layers.frozen import frozen_weights  # noqa: F401  (round-2 name)
from .. import mixed_precision
from .. import strategies as distributed
from ..utils import allocator
from . import modes
from ..callbacks import CallbackList, History, ProgbarLogger, check_callbacks
from ..callbacks.backup_and_restore import resume_from_backup
from ..losses import Loss, get_loss
from ..metrics.base import Metric, get_metrics
from .data_adapters import ArrayDataAdapter, DataAdapter, get_data_adapter, is_batch_source
from ..optimizers import create_optimizer
from ..metrics import approx_auc  # noqa: F401  (registers 'approx_auc')
from ..metrics.prediction_store import PredictionStore, StreamingMetrics


#: the in-memory source (kept under its old name: ``Trainer.prepare`` returns one).
Data = ArrayDataAdapter


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ConfigError(f"{name} must be an integer, got {value!r}.")
    return int(value)


def check_verbose(verbose: Any) -> int:
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
        strategy: None (data-parallel when launched with torchrun), ``'ddp'``, or
            ``'torchrec'`` (sharded tables; :mod:`ctrkit.strategies.torchrec`); see
            :mod:`ctrkit.strategies`.
        dtype_policy: ``'float32'``, ``'mixed_bfloat16'`` or ``'mixed_float16'`` (None: the
            global policy); see :mod:`ctrkit.mixed_precision`.
    """

    def __init__(self, model, optimizer="adam", loss="binary_crossentropy", metrics=None,
                 lr: Optional[float] = None, clipnorm: Optional[float] = None,
                 gauc_group: Optional[str] = None, strategy: Optional[str] = None,
                 dtype_policy: Any = None) -> None:
        self.model = model
        self.strategy = distributed.check_strategy(strategy)
        self.loss: Loss = get_loss(loss, model.task)
        self.metrics: List[Metric] = grouped_metrics(get_metrics(metrics), gauc_group)
        self._optimizer(optimizer, lr, clipnorm, dtype_policy)

    def _optimizer(self, optimizer, lr: Optional[float], clipnorm: Optional[float],
                   policy: Any = None) -> None:
        model = self.model
        self.dtype_policy = mixed_precision.dtype_policy(policy)
        self.dtype_policy.check_device(model.device)
        # float16 gradients underflow: scale the loss (CUDA only; see ctrkit.mixed_precision)
        self.scaler = torch.amp.GradScaler("cuda") \
            if self.dtype_policy.name == "mixed_float16" else None
        if clipnorm is not None and not float(clipnorm) > 0:
            raise ConfigError(f"clipnorm must be > 0, got {clipnorm!r}.")
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        if getattr(self.strategy, "name", None) == "torchrec":  # fused embedding optimizer
            from ..strategies.torchrec import dense_optimizer
            self.optimizer = dense_optimizer(self, optimizer, lr, self.clipnorm)
        else:
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
                what: str = "x") -> ArrayDataAdapter:
        """In-memory arrays validated once (the group columns the metrics need included)."""
        return ArrayDataAdapter.from_arrays(self.model.features, self.model.task, x, y,
                                            sample_weight, groups=self.group_keys(),
                                            need_y=need_y)

    def source(self, x, y=None, sample_weight=None, *, need_y: bool = True,
               steps: Optional[int] = None, what: str = "x") -> DataAdapter:
        """The :class:`DataAdapter` for ``x``: in-memory arrays are validated here, once;
        a batch source (:class:`ctrkit.data.ParquetDataset`, a generator, a DataLoader) is
        validated batch by batch as it is read."""
        return get_data_adapter(self.model, x, y, sample_weight, groups=self.group_keys(),
                                need_y=need_y, steps=steps, what=what)

    def _validation(self, data: DataAdapter, validation_split: float, validation_data,
                    validation_steps: Optional[int] = None, x: Any = None
                    ) -> Tuple[DataAdapter, Optional[DataAdapter]]:
        if validation_data is not None:
            if is_batch_source(validation_data):
                vx, vy, vw = validation_data, None, None
            elif isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
                vx, vy = validation_data[0], validation_data[1]
                vw = validation_data[2] if len(validation_data) == 3 else None
            else:
                raise InputError(
                    f"validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                    f"sample_weight), got {type(validation_data).__name__} of length "
                    f"{len(validation_data) if hasattr(validation_data, '__len__') else '?'}. "
                    f"It may also be a batch source: a ctrkit.data.ParquetDataset or an "
                    f"iterable of (x_batch, y_batch) batches.")
            try:
                val = self.source(vx, vy, vw, steps=validation_steps, what="validation_data")
            except InputError as e:
                raise type(e)(f"In validation_data: {e}") from e
            if vx is not x:  # validating on the very training x is deliberate, not a leak
                self._check_leakage(data, val, "validation_data")
            return data, val
        if (isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real)
                or not 0.0 <= validation_split < 1.0):
            raise ConfigError(f"validation_split must lie in [0, 1), got {validation_split!r}.")
        if validation_split == 0:
            return data, None
        if not isinstance(data, ArrayDataAdapter):
            raise ConfigError(
                f"validation_split needs in-memory arrays (it holds out their last rows); with "
                f"{type(data).__name__} input pass validation_data=... instead (e.g. a "
                f"ctrkit.data.ParquetDataset of the validation files).")
        n = len(data)
        split = int(n * (1.0 - validation_split))
        if split < 1 or split >= n:
            raise ConfigError(f"validation_split={validation_split} leaves {split} training and "
                              f"{n - split} validation rows out of {n}; both must be >= 1.")
        idx = torch.arange(n)
        # Keras semantics: the LAST fraction of rows, taken before any shuffling.
        train, val = data.subset(idx[:split]), data.subset(idx[split:])
        self._check_leakage(train, val, f"validation_split={validation_split}")
        return train, val

    def _check_leakage(self, train: DataAdapter, val: DataAdapter, source: str) -> None:
        """The duplicate-row data check (see :mod:`ctrkit.training.leakage`), in-memory data."""
        if isinstance(train, ArrayDataAdapter) and isinstance(val, ArrayDataAdapter):
            from .leakage import warn_on_leakage
            warn_on_leakage(self.model.features, train.x, val.x, source)

    # ------------------------------------------------------------------ loops
    def train_loss(self, batch: Dict[str, torch.Tensor], y: torch.Tensor,
                   w: Optional[torch.Tensor], scale: float = 1.0
                   ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        """``(logits, data loss, auxiliary loss or None, loss to minimise)`` of one training
        batch. The last is ``scale * (data loss + auxiliary loss) + regularization``: the
        auxiliary loss is what the model's forward added with ``add_auxiliary_loss``, and
        ``scale`` weights this process's batch in a DDP step (see
        :mod:`ctrkit.strategies`)."""
        with self.dtype_policy.autocast(self.model.device):
            out = self.model(batch)
        logits = check_logits(self.model, out.float(), len(y))  # float32 losses and metrics
        loss = self._loss(logits, y, w)
        aux = self.model.auxiliary_loss() if hasattr(self.model, "auxiliary_loss") else None
        objective = loss if aux is None else loss + aux
        reg = self.model.regularization_loss(batch)
        total = objective if scale == 1.0 else objective * scale
        return logits, loss, aux, total if reg is None else total + reg

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, w: Optional[torch.Tensor]) -> torch.Tensor:
        head = self.model.head
        out = logits if self.loss.from_logits else head.output(logits)
        return self.loss(out, y, w)

    def compute_metrics(self, y: np.ndarray, pred: np.ndarray, w: Optional[np.ndarray],
                        x: Any, prefix: str = "") -> Dict[str, float]:
        """Every metric over a whole pass; ``x`` maps each group column (e.g. GAUC's user)
        to its per-row values (a dict or :class:`Columns`)."""
        logs: Dict[str, float] = {}
        # After a diverged step (NaN/inf predictions) the metrics are NaN; sklearn would raise.
        finite = bool(np.isfinite(pred).all())
        for m in self.metrics:
            if not finite:
                logs[prefix + m.name] = float("nan")
                continue
            groups = np.asarray(x[m.group]) if m.needs_groups else None
            logs[prefix + m.name] = m(y, pred, sample_weight=w, groups=groups)
        return logs

    def bounded(self, source: DataAdapter) -> bool:
        """True when a pass over ``source`` keeps no per-row predictions: it is streamed and
        every metric has a bounded-memory accumulator (e.g. ``'approx_auc'``)."""
        return not source.in_memory and all(m.accumulator is not None for m in self.metrics)

    def new_store(self, source: DataAdapter, capacity: Optional[int]):
        """The per-row store of one pass over ``source`` (logits, labels, weights, groups),
        or its bounded-memory :class:`StreamingMetrics` (see :meth:`bounded`)."""
        if self.bounded(source):
            return StreamingMetrics(self.metrics, self._loss, self.model.head.output)
        return PredictionStore(capacity, labels=source.has_targets, weights=source.has_weights,
                               groups=self.group_keys() if source.has_targets else ())

    def store_metrics(self, cols, prefix: str = "") -> Dict[str, float]:
        """The metrics of a pass from its stored columns (see :meth:`new_store`)."""
        if isinstance(cols, StreamingMetrics):
            return cols.logs(prefix)
        w = cols.get("w")
        # float64 predictions, computed piece by piece: no second full-size float64 temporary
        # next to them (10^7 rows: 80 MB each), as the exact metrics are lean too.
        logits = cols["logits"]
        pred = np.empty(len(logits), dtype=np.float64)
        for a in range(0, len(logits), 1 << 20):
            pred[a:a + (1 << 20)] = self.model.head.output(logits[a:a + (1 << 20)].double()).numpy()
        return self.compute_metrics(
            cols["y"].numpy(), pred,
            None if w is None else w.numpy(),
            {g: cols[f"group:{g}"].numpy() for g in self.group_keys()}, prefix)

    def fit(self, x, y, batch_size: Optional[int] = None, epochs: int = 1, verbose: int = 1,
            initial_epoch: int = 0, validation_split: float = 0.0, validation_data=None,
            shuffle: bool = True, callbacks=None, sample_weight=None,
            steps_per_epoch: Optional[int] = None, validation_steps: Optional[int] = None,
            validation_freq: int = 1) -> History:
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
            ConfigError: another thread is running fit, predict, evaluate or explain on this
                model (see :mod:`ctrkit.training.modes`).
        """
        with modes.training(self.model):
            return self._fit(x, y, batch_size, epochs, verbose, initial_epoch, validation_split,
                             validation_data, shuffle, callbacks, sample_weight,
                             steps_per_epoch, validation_steps, validation_freq)

    def _fit(self, x, y, batch_size, epochs, verbose, initial_epoch, validation_split,
             validation_data, shuffle, callbacks, sample_weight, steps_per_epoch,
             validation_steps, validation_freq) -> History:
        model = self.model
        batch_given = batch_size
        batch_size = _positive_int("batch_size", 256 if batch_size is None else batch_size)
        epochs, initial_epoch = _int("epochs", epochs), _int("initial_epoch", initial_epoch)
        if steps_per_epoch is not None:
            steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
        if validation_steps is not None:
            validation_steps = _positive_int("validation_steps", validation_steps)
        verbose = check_verbose(verbose)
        validation_freq = _positive_int("validation_freq", validation_freq)
        if initial_epoch < 0 or epochs <= initial_epoch:
            raise ConfigError(f"epochs ({epochs}) must be greater than initial_epoch "
                              f"({initial_epoch}): fit runs epochs initial_epoch..epochs-1.")
        user_cbs = check_callbacks(callbacks)
        train, val = self._fit_sources(x, y, sample_weight, batch_given, steps_per_epoch,
                                       validation_split, validation_data, validation_steps)
        plan = None
        allocator.tune()  # steps reuse freed activation memory (see training/allocator.py)
        try:
            plan = distributed.plan(self, train, batch_size)  # one process, or ranks
            steps = plan.steps
            user_cbs, verbose = plan.callbacks(user_cbs, verbose)  # rank 0 alone prints/writes
            history = History()
            # History and the progress bar come last, so they see keys callbacks add (e.g. 'lr').
            cbs = CallbackList(user_cbs + [history] + ([ProgbarLogger(verbose)] if verbose else []))
            cbs.set_model(model)
            cbs.set_params({"epochs": epochs, "steps": steps, "batch_size": batch_size,
                            "samples": train.num_rows,
                            "val_samples": (val.num_rows or 0) if val is not None else 0,
                            "verbose": verbose, "metrics": self.metric_keys(val is not None),
                            "validation_freq": validation_freq})
            model.stop_training = False
            train.prepare_regularizer(model.regularizer, model)
            device = model.device
            gen = model.rng
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
                    # logits (+ labels, weights, groups); float64 probabilities at epoch end
                    store = self.new_store(train, plan.local_rows)
                    loss_sum, seen, aux_sum, aux_seen = self._train_epoch(plan, train, store,
                                                                          cbs, shuffle)
                    cols = plan.end_epoch(store)  # all ranks' rows
                    epoch_logs = {"loss": loss_sum / max(seen, 1)}
                    if aux_seen:  # row-weighted mean over the batches that had one
                        epoch_logs["aux_loss"] = aux_sum / aux_seen
                    epoch_logs.update(self.store_metrics(cols))
                    if val is not None and (epoch + 1) % validation_freq == 0:  # as Keras
                        epoch_logs.update(self._evaluate(val, batch_size, cbs, prefix="val_"))
                    cbs.on_epoch_end(epoch, epoch_logs)
                    if plan.stop(model.stop_training):
                        break
                cbs.on_train_end(epoch_logs)
        finally:  # also when a callback or the data raises mid-fit
            if plan is not None:
                plan.close()
            train.close()
            if val is not None:
                val.close()
            allocator.release()
        model.train()
        return history

    def _fit_sources(self, x, y, sample_weight, batch_given, steps_per_epoch, validation_split,
                     validation_data, validation_steps
                     ) -> Tuple[DataAdapter, Optional[DataAdapter]]:
        """The training and validation sources of one fit (closed again on any error).

        Raises:
            ConfigError: batch_size for input that batches itself, or steps_per_epoch for
                input of a known size.
        """
        data = self.source(x, y, sample_weight, steps=steps_per_epoch)
        try:
            if batch_given and not data.uses_batch_size:
                raise ConfigError(
                    f"batch_size={batch_given!r} was given but {type(x).__name__} input makes "
                    f"its own batches (each yielded item is one step); drop batch_size, or "
                    f"batch the data yourself (e.g. DataLoader(batch_size=...)).")
            if steps_per_epoch is not None and data.uses_batch_size:
                raise ConfigError(
                    f"steps_per_epoch applies to an iterable of batches (a generator, a "
                    f"DataLoader); {type(x).__name__} input has a known size: one epoch is one "
                    f"pass over its rows. Drop steps_per_epoch.")
            return self._validation(data, validation_split, validation_data, validation_steps, x)
        except BaseException:
            data.close()
            raise

    def _train_epoch(self, plan, train: DataAdapter, store, cbs: CallbackList, shuffle: bool
                     ) -> Tuple[float, int, float, int]:
        """One epoch's optimizer steps on this process's batches; every step's logits go to
        ``store``. Returns ``(loss sum, rows, auxiliary-loss sum, rows that had one)`` over
        all ranks."""
        model = self.model
        loss_sum, seen, aux_sum, aux_seen = 0.0, 0, 0.0, 0
        for step, batch in enumerate(plan.batches(train, shuffle, model.rng)):
            size = batch.size
            cbs.on_train_batch_begin(step, {"size": size})
            model.train()
            xb, yb, wb = _to_device(batch, model.device)
            logits, loss, aux, total = plan.train_loss(xb, yb, wb)
            self.optimizer.zero_grad(set_to_none=True)
            self._step(total)
            store.add(logits, batch)
            batch_loss, size, batch_aux, aux_size = plan.batch_loss(
                float(loss.detach()), size, None if aux is None else float(aux.detach()))
            seen += size
            loss_sum += batch_loss * size
            batch_logs = {"loss": batch_loss, "size": size}
            if batch_aux is not None:  # the model added auxiliary losses
                aux_sum, aux_seen = aux_sum + batch_aux * aux_size, aux_seen + aux_size
                batch_logs["aux_loss"] = batch_aux
            cbs.on_train_batch_end(step, batch_logs)
            if plan.stop(model.stop_training):
                break
        return loss_sum, seen, aux_sum, aux_seen

    def _step(self, total: torch.Tensor) -> None:
        """Backward and optimizer step (with loss scaling under ``mixed_float16``)."""
        scaler = self.scaler
        if scaler is None:
            total.backward()
        else:
            scaler.scale(total).backward()
            scaler.unscale_(self.optimizer)
        if self.clipnorm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clipnorm)
        if scaler is None:
            self.optimizer.step()
        else:
            scaler.step(self.optimizer)
            scaler.update()

    def metric_keys(self, with_val: bool) -> List[str]:
        keys = ["loss"] + [m.name for m in self.metrics]
        return keys + (["val_" + k for k in keys] if with_val else [])

    def _evaluate(self, data: DataAdapter, batch_size: int, cbs: CallbackList, prefix: str = ""
                  ) -> Dict[str, float]:
        cbs.on_test_begin()
        cols = predict_columns(self.model, data, batch_size, cbs, test=True, store=self.new_store)
        rows = cols.seen if isinstance(cols, StreamingMetrics) else len(cols["logits"])
        if rows == 0:
            raise InputError(f"The {'validation ' if prefix else ''}data yielded no rows to "
                             f"evaluate.")
        if isinstance(cols, StreamingMetrics):
            loss = cols.mean_loss()  # the mean of the batches' sums: bounded memory
        else:
            with torch.no_grad():
                loss = float(self._loss(cols["logits"], cols["y"], cols.get("w")))
        logs = {"loss": loss}
        logs.update(self.store_metrics(cols))
        # As Keras: the test hooks see the evaluation's own names ('loss', 'auc'), also when
        # fit validates; fit's epoch logs get them with the 'val_' prefix.
        cbs.on_test_end(logs)
        return {prefix + k: v for k, v in logs.items()}

    def evaluate(self, x, y=None, batch_size: int = 256, sample_weight=None, verbose: int = 0,
                 callbacks=None, steps: Optional[int] = None) -> Dict[str, float]:
        batch_size = _positive_int("batch_size", batch_size)
        if steps is not None:
            steps = _positive_int("steps", steps)
        data = self.source(x, y, sample_weight, steps=steps)
        try:
            cbs = CallbackList(check_callbacks(callbacks))
            cbs.set_model(self.model)
            logs = self._evaluate(data, batch_size, cbs)
        finally:
            data.close()
        if verbose and distributed.is_rank_zero():
            from ..callbacks.progbar import format_logs
            print(format_logs(logs))
        return logs


def grouped_metrics(metrics: List[Metric], gauc_group: Optional[str]) -> List[Metric]:
    """``metrics`` with ``gauc_group`` as the group of every group metric that names none.

    Raises:
        ConfigError: a group metric (GAUC) is left without a group.
    """
    if gauc_group is not None:
        metrics = [m if not m.needs_groups or m.group else
                   dataclasses.replace(m, group=gauc_group) for m in metrics]
    for m in metrics:
        if m.needs_groups and not m.group:
            raise ConfigError(
                f"Metric '{m.name}' needs a group per row (e.g. the user) but none was "
                f"named; pass compile(..., gauc_group='user') or a metric object such as "
                f"GAUC(group='user').")
    return metrics


def check_logits(model, logits: torch.Tensor, rows: int) -> torch.Tensor:
    """``logits`` if it holds one logit per row, shape ``(rows,)``.

    Raises:
        ConfigError: any other shape; (B, 1) in particular, which a loss would broadcast
            against (B,) labels to (B, B), a wrong result without an error.
    """
    tasks = getattr(model, "task", None)
    if not isinstance(tasks, str) and tasks is not None:  # a multi-task model: (rows, T)
        if logits.shape != (rows, len(tasks)):
            raise ConfigError(
                f"{type(model).__name__}.forward returned logits of shape "
                f"{tuple(logits.shape)} for a batch of {rows} rows; a model with tasks "
                f"{list(tasks.names)} returns one logit per row and task, shape "
                f"({rows}, {len(tasks)}), in task order.")
        return logits
    if logits.shape != (rows,):
        raise ConfigError(
            f"{type(model).__name__}.forward returned logits of shape {tuple(logits.shape)} for "
            f"a batch of {rows} rows; a model returns one logit per row, shape ({rows},) (e.g. "
            f"out.squeeze(-1)).")
    return logits


def _rng_devices(device: torch.device) -> list:
    if device.type == "cuda":
        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []


def _to_device(batch, device: torch.device):
    """``(x, y, w)`` of a CPU batch on ``device`` (no copy on the CPU)."""
    if device.type == "cpu":
        return batch.x, batch.y, batch.w
    x = {k: v.to(device, non_blocking=True) for k, v in batch.x.items()}
    return (x, None if batch.y is None else batch.y.to(device),
            None if batch.w is None else batch.w.to(device))


def predict_logits(model, data, batch_size: int, cbs: Optional[CallbackList] = None,
                   test: bool = False) -> torch.Tensor:
    """Logits (n,) on the CPU, in eval mode and without autograd; the mode is restored after.

    ``data`` is validated :class:`Columns` or a :class:`DataAdapter`. Under DDP
    (:func:`distributed.uses_ddp`) each rank predicts a shard and all rows return.
    """
    return predict_columns(model, data, batch_size, cbs, test)["logits"]


def predict_columns(model, data, batch_size: int, cbs: Optional[CallbackList] = None,
                    test: bool = False, store=None) -> Dict[str, torch.Tensor]:
    """One pass over ``data`` in order: ``{'logits': (n,)}`` plus, with ``store`` (a
    ``source -> PredictionStore`` factory, e.g. :meth:`Trainer.new_store`), the labels,
    weights and group columns the metrics need. Collective under DDP (rows in order)."""
    if isinstance(data, Columns):
        data = ArrayDataAdapter(data, None, None)
    if distributed.uses_ddp(model):
        return distributed.gather_predictions(
            lambda shard: _predict_columns(model, shard, batch_size, cbs, test, store), data,
            equal_batches=model if distributed.is_sharded(model) else None)
    return _predict_columns(model, data, batch_size, cbs, test, store)


def _predict_columns(model, data: DataAdapter, batch_size: int, cbs: Optional[CallbackList],
                     test: bool, store=None) -> Dict[str, torch.Tensor]:
    allocator.tune()  # batches reuse freed memory instead of faulting fresh pages in
    out = store(data, data.num_rows) if store is not None else PredictionStore(
        data.num_rows, labels=False)
    begin, end = ("on_test_batch_begin", "on_test_batch_end") if test else (
        "on_predict_batch_begin", "on_predict_batch_end")
    device = model.device
    policy = mixed_precision.model_policy(model)
    # eval mode shared with concurrent passes in other threads (restored by the last to leave)
    with modes.inference(model, "evaluate" if test else "predict"):
        hooks = cbs is not None and bool(cbs.callbacks)
        with torch.inference_mode():
            for step, batch in enumerate(data.batches(batch_size)):
                size = batch.size
                if hooks:
                    getattr(cbs, begin)(step, {"size": size})
                x = batch.x if device.type == "cpu" else _to_device(batch, device)[0]
                with policy.autocast(device):
                    logits = model(x)
                out.add(check_logits(model, logits.float(), size), batch)
                if hooks:
                    getattr(cbs, end)(step, {"size": size})
    return out.result()


def require_trainer(model) -> Trainer:
    trainer = getattr(model, "trainer", None)
    if trainer is None:
        raise NotCompiledError(
            f"{type(model).__name__} is not compiled: call model.compile(optimizer, loss, "
            f"metrics) before fit/evaluate, e.g. model.compile('adam', 'binary_crossentropy', "
            f"metrics=['auc']).")
    return trainer
