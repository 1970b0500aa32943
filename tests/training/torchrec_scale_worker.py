"""Run by tests/training/test_torchrec_scale.py under torchrun: DIN at its defaults with
strategy='torchrec' trained from Parquet, row-wise regularizers under sharding, DDP for
comparison; writes per-rank files.

Usage: python -m torch.distributed.run --nproc_per_node=2 ... torchrec_scale_worker.py ROOT
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
from ctrkit.data import ParquetDataset  # noqa: E402
from ctrkit.training.data_adapters.parquet_data_adapter import ParquetDataAdapter  # noqa: E402

BATCH = 32
PENALTY_ROWS = 16  # the batch whose penalty is compared with one process's


def penalty(model, batch):
    """The embedding regularizer's value on ``batch`` in a training forward (sharded: from
    the rows the forward looked up)."""
    model.train()
    backend = model.embeddings.backend
    with backend.recording():
        model(batch)
        value = model.regularizer.penalty(model, batch)
    model.eval()
    return float(value)


def main(root: Path) -> None:
    rank = int(os.environ["RANK"])
    features = torch.load(root / "features.pt", weights_only=False)
    x, y = torch.load(root / "arrays.pt", weights_only=False)
    batch = {k: torch.as_tensor(v[:PENALTY_ROWS]) for k, v in x.items() if k != "rid"}
    read = []
    original = ParquetDataAdapter._read

    def spy(self, unit, *args):
        read.append([Path(self.dataset.files[unit[0]]).name, int(unit[1])])
        return original(self, unit, *args)
    ParquetDataAdapter._read = spy
    out = {}
    # 1. DIN at its defaults (whole-table L2 1e-6 -> its row-wise form), from Parquet.
    model = ctrkit.build("din", features, seed=7)
    model.compile("adagrad", "binary_crossentropy", metrics=["auc", "gauc", "logloss"],
                  strategy="torchrec", gauc_group="user")
    train = ParquetDataset(root / "train", shuffle_buffer=64)
    hist = model.fit(train, batch_size=BATCH, epochs=1, verbose=0,
                     validation_data=ParquetDataset(root / "val"))
    out["train_reads"] = list(read)
    read.clear()
    pred = model.predict(ParquetDataset(root / "val", label=None), batch_size=BATCH)
    out["evaluate"] = model.evaluate(ParquetDataset(root / "val"), batch_size=BATCH)
    out["predict_reads"] = list(read)
    out["history"] = hist.history
    model.save(root / "din_default.ctrkit")  # before penalty(): its training forward
    out["penalty_default"] = penalty(model, batch)  # moves Dice's running statistics
    torch.save(torch.from_numpy(pred), root / f"pred-{rank}.pt")
    # 2. MBA under TorchRec and under DDP, same data and SGD: the same penalty and weights.
    for strategy in ("torchrec", "ddp"):
        m = ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                         dnn_activation="relu", att_activation="sigmoid", seed=5,
                         embedding_regularizer="mba", l2_reg_embedding=0.05, init_std=0.1)
        m.compile("sgd", "binary_crossentropy", lr=0.5, strategy=strategy)
        m.fit({k: v for k, v in x.items() if k != "rid"}, y, batch_size=BATCH, epochs=1,
              verbose=0, shuffle=False)
        m.save(root / f"mba_{strategy}.ctrkit")
        if strategy == "torchrec":
            out["penalty_mba"] = penalty(m, batch)
    (root / f"scale-{rank}.json").write_text(json.dumps(out))
    del model, m  # freed while the process group lives (see ddp_worker.py)
    gc.collect()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
