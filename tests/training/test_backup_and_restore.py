"""BackupAndRestore: a killed run, started again, ends with exactly the uninterrupted weights."""
from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ctrkit
from ctrkit.callbacks import BackupAndRestore, Callback
from ctrkit.errors import SerializationError
from ctrkit.callbacks.backup_and_restore import BACKUP_FILE

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("_resumable_run.py")
RUN = runpy.run_path(str(SCRIPT))  # the same code the subprocesses run


def assert_same_weights(a, b):
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def launch(out: Path, backup: Path, die_after=None) -> subprocess.CompletedProcess:
    args = [sys.executable, str(SCRIPT), str(out), str(backup)]
    if die_after is not None:
        args.append(str(die_after))
    return subprocess.run(args, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=180)


def test_killed_run_resumes_to_identical_weights(tmp_path):
    k = 4  # where the stateful callbacks are mid-count (patience, lr schedule)
    reference, ref_history, ref_begun = RUN["run"](tmp_path / "ref_backup")
    assert ref_begun[:k + 2] == list(range(k + 2))  # (early stopping may end it before EPOCHS)
    backup = tmp_path / "backup"
    killed = launch(tmp_path / "killed.pt", backup, die_after=k)
    assert killed.returncode == 3, killed.stderr
    assert not (tmp_path / "killed.pt").exists()
    state = torch.load(backup / BACKUP_FILE, weights_only=True)
    assert state["epoch"] == k
    resumed = launch(tmp_path / "resumed.pt", backup)  # the very same call, again
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads((tmp_path / "resumed.pt.json").read_text())
    # it really resumed (a rerun from scratch would also match, seeds being fixed)
    assert info["begun"] == ref_begun[k + 1:]
    assert_same_weights(torch.load(tmp_path / "resumed.pt", weights_only=True),
                        reference.state_dict())
    # the History carries on too: all epochs, equal to the uninterrupted run's
    assert info["epoch"] == ref_history.epoch
    assert info["history"] == ref_history.history
    assert not (backup / BACKUP_FILE).exists()  # deleted once the run finished


@pytest.mark.parametrize("k", [0, 3])
def test_in_process_interruption_resumes_exactly(tmp_path, k):
    x, y, features = RUN["data"]()
    backup = tmp_path / "run"

    def fit(extra):
        model = ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                             dnn_dropout=0.3, seed=7)
        model.compile("adam", "binary_crossentropy", lr=0.02)
        cbs = [BackupAndRestore(backup), RUN["HalveLrEveryTwoEpochs"](), *extra]
        model.fit(x, y, batch_size=16, epochs=6, verbose=0, callbacks=cbs)
        return model

    reference = fit([])
    assert not backup.exists()  # the backup is deleted, and the folder the callback made
    with pytest.raises(KeyboardInterrupt):
        fit([RUN["InterruptAt"](k, hard=False)])
    torch.randn(100)  # the global RNG moves on in between; the resume must not care
    np.random.rand(7)
    resumed = fit([])
    assert_same_weights(resumed.state_dict(), reference.state_dict())


class BackupEpochs(Callback):
    """Reads the backup's epoch at each epoch start (the backup is written last at epoch end)."""

    def __init__(self, path):
        super().__init__()
        self.path, self.seen = path, []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(torch.load(self.path, weights_only=True)["epoch"]
                         if self.path.exists() else None)


def test_backs_up_every_epoch_and_deletes_at_the_end(tmp_path):
    x, y, features = RUN["data"]()
    model = ctrkit.build("din", features, dnn_hidden_units=(8,))
    model.compile("adam")
    spy = BackupEpochs(tmp_path / BACKUP_FILE)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path), spy])
    assert spy.seen == [None, 0, 1]
    assert os.listdir(tmp_path) == []
    model.fit(x, y, epochs=2, verbose=0,
              callbacks=[BackupAndRestore(tmp_path, delete_checkpoint=False)])
    assert os.listdir(tmp_path) == [BACKUP_FILE]
    assert torch.load(tmp_path / BACKUP_FILE, weights_only=True)["epoch"] == 1


def test_backup_of_another_model_is_refused(tmp_path):
    x, y, features = RUN["data"]()
    small = ctrkit.build("din", features, dnn_hidden_units=(8,))
    small.compile("adam")
    with pytest.raises(KeyboardInterrupt):
        small.fit(x, y, batch_size=16, epochs=3, verbose=0,
                  callbacks=[BackupAndRestore(tmp_path), RUN["InterruptAt"](0, hard=False)])
    other = ctrkit.build("din", features, dnn_hidden_units=(16,))
    other.compile("adam")
    with pytest.raises(SerializationError, match=f"(?s){tmp_path}.*Delete '{tmp_path}'"):
        other.fit(x, y, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path)])


def test_damaged_backup_is_refused(tmp_path):
    x, y, features = RUN["data"]()
    (tmp_path / BACKUP_FILE).write_bytes(b"PK\x03\x04 half a zip")
    model = ctrkit.build("din", features, dnn_hidden_units=(8,))
    model.compile("adam")
    with pytest.raises(SerializationError, match=f"'{tmp_path / BACKUP_FILE}' is truncated or "
                                                 f"damaged"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path)])


class Unsaveable(Callback):
    def state_dict(self):
        return {"fn": len}


def test_callback_state_must_be_plain_data(tmp_path):
    x, y, features = RUN["data"]()
    model = ctrkit.build("din", features, dnn_hidden_units=(8,))
    model.compile("adam")
    with pytest.raises(SerializationError, match="callback Unsaveable"):
        model.fit(x, y, epochs=2, verbose=0,
                  callbacks=[BackupAndRestore(tmp_path), Unsaveable()])
    assert os.listdir(tmp_path) == []


def test_base_callback_state_protocol_defaults():
    c = Callback()
    assert c.state_dict() == {}
    c.load_state_dict({"anything": 1})  # ignored, no error
