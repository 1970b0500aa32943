"""CSVLogger: one CSV row per epoch, the same numbers History records."""
from __future__ import annotations

import csv
import os
from typing import Any, Dict, List, Optional

from ..errors import CallbackError
from ..registry import CALLBACKS
from .base import Callback


def _cell(value: Any) -> str:
    # repr of a Python float round-trips exactly, so float(cell) == the logged value.
    if isinstance(value, bool) or value is None:
        return str(value)
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


@CALLBACKS.register("csv_logger")
class CSVLogger(Callback):
    """Write the epoch logs to a CSV file: a header ``epoch,<keys>`` and one row per epoch.

    The columns are ``epoch`` (0-based, as ``History.epoch``) followed by the keys of the first
    epoch's logs in logged order, then any key ``fit`` logs later (the ``val_*`` keys with
    ``validation_freq > 1``); a key missing from an epoch is written as ``NA``.
    Each row is written and flushed at its epoch's end, so the file survives a crash.
    Values are written with ``repr``, so ``float(cell)`` equals the logged value exactly.

    Args:
        filename: the CSV path (its folder is created if needed).
        separator: the field separator.
        append: add rows to an existing file (its header must then match) instead of
            overwriting it.

    Raises:
        CallbackError: ``append=True`` and the existing file's header differs from the keys
            this run logs.

    Example:
        >>> model.fit(x, y, epochs=3, callbacks=[CSVLogger("log.csv")])  # doctest: +SKIP
    """

    rank_zero_only = True  # prints/writes files: rank 0 alone under DDP

    def __init__(self, filename: Any, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename = os.fspath(filename)
        if not isinstance(separator, str) or len(separator) != 1:
            raise CallbackError(f"CSVLogger(separator={separator!r}) must be one character.")
        self.separator = separator
        self.append = bool(append)
        self.keys: Optional[List[str]] = None

    def _existing_header(self) -> Optional[List[str]]:
        if not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0:
            return None
        with open(self.filename, newline="") as f:
            return next(csv.reader(f, delimiter=self.separator), None)

    def on_train_begin(self, logs=None) -> None:
        self.keys = None
        folder = os.path.dirname(os.path.abspath(self.filename))
        os.makedirs(folder, exist_ok=True)
        if not self.append:
            open(self.filename, "w").close()

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        logs = logs or {}
        rows = []
        if self.keys is None:
            # fit(validation_freq=N > 1) logs no val_* keys at the first epoch: take every key
            # fit will log (params['metrics']), so that validation gets its columns.
            self.keys = list(logs) + [k for k in (self.params or {}).get("metrics") or ()
                                      if k not in logs]
            header = ["epoch"] + self.keys
            existing = self._existing_header()
            if existing is None:
                rows.append(header)
            elif existing != header:
                raise CallbackError(
                    f"CSVLogger(append=True): {self.filename} has columns {existing}, but this "
                    f"run logs {header}; write to a new file or use append=False.")
        rows.append([str(epoch)] + [_cell(logs[k]) if k in logs else "NA" for k in self.keys])
        with open(self.filename, "a", newline="") as f:
            csv.writer(f, delimiter=self.separator).writerows(rows)
