"""ModelCheckpoint: save the model (or its weights) at the end of epochs, atomically."""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Dict, List, Optional

import torch

from ...errors import CallbackError
from ...persistence import save_plain
from ...registry import CALLBACKS
from ..distributed import is_rank_zero
from .base import Callback
from .monitor import Monitor

def _cpu_state(model) -> Optional[Dict[str, torch.Tensor]]:
    """The weights on the CPU; for sharded tables gathered (every rank; None but on rank 0)."""
    from ..distributed import model_state
    state = model_state(model)
    return None if state is None else {k: v.detach().cpu().clone() for k, v in state.items()}


@CALLBACKS.register("model_checkpoint")
class ModelCheckpoint(Callback):
    """Save the model at the end of every epoch, or only when ``monitor`` improves.

    ``filepath`` may hold ``str.format`` placeholders: ``{epoch}`` (1-based, as in Keras) and
    any logged key, e.g. ``'ckpt/din-{epoch:02d}-{val_auc:.4f}.pt'``. Files are written to a
    temp file in the same folder and renamed, so a crash never leaves a half-written file.

    What is written:

    - ``save_weights_only=True``: ``model.state_dict()`` (CPU tensors); reload with
      ``model.load_state_dict(torch.load(path, weights_only=True))``.
    - ``save_weights_only=False``: ``model.save(path)``, one self-describing file that
      ``ctrkit.load(path)`` turns back into the model (hyperparameters, features, encoders,
      weights). For an exact resume after a crash (optimizer state, RNG, epoch) use
      ``BackupAndRestore``.

    Both are plain data and tensors only, never a pickle of the model object.

    Args:
        filepath: where to save (``str.format`` template or plain path).
        monitor: logged key deciding "best" when ``save_best_only``.
        verbose: 1 prints a line per file written.
        save_best_only: write only when ``monitor`` improves (never on other epochs).
        save_weights_only: write the state dict only (see above).
        mode: ``'min'``, ``'max'`` or ``'auto'`` (direction from the metric registry).

    Attributes:
        saved: the paths written during the last ``fit``, in order.
        best: the best monitored value (``save_best_only``).

    Raises:
        CallbackError: ``filepath`` names a key that is not logged (the message lists the
            keys), or ``monitor`` is not logged (``save_best_only``), at the first epoch end.

    Example:
        >>> ckpt = ModelCheckpoint("best.pt", monitor="val_auc", save_best_only=True)
        >>> model.fit(x, y, validation_split=0.2, epochs=5, callbacks=[ckpt])  # doctest: +SKIP
    """

    rank_zero_only = True  # prints/writes files: rank 0 alone under DDP
    gathers_model = True   # ...but with sharded tables every rank sends its shards to rank 0

    def __init__(self, filepath: Any, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto") -> None:
        super().__init__()
        try:
            self.filepath = os.fspath(filepath)
        except TypeError as e:
            raise CallbackError(f"ModelCheckpoint(filepath={filepath!r}) must be a path or a "
                                f"str.format template such as 'ckpt-{{epoch:02d}}.pt'.") from e
        self.monitor = Monitor(type(self).__name__, monitor, mode, 0.0)
        self.verbose = int(verbose)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.saved: List[str] = []

    @property
    def best(self) -> Optional[float]:
        return self.monitor.best

    def on_train_begin(self, logs=None) -> None:
        self.monitor.reset()
        self.saved = []

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        logs = logs or {}
        if self.save_best_only:
            value = self.monitor.current(logs, self.model)
            if not self.monitor.update(value):
                return
        path = self.format_path(epoch, logs)
        self._write(path, epoch, logs)
        self.saved.append(path)
        if self.verbose and is_rank_zero():
            sys.stdout.write(f"Epoch {epoch + 1}: saved {path}\n")

    def format_path(self, epoch: int, logs: Dict[str, Any]) -> str:
        """``filepath`` with ``{epoch}`` (1-based) and the logged values filled in."""
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as e:
            raise CallbackError(
                f"ModelCheckpoint filepath {self.filepath!r} names {{{e.args[0]}}}, which fit "
                f"does not log; available placeholders are ['epoch'] + {list(logs)}.") from e
        except (IndexError, ValueError) as e:
            raise CallbackError(f"ModelCheckpoint filepath {self.filepath!r} is not a valid "
                                f"str.format template ({e}); use named placeholders such as "
                                f"{{epoch:02d}} or {{val_auc:.4f}}.") from e

    def _write(self, path: str, epoch: int, logs: Dict[str, Any]) -> None:
        """Write one checkpoint; both branches are atomic (temp file, then rename)."""
        if self.save_weights_only:
            state = _cpu_state(self.model)
            if state is not None:
                save_plain(state, path)
        else:
            self.model.save(path)  # one self-describing file: ctrkit.load(path) rebuilds it

    def state_dict(self) -> Dict[str, Any]:
        return {"monitor": self.monitor.state_dict(), "saved": list(self.saved)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.monitor.load_state_dict(state["monitor"])
        self.saved = list(state["saved"])
