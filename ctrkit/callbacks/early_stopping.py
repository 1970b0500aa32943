"""EarlyStopping: stop when a monitored key has stopped improving."""
from __future__ import annotations

import sys
from typing import Any, Dict, Optional

import torch

from ..registry import CALLBACKS
from .base import Callback, check_non_negative_int  # noqa: F401  (Callback: round-2 name)
from .monitor import Monitor, MonitorCallback  # noqa: F401  (Monitor: round-2 name)


def snapshot(model) -> Dict[str, torch.Tensor]:
    """A detached copy of the model's parameters and buffers."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@CALLBACKS.register("early_stopping")
class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    An epoch improves when the monitored value beats the best so far by more than
    ``min_delta``. After ``patience`` epochs in a row without improvement (so ``patience=0``
    stops at the first epoch that does not improve) it sets ``model.stop_training``.

    Args:
        monitor: logged key to watch (``'val_loss'``, ``'val_auc'``, ``'loss'``, ...).
        min_delta: smallest change that counts as an improvement (>= 0).
        patience: epochs without improvement before stopping.
        verbose: 1 prints a line when it stops or restores weights.
        mode: ``'min'``, ``'max'`` or ``'auto'`` (direction from the metric registry).
        baseline: the value to reach (Keras 3's semantics): while the monitored value has not
            beaten it, the epochs count towards ``patience`` even when they improve on each
            other; training never stops at epoch 0, and ``restore_best_weights`` restores the
            best epoch even if none beat the baseline.
        restore_best_weights: at the end of training, load the weights of the best epoch
            (whether or not training stopped early).
        start_from_epoch: epochs before this one are ignored (warm-up).

    Attributes:
        stopped_epoch: the epoch at which it stopped training, or 0 if it did not (as in
            Keras; it never stops at epoch 0).
        best, best_epoch: the best monitored value (None before the first epoch it
            watched; settable, as in Keras) and its epoch (0 until then).

    Raises:
        CallbackError: bad arguments at construction; at the end of the first epoch, a
            ``monitor`` key that fit does not log (the message lists the keys it does).

    Example:
        >>> stop = EarlyStopping(monitor="val_auc", patience=2, restore_best_weights=True)
        >>> model.fit(x, y, validation_split=0.2, epochs=50, callbacks=[stop])  # doctest: +SKIP
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = check_non_negative_int("EarlyStopping", "patience", patience)
        self.start_from_epoch = check_non_negative_int("EarlyStopping", "start_from_epoch",
                                                  start_from_epoch)
        self.baseline = None if baseline is None else float(baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = int(verbose)
        self._reset()

    def _reset(self) -> None:
        self.monitor.reset()
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights: Optional[Dict[str, torch.Tensor]] = None


    def on_train_begin(self, logs=None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        value = self.monitored_value(logs)
        if value is None:  # fit(validation_freq=N): no val_* this epoch
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # something to restore even if no epoch ever improves
            self.best_weights = snapshot(self.model)
        self.wait += 1
        if self.monitor.update(value):
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = snapshot(self.model)
            if self.baseline is None or self.monitor.is_improvement(value, self.baseline):
                self.wait = 0
                return
        # wait >= 1 here, so patience=0 stops at the first epoch that does not improve; as in
        # Keras 3, never at epoch 0 (an epoch-0 value that misses the baseline does not stop).
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None) -> None:
        if self.stopped_epoch and self.verbose:
            # 4 decimals, as the epoch lines print the same value
            best = "none" if self.best is None else f"{self.best:.4f}"
            at = "" if self.best is None else f" at epoch {self.best_epoch + 1}"
            what = ("did not improve" if self.baseline is None else
                    f"did not beat the baseline {self.baseline:.4f}")
            sys.stdout.write(f"Epoch {self.stopped_epoch + 1}: early stopping: "
                             f"{self.monitor.key} {what} for {self.wait} "
                             f"epoch{'s' if self.wait != 1 else ''} "
                             f"(patience {self.patience}); best {best}{at}.\n")
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
            if self.verbose:
                sys.stdout.write(f"Restored the weights of epoch "
                                 f"{None if self.best is None else self.best_epoch + 1}.\n")

    def state_dict(self) -> Dict[str, Any]:
        return {"monitor": self.monitor.state_dict(), "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_epoch": self.best_epoch,
                "best_weights": self.best_weights}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.monitor.load_state_dict(state["monitor"])
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best_epoch, self.best_weights = state["best_epoch"], state["best_weights"]
