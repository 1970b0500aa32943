"""TerminateOnNaN: stop training as soon as a batch loss is NaN or infinite."""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict, Optional

from ..errors import TrainingError
from ..registry import CALLBACKS
from .base import Callback


@CALLBACKS.register("terminate_on_nan")
class TerminateOnNaN(Callback):
    """Stop training at the first training batch whose loss is NaN or inf.

    By default it sets ``model.stop_training``: the epoch in progress ends at that batch (its
    logs are still computed and validation still runs, so History shows the NaN), then ``fit``
    returns after every callback's ``on_train_end``. A ``RuntimeWarning`` says where it
    happened. With ``raise_error=True`` (Keras 3) it raises :class:`~ctrkit.errors.TrainingError`
    (a ``RuntimeError``) at once instead: no further hook runs, so a ``BackupAndRestore``
    keeps its last backup.

    Args:
        raise_error: raise instead of stopping gracefully.

    Attributes:
        stopped_epoch, stopped_batch: where the non-finite loss appeared, or None.

    Example:
        >>> model.fit(x, y, epochs=10, callbacks=[TerminateOnNaN()])  # doctest: +SKIP
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = bool(raise_error)
        self.stopped_epoch: Optional[int] = None
        self.stopped_batch: Optional[int] = None
        self._epoch = 0

    def on_train_begin(self, logs=None) -> None:
        self.stopped_epoch = self.stopped_batch = None

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.stopped_epoch, self.stopped_batch = self._epoch, batch
        if self.raise_error:
            raise TrainingError(f"TerminateOnNaN: the loss of batch {batch} in epoch "
                                f"{self._epoch} is {loss}; training stopped at once "
                                f"(raise_error=True).")
        self.model.stop_training = True
        warnings.warn(f"TerminateOnNaN: the loss of batch {batch} in epoch {self._epoch} is "
                      f"{loss}; training stopped.", RuntimeWarning, stacklevel=2)
