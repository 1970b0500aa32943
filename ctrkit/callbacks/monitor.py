"""Monitor: the one place that reads a logged key and decides whether it improved.

EarlyStopping, ModelCheckpoint and ReduceLROnPlateau all watch one key of the epoch logs
(``'val_loss'``, ``'val_auc'``, ...). They derive from :class:`MonitorCallback` (Keras 3's
name), which holds a :class:`Monitor` as ``callback.monitor``, so that ``mode='auto'``,
``min_delta``, ``best`` and the "key was never logged" error behave the same way everywhere.
"""
from __future__ import annotations

import difflib
import math
from typing import Any, Dict, Optional

from ..errors import CallbackError
from ..metrics.base import Metric, metric_direction
from .base import Callback

MODES = ("auto", "min", "max")


class Monitor:
    """Tracks the best value of one logged key.

    Args:
        owner: the callback's class name, used in messages.
        key: the logged key to watch, e.g. ``'val_loss'``.
        mode: ``'min'``, ``'max'`` or ``'auto'`` (the direction the metric registry gives the
            key: auc/gauc up; loss, logloss, mse down).
        min_delta: a change smaller than this is not an improvement (>= 0).

    Raises:
        CallbackError: ``mode`` is not one of min/max/auto, or ``min_delta`` is negative or
            not finite.

    Example:
        >>> m = Monitor("EarlyStopping", "val_loss", "min", 0.0)
        >>> m.reset(); m.update(0.5), m.update(0.6), m.update(0.4)
        (True, False, True)
    """

    def __init__(self, owner: str, key: str, mode: str = "auto", min_delta: float = 0.0) -> None:
        if not isinstance(key, str) or not key:
            raise CallbackError(f"{owner}(monitor=...) must name a logged key such as "
                                f"'val_loss' or 'val_auc', got {key!r}.")
        if mode not in MODES:
            raise CallbackError(f"{owner}(mode={mode!r}) is not one of {list(MODES)}; use "
                                f"'max' when higher is better, 'min' when lower is better.")
        delta = float(min_delta)
        if not (math.isfinite(delta) and delta >= 0):
            raise CallbackError(f"{owner}(min_delta={min_delta!r}) must be a finite number "
                                f">= 0.")
        self.owner, self.key, self.mode, self.min_delta = owner, key, mode, delta
        self.direction: Optional[str] = None
        self.best: Optional[float] = None

    def reset(self) -> None:
        """Forget the best value (call in ``on_train_begin``, so a callback can be reused)."""
        self.direction = None if self.mode == "auto" else self.mode
        self.best = None

    def current(self, logs: Optional[Dict[str, Any]], model=None) -> float:
        """The monitored value in ``logs``.

        Raises:
            CallbackError: the key is not in ``logs`` (lists the keys that are), or
                ``mode='auto'`` cannot tell the key's direction.
        """
        logs = logs or {}
        if self.key not in logs:
            raise CallbackError(self._missing_message(logs))
        if self.direction is None:
            self.direction = self._resolve_direction(model)
        return float(logs[self.key])

    def skipped(self, logs: Optional[Dict[str, Any]], params: Optional[Dict[str, Any]]) -> bool:
        """True on an epoch end where ``fit(validation_freq=N > 1)`` did not validate and the
        watched key is a ``val_*`` key: the callback skips that epoch (nothing to compare)."""
        logs, params = logs or {}, params or {}
        return (self.key.startswith("val_") and self.key not in logs
                and int(params.get("validation_freq", 1) or 1) > 1
                and "val_loss" in (params.get("metrics") or ())  # fit has validation data
                and not any(k.startswith("val_") for k in logs))

    def is_improvement(self, value: float, reference: Optional[float]) -> bool:
        """``value`` beats ``reference`` by more than ``min_delta`` (NaN never improves)."""
        if math.isnan(value):
            return False
        if reference is None:
            return True
        if self.direction == "max":
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def update(self, value: float) -> bool:
        """Record ``value``; return True (and make it the best) when it improves on the best."""
        if self.direction is None:
            self.direction = self.mode if self.mode != "auto" else self._resolve_direction(None)
        if self.is_improvement(value, self.best):
            self.best = value
            return True
        return False

    def state_dict(self) -> Dict[str, Any]:
        return {"direction": self.direction, "best": self.best}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.direction, self.best = state["direction"], state["best"]

    # ------------------------------------------------------------------ internals
    def _resolve_direction(self, model) -> str:
        direction = metric_direction(self.key)
        tasks = getattr(getattr(model, "trainer", None), "tasks", None)
        if direction is None and tasks is not None:  # '<task>_<metric>' of a multi-task fit
            base = self.key[4:] if self.key.startswith("val_") else self.key
            for task in tasks.names:
                if base.startswith(task + "_"):
                    direction = metric_direction(base[len(task) + 1:])
                    break
        if direction is None and model is not None:
            # A Metric object passed to compile() carries its own direction.
            base = self.key[4:] if self.key.startswith("val_") else self.key
            trainer = getattr(model, "trainer", None)
            for m in getattr(trainer, "metrics", ()):
                if isinstance(m, Metric) and m.name == base:
                    direction = m.direction
        if direction not in ("min", "max"):
            raise CallbackError(
                f"{self.owner} cannot tell whether '{self.key}' should go up or down (it is "
                f"not a registered metric); pass mode='max' or mode='min'.")
        return direction

    def _missing_message(self, logs: Dict[str, Any]) -> str:
        keys = list(logs)
        msg = (f"{self.owner} monitors '{self.key}', but fit logged no such key at the end of "
               f"the epoch; the logged keys are {keys}.")
        if self.key.startswith("val_") and not any(k.startswith("val_") for k in keys):
            msg += (" Validation keys (val_*) are logged only when fit gets validation_data "
                    "or validation_split > 0.")
        else:
            close = difflib.get_close_matches(self.key, keys, n=1, cutoff=0.6)
            if close:
                msg += f" Did you mean '{close[0]}'?"
            else:
                msg += " Add the metric to compile(metrics=[...]) or monitor a logged key."
        return msg


