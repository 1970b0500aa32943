"""ProgbarLogger: prints progress. verbose=0 prints nothing at all."""
from __future__ import annotations

import sys
import time
from typing import Any, Dict, Optional

from ..registry import CALLBACKS
from .base import Callback


def format_logs(logs: Dict[str, Any]) -> str:
    """``key: value - ...``; ``lr`` is left out when it repeats ``learning_rate`` (the lr
    callbacks log both names)."""
    shown = {k: v for k, v in logs.items()
             if not (k == "lr" and "learning_rate" in logs and logs["learning_rate"] == v)}
    return " - ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
                      for k, v in shown.items())


@CALLBACKS.register("progbar_logger")
class ProgbarLogger(Callback):
    """Prints training progress to ``stream`` (default: ``sys.stdout`` at call time).

    - verbose=1 on a terminal: ``Epoch e/E``, then a progress bar redrawn in place with the
      rate (steps/s) and the ETA, ending with the epoch's logs.
    - verbose=1 when the stream is not a TTY (a log file, a notebook capture): a header line,
      then one plain line per epoch.
    - verbose=2: exactly one line per epoch, ``Epoch e/E - 1.2s - loss: ... - val_auc: ...``.
    - verbose=0: nothing at all (``fit`` does not even add this callback).

    Args:
        verbose: 0, 1 or 2.
        stream: where to write.
        interval: least seconds between two redraws of the bar (the last step always draws).

    Example:
        >>> import ctrkit
        >>> from ctrkit.datasets import make_synthetic
        >>> x, y, features = make_synthetic(n_rows=128, maxlen=4, embedding_dim=4)
        >>> model = ctrkit.build("base", features)
        >>> model.compile("adam")
        >>> _ = model.fit(x, y, batch_size=64, epochs=2, verbose=2)   # adds ProgbarLogger(2)
        Epoch 1/2 - ...s - loss: ...
        Epoch 2/2 - ...s - loss: ...
    """

    rank_zero_only = True  # prints/writes files: rank 0 alone under DDP

    def __init__(self, verbose: int = 1, stream=None, interval: float = 0.1) -> None:
        super().__init__()
        self.verbose = int(verbose)
        self.stream = stream
        self.interval = float(interval)
        self._tty = False
        self._t0 = 0.0
        self._last_draw = 0.0
        self._done = 0
        self._drawn = 0

    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def _write(self, text: str) -> None:
        out = self._out()
        out.write(text)
        out.flush()

    def on_train_begin(self, logs=None) -> None:
        if self.verbose == 1:
            p = self.params
            samples = p.get("samples")
            steps = p.get("steps")
            # an iterable of batches without a length has no row or step count (as Keras's
            # "Unknown"); never print a made-up one
            self._write(f"Train on {'an unknown number of' if samples is None else samples} "
                        f"samples, validate on {p.get('val_samples') or 0} samples, "
                        f"{'an unknown number of' if steps is None else steps} steps per "
                        f"epoch\n")

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._t0 = time.perf_counter()
        self._last_draw = float("-inf")  # the first step always draws
        self._done = self._drawn = 0
        self._tty = self.verbose == 1 and bool(getattr(self._out(), "isatty", lambda: False)())
        if self._tty:
            self._write(f"Epoch {epoch + 1}/{self.params.get('epochs')}\n")

    def _bar(self, done: int, steps: int) -> str:
        width = 30
        filled = min(int(width * done / max(steps, 1)), width)
        arrow = ">" if filled < width else "="
        return "=" * max(filled - 1, 0) + (arrow if filled else "") + "." * (width - filled)

    def _draw(self, text: str) -> None:
        # Pad with spaces so a shorter line fully covers the previous one.
        self._write("\r" + text + " " * max(self._drawn - len(text), 0))
        self._drawn = len(text)

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if not self._tty:
            return
        steps = self.params.get("steps")  # None: an iterable of unknown length
        self._done = done = batch + 1
        now = time.perf_counter()
        if (steps is None or done < steps) and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        elapsed = now - self._t0
        rate = done / elapsed if elapsed > 0 else 0.0
        loss = (logs or {}).get("loss")
        tail = f" - loss: {loss:.4f}" if loss is not None else ""
        if steps is None:  # a count, no bar and no ETA (Keras prints "n/Unknown")
            self._draw(f"{done}/Unknown {elapsed:.0f}s {rate:.1f} steps/s{tail}")
            return
        eta = (steps - done) / rate if rate > 0 else 0.0
        self._draw(f"{done}/{steps} [{self._bar(done, steps)}] {rate:.1f} steps/s - "
                   f"ETA {eta:.0f}s" + tail)

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if not self.verbose:
            return
        elapsed = time.perf_counter() - self._t0
        if self._tty:
            # the epoch's length is known once it is over (an iterable of unknown length)
            steps = self.params.get("steps") or self._done
            rate = self._done / elapsed if elapsed > 0 else 0.0
            self._draw(f"{self._done}/{steps} [{self._bar(self._done, steps)}] "
                       f"{elapsed:.1f}s {rate:.1f} steps/s - {format_logs(logs or {})}")
            self._write("\n")
        else:
            self._write(f"Epoch {epoch + 1}/{self.params.get('epochs')} - {elapsed:.1f}s - "
                        f"{format_logs(logs or {})}\n")
