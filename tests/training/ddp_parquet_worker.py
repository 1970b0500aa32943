"""Run by tests/training/test_parquet_data_adapter.py under torchrun: fit/evaluate/predict
from Parquet files on 2 processes, then write per-rank files.

Usage: python -m torch.distributed.run --nproc_per_node=2 ... ddp_parquet_worker.py FILES OUT
"""
from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout
torch.set_num_threads(1)

import ctrkit  # noqa: E402
from ctrkit.data import ParquetDataset  # noqa: E402
from ctrkit.training.data_adapters.parquet_data_adapter import ParquetDataAdapter  # noqa: E402
from ctrkit.metrics.base import Metric  # noqa: E402

BATCH = 32


def model_for(features):
    return ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                        embedding_regularizer="mba", l2_reg_embedding=1e-2, seed=7,
                        init_std=0.05)


def main(files: Path, out: Path) -> None:
    rank = int(os.environ["RANK"])
    features = torch.load(files / "features.pt", weights_only=False)
    read = []
    original = ParquetDataAdapter._read

    def spy(self, unit, *args):
        read.append([Path(self.dataset.files[unit[0]]).parent.name, int(unit[1])])
        return original(self, unit, *args)
    ParquetDataAdapter._read = spy
    gathered = []

    def keep(y, p, sample_weight=None, groups=None):  # sees the gathered epoch's rows
        gathered.append({"y": y.tolist(), "p": p.tolist(), "rid": groups.tolist()})
        return float(len(groups))
    model = model_for(features)
    model.compile("adam", "binary_crossentropy", lr=1e-2,
                  metrics=["auc", Metric("rows", keep, needs_groups=True, group="rid")])
    sizes = []
    model.register_forward_pre_hook(
        lambda m, args: sizes.append(len(args[0]["item"])) if m.training else None)
    train = ParquetDataset(files / "train", shuffle_buffer=40)
    hist = model.fit(train, batch_size=BATCH, epochs=2, verbose=0,
                     validation_data=ParquetDataset(files / "val"))
    train_reads = list(read)
    read.clear()
    pred = model.predict(ParquetDataset(files / "val", label=None), batch_size=BATCH)
    ev = model.evaluate(ParquetDataset(files / "val"), batch_size=BATCH)
    predict_reads = list(read)
    # bounded memory: approx_auc's histograms are summed over the ranks
    model.compile("adam", "binary_crossentropy", lr=1e-2, metrics=["approx_auc"])
    approx = model.evaluate(ParquetDataset(files / "val"), batch_size=BATCH)
    (out / f"parquet-{rank}.json").write_text(json.dumps(
        {"history": hist.history, "sizes": sizes, "train_reads": train_reads,
         "predict_reads": predict_reads, "gathered": gathered[:4], "evaluate": ev,
         "approx": approx}))
    torch.save({"state": model.state_dict(), "pred": torch.from_numpy(pred),
                "inv_counts": model.regularizer.inv_counts}, out / f"parquet-{rank}.pt")
    del model  # freed while the process group lives (see ddp_worker.py)
    gc.collect()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
