"""ModelCheckpoint: save the model (or its weights) every epoch or every N batches, atomically."""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Union

import torch

from ..errors import CallbackError
from ..persistence import save_plain
from ..registry import CALLBACKS
from ..strategies import is_rank_zero
from .base import Callback, check_non_negative_int  # noqa: F401  (Callback: round-2 name)
from .monitor import Monitor, MonitorCallback  # noqa: F401  (Monitor: round-2 name)

#: the ``format`` tag of the dict written for a model without ``.save``.
CHECKPOINT_FORMAT = "ctrkit-checkpoint"


def _cpu_state(model) -> Optional[Dict[str, torch.Tensor]]:
    """The weights on the CPU; for sharded tables gathered (every rank; None but on rank 0)."""
    from ..strategies import model_state
    state = model_state(model)
    return None if state is None else {k: v.detach().cpu().clone() for k, v in state.items()}


def _checkpoint_dict(model, epochs_done: int, logs: Dict[str, Any]) -> Dict[str, Any]:
    """What is saved for a model without ``.save`` (any ``nn.Module``): weights, optimizer
    state, epochs completed and logs, as plain data (``torch.load(weights_only=True)`` reads it)."""
    trainer = getattr(model, "trainer", None)
    optimizer = getattr(trainer, "optimizer", None)
    return {"format": CHECKPOINT_FORMAT, "state_dict": _cpu_state(model),
            "optimizer_state_dict": None if optimizer is None else optimizer.state_dict(),
            "epoch": int(epochs_done),
            "logs": {k: v for k, v in logs.items() if isinstance(v, (int, float, str, bool))},
            "model": getattr(model, "registered_name", None),
            "class": f"{type(model).__module__}.{type(model).__qualname__}"}


