"""Run by tests/training/test_faults.py under torchrun: runs that die and resume.

Usage: python -m torch.distributed.run --nproc_per_node=2 [--max-restarts=1] ... fault_worker.py
ROOT MODE, MODE one of:

- ``straight``: DIN at its defaults, strategy='torchrec', 3 epochs from Parquet with
  BackupAndRestore; saves ROOT/straight.ctrkit.
- ``killed``: the same run, but on the first attempt rank 1 is SIGKILLed in the middle of
  epoch 1; torchrun (``--max-restarts=1``) starts both ranks again, which resume from the
  backup of epoch 0; saves ROOT/killed.ctrkit and each attempt's epochs.
- ``ddp``: 2-process DDP runs: one uninterrupted (ROOT/ddp_straight.ctrkit), one stopped in
  the middle of epoch 1 with its backup left in ROOT/ddp_backup (the test resumes it on one
  process).
"""
from __future__ import annotations

import gc
import json
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout
torch.set_num_threads(1)

import ctrkit  # noqa: E402
from ctrkit.callbacks import BackupAndRestore, Callback  # noqa: E402
from ctrkit.data import ParquetDataset  # noqa: E402

BATCH = 32
EPOCHS = 3


class Die(Callback):
    """At ``batch`` of ``epoch``: SIGKILL this process (``kill``) or raise (both ranks)."""

    def __init__(self, epoch: int, batch: int, kill: bool) -> None:
        super().__init__()
        self.epoch, self.batch, self.kill, self.now = epoch, batch, kill, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.now = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.now == self.epoch and batch == self.batch:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise KeyboardInterrupt("simulated crash")


class Epochs(Callback):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a") as f:
            f.write(json.dumps(epoch) + "\n")


def ddp_model(features):
    """No batch statistics (relu/sigmoid), so 2 ranks x batch B follow 1 process x 2B.

    Raw attention scores: at SGD lr 0.5 DIN's default soft-count form amplifies the float
    rounding of the two row splits to 6e-5 over the run (3e-8 at lr 0.05; the gradients of the
    two halves sum to the whole batch's within 5e-7), above the 1e-5 these tests hold DDP to."""
    model = ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                         dnn_activation="relu", att_activation="sigmoid", seed=7, init_std=0.1,
                         att_weight_normalization=False)
    model.compile("sgd", "binary_crossentropy", lr=0.5, strategy="ddp")
    return model


def main(root: Path, mode: str) -> None:
    rank = int(os.environ["RANK"])
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    features = torch.load(root / "features.pt", weights_only=False)
    if mode in ("straight", "killed"):
        model = ctrkit.build("din", features, seed=7)  # every default
        model.compile("adagrad", "binary_crossentropy", metrics=["auc"], strategy="torchrec")
        cbs = [BackupAndRestore(root / f"{mode}_backup"),
               Epochs(root / f"{mode}-epochs-{rank}-{attempt}.txt")]
        if mode == "killed" and attempt == 0 and rank == 1:
            cbs.append(Die(epoch=1, batch=3, kill=True))
        model.fit(ParquetDataset(root / "train", shuffle_buffer=64), batch_size=BATCH,
                  epochs=EPOCHS, verbose=0, callbacks=cbs)
        model.save(root / f"{mode}.ctrkit")
    else:
        x, y = torch.load(root / "arrays.pt", weights_only=False)
        x = {k: v for k, v in x.items() if k != "rid"}
        model = ddp_model(features)
        model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
        model.save(root / "ddp_straight.ctrkit")
        model = ddp_model(features)
        try:
            model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0,
                      callbacks=[BackupAndRestore(root / "ddp_backup"),
                                 Die(epoch=1, batch=3, kill=False)])
        except KeyboardInterrupt:
            pass
    del model  # freed while the process group lives (see ddp_worker.py)
    gc.collect()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
