"""Run by tests/training/test_distributed.py under torchrun: trains, then writes per-rank files.

Usage: python -m torch.distributed.run --nproc_per_node=2 ... ddp_worker.py OUT_DIR BATCH
"""
from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout
torch.set_num_threads(1)

import ctrkit  # noqa: E402
from ctrkit.callbacks import (Callback, CSVLogger, EarlyStopping, ModelCheckpoint,  # noqa: E402
                              ReduceLROnPlateau)
from ctrkit.datasets import make_synthetic  # noqa: E402

N_TRAIN, N_VAL = 601, 203  # 601 = 9 * 64 + 25: a last step split 12/13; 203 = 101 + 102


def data():
    """(x_train, y_train, x_val, y_val, features), the same in every process."""
    x, y, features = make_synthetic(n_rows=N_TRAIN + N_VAL, n_users=40, n_items=60,
                                    n_categories=6, maxlen=6, embedding_dim=4, seed=3)
    tr = {k: v[:N_TRAIN] for k, v in x.items()}
    va = {k: v[N_TRAIN:] for k, v in x.items()}
    return tr, y[:N_TRAIN], va, y[N_TRAIN:], features


def equivalence_model(features):
    """No batch statistics (relu/sigmoid instead of Dice): W ranks x b == 1 process x W*b."""
    model = ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                         dnn_activation="relu", att_activation="sigmoid", seed=7)
    model.compile("adam", "binary_crossentropy", lr=1e-2, metrics=["auc"])
    return model


class StopOnRank(Callback):
    """Sets ``stop_training`` on one rank at (epoch, batch); records the last batch each rank ran."""

    seen = None

    def __init__(self, rank: int, epoch: int, batch: int) -> None:
        super().__init__()
        self.rank, self.epoch, self.batch, self.current = rank, epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        StopOnRank.seen = [self.current, batch]
        if int(os.environ["RANK"]) == self.rank and [self.current, batch] == [self.epoch, self.batch]:
            self.model.stop_training = True


def aux_model(features):
    """The example plug-in with an auxiliary loss (a per-row mean: DDP is exact for it)."""
    import runpy
    from ctrkit.registry import MODELS
    if "two_tower" not in MODELS:
        runpy.run_path(str(Path(__file__).resolve().parents[2] / "examples" / "custom_model.py"))
    model = ctrkit.build("two_tower", features, seed=5, aux_weight=0.7)
    model.compile("adam", "binary_crossentropy", lr=1e-2, metrics=["auc"])
    return model


def main(out: Path, batch: int) -> None:
    rank = int(os.environ["RANK"])
    sys.stdout = open(out / f"stdout-{rank}.txt", "w")
    xtr, ytr, xva, yva, features = data()

    model = equivalence_model(features)
    hist = model.fit(xtr, ytr, batch_size=batch, epochs=2, verbose=2)
    torch.save(model.state_dict(), out / f"equiv-{rank}.pt")
    (out / f"equiv-history-{rank}.json").write_text(json.dumps(hist.history))
    model = aux_model(features)  # an auxiliary loss: minimised and logged across ranks
    hist = model.fit(xtr, ytr, batch_size=batch, epochs=2, verbose=0)
    torch.save(model.state_dict(), out / f"aux-{rank}.pt")
    (out / f"aux-history-{rank}.json").write_text(json.dumps(hist.history))

    # Dice, MBA, validation, GAUC, and callbacks that decide (every rank) or write (rank 0).
    model = ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                         embedding_regularizer="mba", l2_reg_embedding=1e-2, seed=None)
    model.compile("adam", "binary_crossentropy", lr=1e-2, metrics=["auc", "gauc"],
                  gauc_group="user")
    cbs = [ReduceLROnPlateau("val_auc", mode="max", patience=0, min_delta=1.0, factor=0.5),
           EarlyStopping("val_auc", mode="max", patience=1, min_delta=1.0),
           CSVLogger(out / f"log-{rank}.csv"),
           ModelCheckpoint(out / f"ckpt-{rank}.pt", save_weights_only=True)]
    hist = model.fit(xtr, ytr, batch_size=batch, epochs=5, verbose=2,
                     validation_data=(xva, yva), callbacks=cbs)
    pred = model.predict(xva, batch_size=batch)
    torch.save({"state": model.state_dict(), "pred": torch.from_numpy(pred),
                "inv_counts": model.regularizer.inv_counts,
                "evaluate": model.evaluate(xva, yva, batch_size=batch),
                "lr": model.trainer.optimizer.param_groups[0]["lr"]},
               out / f"full-{rank}.pt")
    (out / f"history-{rank}.json").write_text(json.dumps({"history": hist.history, "epoch": hist.epoch}))
    # A stop requested on one rank only (mid-epoch) stops every rank at the same step.
    model.fit(xtr, ytr, batch_size=batch, epochs=3, verbose=0,
              callbacks=[StopOnRank(rank=1, epoch=1, batch=3)])
    (out / f"stop-{rank}.json").write_text(json.dumps({"stopped_at": StopOnRank.seen, "weights": [float(p.sum()) for p in model.parameters()]}))
    # Data split by the user (each rank its own half) is refused on every rank alike.
    try:
        model.fit({k: v[rank::2] for k, v in xtr.items()}, ytr[rank::2], batch_size=batch)
    except ctrkit.errors.ConfigError as e:
        (out / f"refused-{rank}.txt").write_text(str(e))
    sys.stdout.close()
    # Free every model (and the DDP state its last fit used) while the process group is alive:
    # a gloo object destroyed at interpreter shutdown, after the group, can abort the process.
    del model
    gc.collect()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