@CALLBACKS.register("model_checkpoint")
class ModelCheckpoint(MonitorCallback):
    """Save the model every epoch (or every ``save_freq`` batches), or only when ``monitor``
    improves.

    ``filepath`` may hold ``str.format`` placeholders: ``{epoch}`` (1-based, as in Keras),
    ``{batch}`` (1-based within the epoch; only with an integer ``save_freq``) and any logged
    key, e.g. ``'ckpt/din-{epoch:02d}-{val_auc:.4f}.pt'``. Files are written to a temp file in
    the same folder and renamed, so a crash never leaves a half-written file.

    What is written:

    - ``save_weights_only=True``: ``model.state_dict()`` (CPU tensors); reload with
      ``model.load_state_dict(torch.load(path, weights_only=True))``.
    - ``save_weights_only=False``: ``model.save(path)``, one self-describing file that
      ``ctrkit.load(path)`` turns back into the model (hyperparameters, features, encoders,
      weights). A model without ``save`` (any ``nn.Module``) gets a dict instead:
      ``{'format': 'ctrkit-checkpoint', 'state_dict', 'optimizer_state_dict', 'epoch'
      (epochs completed), 'logs', 'model', 'class'}``. For an exact resume after a crash
      (optimizer state, RNG, epoch) use ``BackupAndRestore``.

    Both are plain data and tensors only, never a pickle of the model object.

    Args:
        filepath: where to save (``str.format`` template or plain path).
        monitor: logged key deciding "best" when ``save_best_only`` (with an integer
            ``save_freq``, a key of the batch logs, i.e. ``'loss'``).
        verbose: 1 prints a line per decision (Keras's messages).
        save_best_only: write only when ``monitor`` improves (never on other epochs).
        save_weights_only: write the state dict only (see above).
        mode: ``'min'``, ``'max'`` or ``'auto'`` (direction from the metric registry).
        save_freq: ``'epoch'`` (at every epoch end) or a positive integer: save after every
            that many training batches (counted across epochs).
        initial_value_threshold: the initial "best" value with ``save_best_only``: nothing
            is written until ``monitor`` beats it.
        period: save at every ``period``-th epoch end only (DeepCTR-Torch's and old Keras's
            argument; with an integer ``save_freq`` it must stay 1).

    Attributes:
        saved: the paths written during the last ``fit``, in order.
        best: the best monitored value (``save_best_only``).

    Raises:
        CallbackError: a bad ``save_freq``/``period``/``initial_value_threshold``; at the first
            save, ``filepath`` names a key that is not logged (the message lists the keys),
            or ``monitor`` is not logged (``save_best_only``).

    Example:
        >>> ckpt = ModelCheckpoint("best.pt", monitor="val_auc", save_best_only=True)
        >>> model.fit(x, y, validation_split=0.2, epochs=5, callbacks=[ckpt])  # doctest: +SKIP
    """

    rank_zero_only = True  # prints/writes files: rank 0 alone under DDP
    gathers_model = True   # ...but with sharded tables every rank sends its shards to rank 0

    def __init__(self, filepath: Any, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq: Union[str, int] = "epoch",
                 initial_value_threshold: Optional[float] = None, period: int = 1) -> None:
        super().__init__(monitor, mode, 0.0)
        try:
            self.filepath = os.fspath(filepath)
        except TypeError as e:
            raise CallbackError(f"ModelCheckpoint(filepath={filepath!r}) must be a path or a "
                                f"str.format template such as 'ckpt-{{epoch:02d}}.pt'.") from e
        self.verbose = int(verbose)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise CallbackError(f"Unrecognized save_freq: ModelCheckpoint(save_freq="
                                f"{save_freq!r}) must be 'epoch' or a positive number of "
                                f"batches.")
        self.save_freq = save_freq
        self.period = check_non_negative_int("ModelCheckpoint", "period", period)
        if self.period < 1 or (save_freq != "epoch" and self.period != 1):
            raise CallbackError(f"ModelCheckpoint(period={period!r}) must be >= 1, and 1 when "
                                f"save_freq is a number of batches.")
        if initial_value_threshold is not None:
            try:
                initial_value_threshold = float(initial_value_threshold)
            except (TypeError, ValueError) as e:
                raise CallbackError(f"ModelCheckpoint(initial_value_threshold="
                                    f"{initial_value_threshold!r}) must be a number.") from e
        self.initial_value_threshold = initial_value_threshold
        self.saved: List[str] = []
        self._reset_counters()


    def _reset_counters(self) -> None:
        self._epoch = 0
        self._batches_since_save = 0
        self._epochs_since_save = 0

    def on_train_begin(self, logs=None) -> None:
        self.monitor.reset()
        self.monitor.best = self.initial_value_threshold
        self.saved = []
        self._reset_counters()

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._epoch, batch, logs or {})

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.save_freq != "epoch":
            return
        self._epochs_since_save += 1
        if self._epochs_since_save < self.period:
            return
        self._epochs_since_save = 0
        self._save(epoch, None, logs or {})

    def _save(self, epoch: int, batch: Optional[int], logs: Dict[str, Any]) -> None:
        path = self.format_path(epoch, logs, batch)
        if self.save_best_only:
            previous = self.monitor.best
            value = self.monitored_value(logs) if batch is None else \
                self.monitor.current(logs, self.model)
            if value is None:
                return  # fit(validation_freq=N): this epoch has no val_* value to compare
            if not self.monitor.update(value):
                if self.verbose and is_rank_zero():
                    sys.stdout.write(f"Epoch {epoch + 1}: {self.monitor.key} did not improve "
                                     f"from {_fmt(previous)}\n")
                return
            if self.verbose and is_rank_zero():
                sys.stdout.write(f"Epoch {epoch + 1}: {self.monitor.key} improved from "
                                 f"{_fmt(previous)} to {value:.5f}, saving model to {path}\n")
        elif self.verbose and is_rank_zero():
            sys.stdout.write(f"Epoch {epoch + 1}: saving model to {path}\n")
        self._write(path, epoch if batch is None else epoch - 1, logs)
        self.saved.append(path)

    def format_path(self, epoch: int, logs: Dict[str, Any], batch: Optional[int] = None) -> str:
        """``filepath`` with ``{epoch}`` (1-based), ``{batch}`` (1-based, batch-level saves
        only) and the logged values filled in."""
        keys = dict(logs)
        keys["epoch"] = epoch + 1
        if batch is not None:
            keys["batch"] = batch + 1
        try:
            return self.filepath.format(**keys)
        except KeyError as e:
            hint = (" {batch} is filled only when save_freq is a number of batches."
                    if e.args[0] == "batch" else "")
            raise CallbackError(
                f"ModelCheckpoint filepath {self.filepath!r} names {{{e.args[0]}}}, which fit "
                f"does not log; available placeholders are "
                f"{['epoch'] + (['batch'] if batch is not None else [])} + {list(logs)}.{hint}"
            ) from e
        except (IndexError, ValueError) as e:
            raise CallbackError(f"ModelCheckpoint filepath {self.filepath!r} is not a valid "
                                f"str.format template ({e}); use named placeholders such as "
                                f"{{epoch:02d}} or {{val_auc:.4f}}.") from e

    def _write(self, path: str, epoch: int, logs: Dict[str, Any]) -> None:
        """Write one checkpoint; every branch is atomic (temp file, then rename). ``epoch`` is
        the last completed epoch."""
        if self.save_weights_only:
            state = _cpu_state(self.model)
            if state is not None:
                save_plain(state, path)
        elif callable(getattr(self.model, "save", None)):
            self.model.save(path)  # one self-describing file: ctrkit.load(path) rebuilds it
        else:
            save_plain(_checkpoint_dict(self.model, epoch + 1, logs), path)

    def state_dict(self) -> Dict[str, Any]:
        return {"monitor": self.monitor.state_dict(), "saved": list(self.saved),
                "batches_since_save": self._batches_since_save,
                "epochs_since_save": self._epochs_since_save}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.monitor.load_state_dict(state["monitor"])
        self.saved = list(state["saved"])
        self._batches_since_save = int(state.get("batches_since_save", 0))
        self._epochs_since_save = int(state.get("epochs_since_save", 0))


def _fmt(value: Optional[float]) -> str:
    return "None" if value is None else f"{value:.5f}"
