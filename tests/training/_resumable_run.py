"""A training run used by test_backup_and_restore: ``python _resumable_run.py OUT BACKUP [K]``.

Trains DIN with dropout, shuffling, Adam, Dice and a stateful callback, under
BackupAndRestore(BACKUP); with K it dies (os._exit) in the middle of epoch K + 1, after epoch
K was backed up. Writes the final weights to OUT, and the History and the epochs this process
began to OUT + '.json'.
"""
import json
import os
import sys

import numpy as np
import torch

torch.set_num_threads(1)

import ctrkit  # noqa: E402
from ctrkit import SparseFeat, VarLenSparseFeat  # noqa: E402
from ctrkit.callbacks import BackupAndRestore, Callback  # noqa: E402

EPOCHS = 8


class HalveLrEveryTwoEpochs(Callback):
    """Stateful: halves the learning rate every second epoch *since training began*."""

    def on_train_begin(self, logs=None):
        self.since = 0

    def on_epoch_end(self, epoch, logs=None):
        self.since += 1
        if self.since == 2:
            self.since = 0
            for g in self.model.trainer.optimizer.param_groups:
                g["lr"] *= 0.5

    def state_dict(self):
        return {"since": self.since}

    def load_state_dict(self, state):
        self.since = state["since"]


class RecordEpochs(Callback):
    def __init__(self):
        super().__init__()
        self.begun = []

    def on_epoch_begin(self, epoch, logs=None):
        self.begun.append(epoch)


class InterruptAt(Callback):
    """Interrupts training in the middle of epoch ``k + 1`` (epoch k has been backed up).

    ``hard=True`` kills the process (no cleanup, no on_train_end: like a killed job);
    otherwise it raises KeyboardInterrupt inside fit.
    """

    def __init__(self, k, hard=True):
        super().__init__()
        self.k, self.hard = k, hard

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.k + 1 and batch == 1:
            if self.hard:
                os._exit(3)
            raise KeyboardInterrupt


def data(n=96, maxlen=5):
    rng = np.random.default_rng(3)
    lengths = rng.integers(0, maxlen + 1, n)
    valid = np.arange(maxlen)[None, :] < lengths[:, None]
    x = {"user": rng.integers(0, 10, n), "item": rng.integers(1, 12, n),
         "hist_item": np.where(valid, rng.integers(1, 12, (n, maxlen)), 0), "seq_length": lengths}
    y = (rng.random(n) < 0.5).astype(np.float32)
    features = [SparseFeat("user", 10, 4), SparseFeat("item", 12, 4),
                VarLenSparseFeat(SparseFeat("hist_item", 12, 4), maxlen, length_name="seq_length")]
    return x, y, features


def run(backup_dir, die_after=None):
    x, y, features = data()
    model = ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                         dnn_dropout=0.3, seed=7)
    model.compile("adam", "binary_crossentropy", lr=0.02)
    record = RecordEpochs()
    callbacks = [BackupAndRestore(backup_dir), HalveLrEveryTwoEpochs(), record]
    # Keras-style stateful callbacks, where this ctrkit has them: their counters must resume.
    cb = ctrkit.callbacks
    if hasattr(cb, "ReduceLROnPlateau"):
        callbacks.append(cb.ReduceLROnPlateau("loss", factor=0.5, patience=1, min_delta=0.002))
    if hasattr(cb, "EarlyStopping"):
        callbacks.append(cb.EarlyStopping("loss", patience=3, min_delta=0.002))
    if die_after is not None:
        callbacks.append(InterruptAt(die_after))
    history = model.fit(x, y, batch_size=16, epochs=EPOCHS, verbose=0, callbacks=callbacks)
    return model, history, record.begun


if __name__ == "__main__":
    out, backup = sys.argv[1], sys.argv[2]
    k = int(sys.argv[3]) if len(sys.argv) > 3 else None
    model, history, begun = run(backup, k)
    torch.save(model.state_dict(), out)
    with open(out + ".json", "w") as fh:
        json.dump({"history": history.history, "epoch": history.epoch, "begun": begun}, fh)
