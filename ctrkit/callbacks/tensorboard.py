"""TensorBoard: write the logged scalars (and, optionally, weight histograms) for TensorBoard."""
from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional, Union

from ..errors import CallbackError
from ..registry import CALLBACKS
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


def _refuse(name: str, value: Any, why: str) -> None:
    raise CallbackError(f"TensorBoard({name}={value!r}) is not supported: {why} "
                        f"(docs/porting.md#tensorboard).")


def _scalar(value: Any) -> Optional[float]:
    """``value`` as a float (a Python or numpy number, a one-element tensor or array), or
    None for what is not a number (a string, a list)."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


@CALLBACKS.register("tensorboard")
class TensorBoard(Callback):
    """Write training curves for TensorBoard through ``torch.utils.tensorboard``.

    The layout is Keras 3's: ``<log_dir>/train`` gets ``epoch_<key>`` for every logged key
    (``epoch_loss``, ``epoch_auc``, ...) and ``epoch_learning_rate`` (the rate the epoch ran
    with when an lr callback logged it, else the optimizer's), and ``<log_dir>/validation``
    gets ``epoch_<key>`` for every ``val_<key>``, so TensorBoard draws the training and
    validation curves of one metric in one chart; steps are epoch indices. Each evaluation
    (``fit``'s validation, ``evaluate``) also writes ``evaluation_<key>_vs_iterations`` to the
    validation run, its step the number of training batches so far. With an integer
    ``update_freq`` the training run also gets ``batch_loss`` every that many batches (steps
    count batches across epochs). View with ``tensorboard --logdir <log_dir>``.

    Needs the optional ``tensorboard`` package (``pip install 'ctrkit[tensorboard]'``); it is
    imported when training begins, never by ``import ctrkit``.

    Args:
        log_dir: the folder of the run (created when needed).
        histogram_freq: at epochs 0, N, 2N, ... (Keras's schedule) a histogram of every
            weight, tagged ``<parameter path>/histogram`` (``embeddings/tables/item/weight/
            histogram``, ``dnn/...``); 0 (the default) writes none: tables can be large.
        write_graph: must stay False: torch's graph export (``torch.jit.trace``) is deprecated.
        write_images: must stay False (weights as images are not written).
        write_steps_per_second: also log ``epoch_steps_per_second`` (training steps per second
            of wall time in the epoch) and, with an integer ``update_freq``,
            ``batch_steps_per_second``.
        update_freq: ``'epoch'``, ``'batch'`` (= 1) or a positive number of batches between
            ``batch_loss`` points.
        profile_batch: must stay 0 (no profiling; use ``torch.profiler``).
        embeddings_freq, embeddings_metadata: must stay 0 / None (no projector output).

    Raises:
        CallbackError: a bad ``update_freq`` or ``histogram_freq``; a value other than the
            default for ``write_graph``, ``write_images``, ``profile_batch``,
            ``embeddings_freq`` or ``embeddings_metadata`` (the message names it).
        ImportError: (when training begins) tensorboard is not installed; says how to install.

    Example:
        >>> tb = TensorBoard("runs/din", update_freq=50)
        >>> model.fit(x, y, validation_split=0.1, epochs=5, callbacks=[tb])  # doctest: +SKIP
    """

    rank_zero_only = True  # writes files: rank 0 alone under DDP

    def __init__(self, log_dir: Any = "logs", histogram_freq: int = 0,
                 write_graph: bool = False, write_images: bool = False,
                 write_steps_per_second: bool = False, update_freq: Union[str, int] = "epoch",
                 profile_batch: Any = 0, embeddings_freq: int = 0,
                 embeddings_metadata: Any = None) -> None:
        super().__init__()
        try:
            self.log_dir = os.fspath(log_dir)
        except TypeError as e:
            raise CallbackError(f"TensorBoard(log_dir={log_dir!r}) must be a path.") from e
        self.histogram_freq = check_non_negative_int("TensorBoard", "histogram_freq",
                                                     histogram_freq)
        if update_freq == "batch":  # Keras: every batch
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool)
                                       or not isinstance(update_freq, int) or update_freq < 1):
            raise CallbackError(f"TensorBoard(update_freq={update_freq!r}) must be 'epoch', "
                                f"'batch' or a positive number of batches.")
        if write_graph:
            _refuse("write_graph", write_graph, "torch's graph export for TensorBoard "
                    "(torch.jit.trace) is deprecated, so ctrkit writes no graph; "
                    "model.summary() prints the layers")
        if write_images:
            _refuse("write_images", write_images, "weights are not written as images; "
                    "histogram_freq writes their histograms")
        if profile_batch not in (0, None, (0, 0), [0, 0]):
            _refuse("profile_batch", profile_batch, "the callback does not profile; wrap the "
                    "steps in torch.profiler.profile(on_trace_ready=torch.profiler."
                    "tensorboard_trace_handler(log_dir)) from a callback of your own")
        if embeddings_freq:
            _refuse("embeddings_freq", embeddings_freq, "the embedding projector is not "
                    "written; histogram_freq writes the tables' histograms")
        if embeddings_metadata is not None:
            _refuse("embeddings_metadata", embeddings_metadata, "the embedding projector is "
                    "not written")
        self.update_freq = update_freq
        self.write_steps_per_second = bool(write_steps_per_second)
        self._writers: Dict[str, Any] = {}
        self._batches = 0
        self._epoch_start = 0.0
        self._epoch_steps = 0
        self._batch_start = 0.0
        self._training = False

    def _writer(self, name: str):
        if name not in self._writers:
            self._writers[name] = _summary_writer()(os.path.join(self.log_dir, name))
        return self._writers[name]

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        _summary_writer()  # fail before the first epoch, not after it
        self._batches = 0
        self._training = True

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._epoch_start, self._epoch_steps = time.perf_counter(), 0

    def on_train_batch_begin(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._batches += 1
        self._epoch_steps += 1
        if self.update_freq == "epoch" or self._batches % self.update_freq:
            return
        writer = self._writer("train")
        loss = _scalar((logs or {}).get("loss"))
        if loss is not None:
            writer.add_scalar("batch_loss", loss, self._batches)
        if self.write_steps_per_second:
            seconds = max(time.perf_counter() - self._batch_start, 1e-9)
            writer.add_scalar("batch_steps_per_second", 1.0 / seconds, self._batches)

    def on_test_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        # the evaluation's own keys ('loss', 'auc'); step: training batches so far (Keras's
        # optimizer.iterations)
        for key, value in (logs or {}).items():
            value = _scalar(value)
            if value is not None:
                self._writer("validation").add_scalar(f"evaluation_{key}_vs_iterations", value,
                                                      self._batches)
        if not self._training:  # model.evaluate(callbacks=[...]): nothing else will close them
            self.on_train_end()

    def _learning_rate(self, logs: Dict[str, Any]) -> Optional[float]:
        logged = _scalar(logs.get("learning_rate", logs.get("lr")))
        if logged is not None:
            return logged
        optimizer = getattr(getattr(self.model, "trainer", None), "optimizer", None)
        return None if optimizer is None else float(optimizer.param_groups[0]["lr"])

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        logs = logs or {}
        for key, value in logs.items():
            value = _scalar(value)
            if value is None or key in ("lr", "learning_rate"):
                continue
            if key.startswith("val_"):
                self._writer("validation").add_scalar(f"epoch_{key[4:]}", value, epoch)
            else:
                self._writer("train").add_scalar(f"epoch_{key}", value, epoch)
        lr = self._learning_rate(logs)
        if lr is not None:
            self._writer("train").add_scalar("epoch_learning_rate", lr, epoch)
        if self.write_steps_per_second:
            seconds = max(time.perf_counter() - self._epoch_start, 1e-9)
            self._writer("train").add_scalar("epoch_steps_per_second",
                                             self._epoch_steps / seconds, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._histograms(epoch)
        for w in self._writers.values():
            w.flush()

    def _histograms(self, epoch: int) -> None:
        writer = self._writer("train")
        for name, weight in self.model.named_parameters():
            writer.add_histogram(name.replace(".", "/") + "/histogram",
                                 weight.detach().float().cpu(), epoch)

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        for w in self._writers.values():
            w.close()
        self._writers = {}
        self._training = False
