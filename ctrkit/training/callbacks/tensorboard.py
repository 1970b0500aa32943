"""TensorBoard: write the logged scalars (and, optionally, embedding histograms) for TensorBoard."""
from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional, Union

from ...errors import CallbackError
from ...registry import CALLBACKS
from .base import Callback, check_non_negative_int

INSTALL_HINT = "pip install 'ctrkit[tensorboard]' (or pip install tensorboard)"


def _summary_writer():
    """``torch.utils.tensorboard.SummaryWriter``, imported on first use (the optional extra)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch raises ImportError naming tensorboard when it is absent
        raise ImportError(f"The TensorBoard callback needs the tensorboard package: "
                          f"{INSTALL_HINT}.") from e
    return SummaryWriter


@CALLBACKS.register("tensorboard")
class TensorBoard(Callback):
    """Write training curves for TensorBoard through ``torch.utils.tensorboard``.

    The layout is Keras's: ``<log_dir>/train`` gets ``epoch_<key>`` for every logged key
    (``epoch_loss``, ``epoch_auc``, ``epoch_lr``, ...) and ``<log_dir>/validation`` gets
    ``epoch_<key>`` for every ``val_<key>``, so TensorBoard draws the training and validation
    curves of one metric in one chart. Steps are epoch indices. With an integer
    ``update_freq`` the training writer also gets ``batch_loss`` every that many batches
    (steps count batches across epochs). View with ``tensorboard --logdir <log_dir>``.

    Needs the optional ``tensorboard`` package (``pip install 'ctrkit[tensorboard]'``); it is
    imported when training begins, never by ``import ctrkit``.

    Args:
        log_dir: the folder of the run (created when needed).
        histogram_freq: every that many epochs, a histogram of the weights of every embedding
            table (tagged by module path: ``embeddings/tables/<table>``, and
            ``linear/tables/<table>`` for a wide part's per-id weights); 0 (the default)
            writes none: tables can be large.
        update_freq: ``'epoch'`` or a positive number of batches between ``batch_loss`` points.
        write_steps_per_second: also log ``epoch_steps_per_second`` (training steps per second
            of wall time in the epoch).

    Raises:
        CallbackError: a bad ``update_freq`` or ``histogram_freq``.
        ImportError: (when training begins) tensorboard is not installed; says how to install.

    Example:
        >>> tb = TensorBoard("runs/din", update_freq=50)
        >>> model.fit(x, y, validation_split=0.1, epochs=5, callbacks=[tb])  # doctest: +SKIP
    """

    rank_zero_only = True  # writes files: rank 0 alone under DDP

    def __init__(self, log_dir: Any = "logs", histogram_freq: int = 0,
                 update_freq: Union[str, int] = "epoch",
                 write_steps_per_second: bool = False) -> None:
        super().__init__()
        try:
            self.log_dir = os.fspath(log_dir)
        except TypeError as e:
            raise CallbackError(f"TensorBoard(log_dir={log_dir!r}) must be a path.") from e
        self.histogram_freq = check_non_negative_int("TensorBoard", "histogram_freq",
                                                     histogram_freq)
        if update_freq != "epoch" and (isinstance(update_freq, bool)
                                       or not isinstance(update_freq, int) or update_freq < 1):
            raise CallbackError(f"TensorBoard(update_freq={update_freq!r}) must be 'epoch' or a "
                                f"positive number of batches.")
        self.update_freq = update_freq
        self.write_steps_per_second = bool(write_steps_per_second)
        self._writers: Dict[str, Any] = {}
        self._batches = 0
        self._epoch_start = 0.0
        self._epoch_steps = 0

    def _writer(self, name: str):
        if name not in self._writers:
            self._writers[name] = _summary_writer()(os.path.join(self.log_dir, name))
        return self._writers[name]

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        _summary_writer()  # fail before the first epoch, not after it
        self._batches = 0

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._epoch_start, self._epoch_steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._batches += 1
        self._epoch_steps += 1
        if self.update_freq == "epoch" or self._batches % self.update_freq:
            return
        loss = (logs or {}).get("loss")
        if loss is not None:
            self._writer("train").add_scalar("batch_loss", float(loss), self._batches)

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        for key, value in (logs or {}).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if key.startswith("val_"):
                self._writer("validation").add_scalar(f"epoch_{key[4:]}", float(value), epoch)
            else:
                self._writer("train").add_scalar(f"epoch_{key}", float(value), epoch)
        if self.write_steps_per_second:
            seconds = max(time.perf_counter() - self._epoch_start, 1e-9)
            self._writer("train").add_scalar("epoch_steps_per_second",
                                             self._epoch_steps / seconds, epoch)
        if self.histogram_freq and (epoch + 1) % self.histogram_freq == 0:
            self._histograms(epoch)
        for w in self._writers.values():
            w.flush()

    def _histograms(self, epoch: int) -> None:
        import torch
        writer = self._writer("train")
        for name, module in self.model.named_modules():
            if isinstance(module, torch.nn.Embedding):
                writer.add_histogram(name.replace(".", "/"),  # embeddings/tables/<table>, ...
                                     module.weight.detach().float().cpu(), epoch)

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        for w in self._writers.values():
            w.close()
        self._writers = {}
