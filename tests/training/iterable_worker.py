"""Run by tests/training/test_rank_shards.py under torchrun: fit/evaluate/predict from a plain
list of batches split with ctrkit.data.shard_by_rank, under DDP and TorchRec.

Usage: python -m torch.distributed.run --nproc_per_node=2 ... iterable_worker.py ROOT
"""
from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(1)

import ctrkit  # noqa: E402
from ctrkit.data import shard_by_rank  # noqa: E402
from ctrkit.errors import ConfigError  # noqa: E402

from fault_worker import ddp_model  # noqa: E402

BATCH, N_BATCHES, EPOCHS = 32, 19, 2


def batches(root: Path):
    """19 batches of 32 rows (the last 25), the same list on every rank."""
    x, y = torch.load(root / "arrays.pt", weights_only=False)
    x = {k: v for k, v in x.items() if k != "rid"}
    return [({k: v[i:i + BATCH] for k, v in x.items()}, y[i:i + BATCH])
            for i in range(0, len(y), BATCH)]


def main(root: Path) -> None:
    rank = int(os.environ["RANK"])
    features = torch.load(root / "features.pt", weights_only=False)
    data = batches(root)
    assert len(data) == N_BATCHES
    out = {}
    model = ddp_model(features)  # DDP, SGD, no batch statistics
    hist = model.fit(shard_by_rank(data), epochs=EPOCHS, verbose=0)
    out["history"] = hist.history
    model.save(root / "ddp_iter.ctrkit")
    xs = [b[0] for b in data]
    torch.save(torch.from_numpy(model.predict(shard_by_rank(xs, drop_last=False))),
               root / f"ddp_pred-{rank}.pt")
    out["evaluate"] = model.evaluate(shard_by_rank(data, drop_last=False))
    for name, make in (("drop_last", lambda: model.evaluate(shard_by_rank(data))),
                       ("plain", lambda: model.fit(data, epochs=1, verbose=0)),
                       ("lengths", lambda: model.fit(shard_by_rank(data[:4 + rank], rank=0,
                                                                   world_size=1), verbose=0)),
                       # generators: no length to compare up front; found at the step
                       ("ran_out", lambda: model.fit(shard_by_rank(
                           iter(data[:3 + rank]), rank=0, world_size=1), verbose=0))):
        try:
            make()
            out[name] = None
        except ConfigError as e:
            out[name] = str(e)
    # TorchRec, DIN at its defaults
    model = ctrkit.build("din", features, seed=7)
    model.compile("adagrad", "binary_crossentropy", metrics=["auc"], strategy="torchrec")
    model.fit(shard_by_rank(data), epochs=1, verbose=0,
              validation_data=shard_by_rank(data, drop_last=False))
    model.save(root / "torchrec_iter.ctrkit")
    torch.save(torch.from_numpy(model.predict(shard_by_rank(xs, drop_last=False))),
               root / f"torchrec_pred-{rank}.pt")
    (root / f"iter-{rank}.json").write_text(json.dumps(out))
    del model
    gc.collect()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
