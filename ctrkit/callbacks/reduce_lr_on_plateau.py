"""ReduceLROnPlateau: lower the learning rate when a monitored key stops improving."""
from __future__ import annotations

import math
import sys
from typing import Any, Dict, Optional

from ..errors import CallbackError
from ..registry import CALLBACKS
from .base import Callback, check_non_negative_int  # noqa: F401  (Callback: round-2 name)
from .learning_rate import get_lrs, log_lr, optimizer_of, set_lrs
from .monitor import Monitor, MonitorCallback  # noqa: F401  (Monitor: round-2 name)


@CALLBACKS.register("reduce_lr_on_plateau")
class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    Every parameter group of the optimizer ``compile`` built is scaled, and never goes below
    ``min_lr``. After a reduction, ``cooldown`` epochs pass before epochs count towards
    ``patience`` again. The learning rate the epoch ran with is logged as ``learning_rate``
    (Keras 3's key) and ``lr`` (put CSVLogger after this callback in the list to record it).

    Args:
        monitor: logged key to watch.
        factor: new_lr = lr * factor, with 0 < factor < 1.
        patience: epochs without improvement before a reduction.
        verbose: 1 prints a line per reduction.
        mode: ``'min'``, ``'max'`` or ``'auto'`` (direction from the metric registry).
        min_delta: smallest change that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound of the learning rate.

    Raises:
        CallbackError: bad arguments at construction; a ``monitor`` key that fit does not log,
            at the end of the first epoch (the message lists the keys it does).

    Example:
        >>> plateau = ReduceLROnPlateau("val_loss", factor=0.5, patience=1, min_lr=1e-5)
        >>> model.fit(x, y, validation_split=0.2, epochs=20, callbacks=[plateau])  # doctest: +SKIP
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0) -> None:
        super().__init__(monitor, mode, min_delta)
        if not (0.0 < float(factor) < 1.0):
            raise CallbackError(f"ReduceLROnPlateau(factor={factor!r}) must lie in (0, 1): the "
                                f"learning rate is multiplied by it.")
        if not (math.isfinite(float(min_lr)) and float(min_lr) >= 0):
            raise CallbackError(f"ReduceLROnPlateau(min_lr={min_lr!r}) must be a number >= 0.")
        self.factor = float(factor)
        self.patience = check_non_negative_int("ReduceLROnPlateau", "patience", patience)
        self.cooldown = check_non_negative_int("ReduceLROnPlateau", "cooldown", cooldown)
        self.min_lr = float(min_lr)
        self.verbose = int(verbose)
        self._reset()

    def _reset(self) -> None:
        self.monitor.reset()
        self.wait = 0
        self.cooldown_counter = 0


    def on_train_begin(self, logs=None) -> None:
        self._reset()
        optimizer_of(self.model, type(self).__name__)  # fail before training, not after it

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        logs = logs if logs is not None else {}
        optimizer = optimizer_of(self.model, type(self).__name__)
        value = self.monitored_value(logs)
        log_lr(logs, optimizer)
        if value is None:  # fit(validation_freq=N): no val_* this epoch
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor.update(value):
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            old = get_lrs(optimizer)
            new = [max(lr * self.factor, self.min_lr) if lr > self.min_lr else lr for lr in old]
            if new != old:
                set_lrs(optimizer, new)
                if self.verbose:
                    sys.stdout.write(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                                     f"rate to {new[0]}.\n")
            self.cooldown_counter = self.cooldown
            self.wait = 0

    def state_dict(self) -> Dict[str, Any]:
        return {"monitor": self.monitor.state_dict(), "wait": self.wait,
                "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.monitor.load_state_dict(state["monitor"])
        self.wait, self.cooldown_counter = state["wait"], state["cooldown_counter"]