class MonitorCallback(Callback):
    """Base of the callbacks that watch one logged key (EarlyStopping, ReduceLROnPlateau,
    ModelCheckpoint): ``self.monitor`` is their :class:`Monitor`, ``best`` its best value.

    Args:
        monitor: the logged key, e.g. ``'val_auc'``; mode: ``'min'``, ``'max'`` or ``'auto'``;
        min_delta: a smaller change is not an improvement.

    Raises:
        CallbackError: a bad key, mode or ``min_delta`` (see :class:`Monitor`).

    Example:
        >>> class Best(MonitorCallback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         value = self.monitored_value(logs)
        ...         if value is not None and self.monitor.update(value):
        ...             print("improved", value)
        >>> cb = Best("val_loss", "min")
        >>> cb.on_epoch_end(0, {"val_loss": 0.5})
        improved 0.5
        >>> cb.best
        0.5
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto",
                 min_delta: float = 0.0) -> None:
        super().__init__()
        self.monitor = Monitor(type(self).__name__, monitor, mode, min_delta)
        self.monitor.reset()

    @property
    def best(self) -> Optional[float]:
        """The best monitored value so far (None before the first); settable, as in Keras."""
        return self.monitor.best

    @best.setter
    def best(self, value: Optional[float]) -> None:
        self.monitor.best = None if value is None else float(value)

    def monitored_value(self, logs: Optional[Dict[str, Any]]) -> Optional[float]:
        """The watched value in this epoch's ``logs``, or None on an epoch that
        ``fit(validation_freq=N)`` did not validate (nothing to compare then).

        Raises:
            CallbackError: the key is missing from ``logs`` (names the logged keys).
        """
        if self.monitor.skipped(logs, self.params):
            return None
        return self.monitor.current(logs, self.model)


__all__ = ["Monitor", "MonitorCallback", "MODES"]
