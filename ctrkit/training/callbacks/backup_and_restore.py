"""BackupAndRestore: resume an interrupted ``fit`` exactly where it stopped."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import torch

from ...errors import SerializationError
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
    weights of a run that was never interrupted. When ``fit`` finishes normally the backup is deleted.

    Args:
        backup_dir: folder for the backup (created when needed). Use one folder per run.
        delete_checkpoint: delete the backup when training ends normally.

    Raises:
        SerializationError: (at the start of ``fit``) the backup is damaged or belongs to a
            different model or optimizer; delete ``backup_dir`` to start over.

    Example:
        >>> model.fit(x, y, epochs=10,
        ...           callbacks=[ctrkit.callbacks.BackupAndRestore("ckpt/run1")])  # doctest: +SKIP
    """

    def __init__(self, backup_dir: Any, delete_checkpoint: bool = True) -> None:
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._callbacks: List[Callback] = []

    @property
    def path(self) -> Path:
        return self.backup_dir / BACKUP_FILE

    def _optimizer(self):
        return self.model.trainer.optimizer

    def restore(self, callbacks: Iterable[Callback], initial_epoch: int) -> int:
        """Restore the backup if there is one; return the epoch ``fit`` should start from.

        Called by the trainer after every callback's ``on_train_begin`` (so restored callback
        states are not reset) and inside the RNG fork of ``fit``.
        """
        from ...persistence import load_plain, load_state_dict_checked
        self._callbacks = list(callbacks)
        if not self.path.exists():
            return initial_epoch
        payload = load_plain(self.path, BACKUP_FORMAT, BACKUP_VERSION)
        hint = f" Delete '{self.backup_dir}' to start the run over."
        try:
            load_state_dict_checked(self.model, payload.get("state_dict"), self.path)
            self._optimizer().load_state_dict(payload["optimizer"])
            if payload.get("embedding_optimizer") is not None:  # sharded tables' fused state
                from ..torchrec_strategy import load_full_optimizer_state
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
            raise SerializationError(f"Cannot resume from '{self.path}': {e!r}.{hint}") from e
        return max(initial_epoch, epoch + 1)

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        from ...persistence import _ctrkit_version, save_plain, to_plain
        from ..distributed import is_rank_zero, is_sharded, model_state
        model = self.model
        embedding_optimizer = None
        if is_sharded(model):  # every rank sends its shards and their optimizer state
            from ..torchrec_strategy import full_optimizer_state
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
            "rng": rng,
            "callbacks": {k: to_plain(c.state_dict(), f"The state of callback {k}")
                          for k, c in _keyed(self._callbacks).items()},
        }
        save_plain(payload, self.path)

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        from ..distributed import is_rank_zero
        if self.delete_checkpoint and is_rank_zero():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


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
