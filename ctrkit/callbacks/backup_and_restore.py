"""BackupAndRestore: resume an interrupted ``fit`` exactly where it stopped."""
from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

import numpy as np
import torch

from ..errors import CallbackError, SerializationError
from .base import Callback, CallbackList

BACKUP_FORMAT = "ctrkit-backup"
BACKUP_VERSION = 1
BACKUP_FILE = "backup.ctrkit"


def _keyed(callbacks: Iterable[Callback]) -> Dict[str, Callback]:
    """Callbacks by class name (``Name``, ``Name#2``, ...), so a restarted run with the same
    callbacks finds each one's state even if the progress logger comes or goes."""
    out: Dict[str, Callback] = {}
    for c in callbacks:
        if isinstance(c, BackupAndRestore):
            continue
        base = type(c).__name__
        key, i = base, 1
        while key in out:
            i += 1
            key = f"{base}#{i}"
        out[key] = c
    return out


def _numpy_state() -> Dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _set_numpy_state(s: Dict[str, Any]) -> None:
    np.random.set_state((s["kind"], s["keys"].numpy().astype(np.uint32), s["pos"],
                         s["has_gauss"], s["cached_gaussian"]))


class BackupAndRestore(Callback):
    """Back up the whole training state at each epoch end; a restarted ``fit`` resumes from it.

    The backup (one file, ``<backup_dir>/backup.ctrkit``, replaced atomically) holds the
    weights and buffers, the optimizer state (learning rates included), the last finished
    epoch, the RNG states (``model.rng``, which orders the batches; torch's global RNG as
    ``fit`` forks it, which drives dropout; numpy's global RNG; CUDA's when on a GPU) and the
    state of every other callback (its ``state_dict()``, restored with ``load_state_dict``:
    early stopping counters, learning-rate schedules, the History). A run killed after epoch k
    and started again with the same call continues with epoch k + 1 and ends with exactly the
    weights of a run that was never interrupted. When ``fit`` finishes normally the backup is
    deleted, and so is ``backup_dir`` if the callback created it and nothing else is in it.

    The backup is written after every other callback has handled the epoch (or batch) end,
    wherever this callback stands in the list: an epoch whose callbacks did not all finish (one
    raised) is redone in full on restart. (Keras writes it in list order.)

    Args:
        backup_dir: folder for the backup (created when needed). Use one folder per run.
            ``''`` and None are refused (the backup would land in the working directory).
        save_freq: ``'epoch'`` (an exact backup at every epoch end) or a positive integer:
            back up after every that many training batches instead. As in Keras 3, a run
            restarted from such a mid-epoch backup redoes the interrupted epoch from its first
            batch, starting from the backed-up weights and optimizer state: it is not
            bit-identical to an uninterrupted run (the epoch-end backups are).
        double_checkpoint: keep the previous backup too (``previous_path``); a restart whose
            latest backup is damaged resumes from it, with a warning.
        delete_checkpoint: delete the backup when training ends normally.

    Attributes:
        path, previous_path: the backup file and, with ``double_checkpoint``, the one before.
        _current_epoch, _last_batch_seen: Keras's progress counters, kept for ported code:
            the number of epochs finished, and the index of the last training batch seen
            (``save_freq`` in batches; 0 after each epoch end).

    Raises:
        CallbackError: ``backup_dir`` is empty, None or not a path; ``save_freq`` is not
            ``'epoch'`` or a positive integer.
        SerializationError: (at the start of ``fit``) the backup is damaged or belongs to a
            different model or optimizer; delete ``backup_dir`` to start over.

    Example:
        >>> model.fit(x, y, epochs=10,
        ...           callbacks=[ctrkit.callbacks.BackupAndRestore("ckpt/run1")])  # doctest: +SKIP
    """

    def __init__(self, backup_dir: Any, save_freq: Union[str, int] = "epoch", *,
                 double_checkpoint: bool = False, delete_checkpoint: bool = True) -> None:
        super().__init__()
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise CallbackError(
                f"Invalid value BackupAndRestore(save_freq={save_freq!r}): it must be 'epoch' or "
                f"a positive number of batches (pass double_checkpoint and delete_checkpoint by "
                f"keyword).")
        self.save_freq = save_freq
        if backup_dir is None or (isinstance(backup_dir, (str, bytes)) and not backup_dir.strip()):
            raise CallbackError(
                f"Empty `backup_dir` argument passed: BackupAndRestore(backup_dir={backup_dir!r}) "
                f"needs a folder for the backup, e.g. BackupAndRestore('ckpt/run1'); one folder "
                f"per run.")
        try:
            self.backup_dir = Path(os.fsdecode(backup_dir))
        except TypeError as e:
            raise CallbackError(f"BackupAndRestore(backup_dir={backup_dir!r}) must be a path "
                                f"(str or os.PathLike), got {type(backup_dir).__name__}.") from e
        self.double_checkpoint = bool(double_checkpoint)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._callbacks: List[Callback] = []
        self._epoch = 0
        self._batches_since_backup = 0
        self._current_epoch = 0
        self._last_batch_seen = 0
        self._made_dir = False  # backup_dir did not exist before this run's first backup

    @property
    def path(self) -> Path:
        return self.backup_dir / BACKUP_FILE

    @property
    def previous_path(self) -> Path:
        return self.backup_dir / (BACKUP_FILE + ".bkp")

    def _optimizer(self):
        return self.model.trainer.optimizer

    def restore(self, callbacks: Iterable[Callback], initial_epoch: int) -> int:
        """Restore the backup if there is one; return the epoch ``fit`` should start from.

        Called by the trainer after every callback's ``on_train_begin`` (so restored callback
        states are not reset) and inside the RNG fork of ``fit``.
        """
        self._callbacks = list(callbacks)
        if not self.path.exists() and not self.previous_path.exists():
            return initial_epoch
        try:
            return self._restore(self.path, initial_epoch)
        except (SerializationError, FileNotFoundError) as e:
            if not self.previous_path.exists():
                raise
            problem = "is missing" if isinstance(e, FileNotFoundError) else f"is damaged ({e})"
            warnings.warn(f"BackupAndRestore: the latest backup '{self.path}' {problem}; "
                          f"resuming from the previous one, '{self.previous_path}'.",
                          RuntimeWarning, stacklevel=2)
            return self._restore(self.previous_path, initial_epoch)

    def _restore(self, path: Path, initial_epoch: int) -> int:
        from ..persistence import load_plain, load_state_dict_checked
        payload = load_plain(path, BACKUP_FORMAT, BACKUP_VERSION)
        hint = f" Delete '{self.backup_dir}' to start the run over."
        try:
            load_state_dict_checked(self.model, payload.get("state_dict"), self.path)
            self._optimizer().load_state_dict(payload["optimizer"])
            if payload.get("embedding_optimizer") is not None:  # sharded tables' fused state
                from ..strategies.torchrec import load_full_optimizer_state
                load_full_optimizer_state(self.model, payload["embedding_optimizer"])
            rng = payload["rng"]
            self.model.rng.set_state(rng["model"])
            torch.set_rng_state(rng["torch"])
            _set_numpy_state(rng["numpy"])
            if rng.get("cuda") is not None and self.model.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.model.device)
            states = payload["callbacks"]
            for key, c in _keyed(self._callbacks).items():
                if key in states:
                    c.load_state_dict(states[key])
            epoch = int(payload["epoch"])
        except SerializationError as e:
            raise SerializationError(str(e) + hint) from e
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise SerializationError(f"Cannot resume from '{path}': {e!r}.{hint}") from e
        self._current_epoch = epoch + 1
        self._made_dir = bool(payload.get("made_dir", False))
        return max(initial_epoch, epoch + 1)

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        self._batches_since_backup = 0
        self._current_epoch = self._last_batch_seen = 0
        self._made_dir = False

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.save_freq == "epoch":
            return
        self._last_batch_seen = batch
        self._batches_since_backup += 1
        if self._batches_since_backup >= self.save_freq:
            self._batches_since_backup = 0
            # A restart redoes this epoch from its first batch, from these weights (Keras 3).
            self._backup(self._epoch - 1)

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._current_epoch, self._last_batch_seen = epoch + 1, 0
        if self.save_freq == "epoch":
            self._backup(epoch)

    def _backup(self, epoch: int) -> None:
        """Write the backup; ``epoch`` is the last completed epoch (-1: none yet)."""
        from ..persistence import _ctrkit_version, save_plain, to_plain
        from ..strategies import is_rank_zero, is_sharded, model_state
        model = self.model
        embedding_optimizer = None
        if is_sharded(model):  # every rank sends its shards and their optimizer state
            from ..strategies.torchrec import full_optimizer_state
            state = model_state(model)
            embedding_optimizer = full_optimizer_state(model, torch.device("cpu")
                                                       if model.device.type == "cpu"
                                                       else model.device)
        else:
            state = None
        if not is_rank_zero():  # under DDP rank 0 writes; every rank reads it on restart
            return
        if state is None:
            state = model.state_dict()
        self._made_dir = self._made_dir or not self.backup_dir.exists()
        rng = {"model": model.rng.get_state(), "torch": torch.get_rng_state(),
               "numpy": _numpy_state(), "cuda": None}
        if model.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(model.device)
        payload = {
            "format": BACKUP_FORMAT, "format_version": BACKUP_VERSION,
            "ctrkit_version": _ctrkit_version(), "epoch": int(epoch),
            "state_dict": {k: v.detach().cpu().clone() for k, v in state.items()},
            "optimizer": to_plain(self._optimizer().state_dict(), "The optimizer state"),
            "embedding_optimizer": embedding_optimizer,
            "rng": rng, "made_dir": self._made_dir,
            "callbacks": {k: to_plain(c.state_dict(), f"The state of callback {k}")
                          for k, c in _keyed(self._callbacks).items()},
        }
        if self.double_checkpoint and self.path.exists():
            os.replace(self.path, self.previous_path)  # a restart falls back to it
        save_plain(payload, self.path)

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        from ..strategies import is_rank_zero
        if self.delete_checkpoint and is_rank_zero():
            for path in (self.path, self.previous_path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            if self._made_dir:
                with contextlib.suppress(OSError):  # only if empty: never a file of yours
                    self.backup_dir.rmdir()


def resume_from_backup(callbacks: CallbackList, initial_epoch: int) -> int:
    """Let each :class:`BackupAndRestore` in ``callbacks`` restore its backup; return the
    epoch to start from (``initial_epoch`` when there is nothing to resume).

    The backups are also moved to the end of the list, so that each epoch's backup is written
    after every other callback (the History included) has handled that epoch's end.
    """
    backups = [c for c in callbacks.callbacks if isinstance(c, BackupAndRestore)]
    callbacks.callbacks = [c for c in callbacks.callbacks if c not in backups] + backups
    for c in backups:
        initial_epoch = c.restore(callbacks.callbacks, initial_epoch)
    return initial_epoch
