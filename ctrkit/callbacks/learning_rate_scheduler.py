"""LearningRateScheduler: set the learning rate at the start of each epoch from a function."""
from __future__ import annotations

import inspect
import math
import sys
from typing import Any, Callable, Dict, Optional

from ..errors import CallbackError
from ..registry import CALLBACKS
from .base import Callback
from .learning_rate import get_lr, get_lrs, log_lr, optimizer_of, set_lrs


def _takes_lr(schedule: Callable) -> bool:
    """Whether ``schedule`` accepts ``(epoch, lr)`` rather than just ``(epoch)``."""
    try:
        params = inspect.signature(schedule).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume (epoch, lr)
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


@CALLBACKS.register("learning_rate_scheduler")
class LearningRateScheduler(Callback):
    """At the start of epoch ``e``, set the learning rate to ``schedule(e, current_lr)``.

    ``e`` is the 0-based epoch index (continuing from ``initial_epoch``). A ``schedule`` that
    takes one argument is called as ``schedule(e)``. Every parameter group gets the new rate.
    The rate the epoch ran with is logged as ``learning_rate`` (Keras 3's key) and ``lr``.

    Args:
        schedule: ``f(epoch, lr) -> new_lr`` (or ``f(epoch) -> new_lr``).
        verbose: 1 prints the rate at the start of every epoch.

    Raises:
        CallbackError: ``schedule`` is not callable, or returns something that is not a
            finite number >= 0 (the message names the epoch and the value).

    Example:
        >>> halve = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch >= 2 else lr)
        >>> model.fit(x, y, epochs=5, callbacks=[halve])  # doctest: +SKIP
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise CallbackError(f"LearningRateScheduler(schedule={schedule!r}) must be a "
                                f"function f(epoch, lr) -> new learning rate.")
        self.schedule = schedule
        self.verbose = int(verbose)
        self._with_lr = _takes_lr(schedule)

    def on_train_begin(self, logs=None) -> None:
        optimizer_of(self.model, type(self).__name__)  # fail before training, not after it

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        optimizer = optimizer_of(self.model, type(self).__name__)
        lr = get_lr(optimizer)
        new = self.schedule(epoch, lr) if self._with_lr else self.schedule(epoch)
        try:
            value = float(new)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(new, bool) or not math.isfinite(value) or value < 0:
            raise CallbackError(f"LearningRateScheduler: schedule({epoch}, {lr!r}) returned "
                                f"{new!r}; it must return a finite learning rate >= 0.")
        set_lrs(optimizer, [value] * len(get_lrs(optimizer)))
        if self.verbose:
            sys.stdout.write(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate "
                             f"to {value}.\n")

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if logs is not None:
            log_lr(logs, optimizer_of(self.model, type(self).__name__))
