"""ProgbarLogger: prints progress. verbose=0 prints nothing at all."""
from __future__ import annotations

import sys
import time
from typing import Any, Dict, Optional

from .base import Callback


def format_logs(logs: Dict[str, Any]) -> str:
    return " - ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
                      for k, v in logs.items())


class ProgbarLogger(Callback):
    """verbose=1: a progress bar with rate and ETA on a terminal (plain per-epoch lines when the
    stream is not a TTY); verbose=2: one line per epoch; verbose=0: silent.

    Args:
        verbose: 0, 1 or 2.
        stream: where to write (default ``sys.stdout``).
    """

    def __init__(self, verbose: int = 1, stream=None) -> None:
        super().__init__()
        self.verbose = int(verbose)
        self.stream = stream

    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def _write(self, text: str) -> None:
        out = self._out()
        out.write(text)
        out.flush()

    def on_train_begin(self, logs=None) -> None:
        if self.verbose:
            p = self.params
            val = p.get("val_samples") or 0
            self._write(f"Train on {p.get('samples')} samples, validate on {val} samples, "
                        f"{p.get('steps')} steps per epoch\n")

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._t0 = time.perf_counter()
        self._epoch = epoch
        self._seen = 0
        if self.verbose:
            self._write(f"Epoch {epoch + 1}/{self.params.get('epochs')}\n")

    def _tty(self) -> bool:
        return self.verbose == 1 and getattr(self._out(), "isatty", lambda: False)()

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if not self._tty():
            return
        steps = self.params.get("steps") or 1
        done = batch + 1
        elapsed = time.perf_counter() - self._t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (steps - done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(width * done / steps)
        bar = "=" * max(filled - 1, 0) + (">" if filled < width else "=") + "." * (width - filled)
        loss = (logs or {}).get("loss")
        self._write(f"\r{done}/{steps} [{bar}] {rate:.1f} steps/s - ETA {eta:.0f}s"
                    + (f" - loss: {loss:.4f}" if loss is not None else ""))

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if not self.verbose:
            return
        elapsed = time.perf_counter() - self._t0
        prefix = "\r" if self._tty() else ""
        end = "\n" if not self._tty() else "\n"
        self._write(f"{prefix}{elapsed:.0f}s - {format_logs(logs or {})}{end}")
