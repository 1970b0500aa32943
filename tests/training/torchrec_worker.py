"""Run by tests/training/test_torchrec.py under torchrun: sharded fits, then per-rank files.

Usage: python -m torch.distributed.run --nproc_per_node=2 ... torchrec_worker.py OUT_DIR BATCH
"""
from __future__ import annotations

import gc
import json
import os
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(1)

import ctrkit  # noqa: E402
from ctrkit.callbacks import BackupAndRestore, Callback  # noqa: E402
from ctrkit.strategies.torchrec import TorchRec, placement, sharded_init  # noqa: E402

from torchrec_cases import EPOCHS, SHARDING, data, model_for  # noqa: E402


class Crash(Callback):
    """Raises at the end of one epoch (after BackupAndRestore wrote it): a killed run."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated crash")


def main(out: Path, batch: int) -> None:
    rank = int(os.environ["RANK"])
    sys.stdout = open(out / f"stdout-{rank}.txt", "w")
    xtr, ytr, xva, yva, features = data()
    strategy = TorchRec(sharding=SHARDING)
    for opt in ("sgd", "adagrad"):
        model = model_for(features, opt, strategy)
        hist = model.fit(xtr, ytr, batch_size=batch, epochs=EPOCHS, verbose=2,
                         validation_data=(xva, yva))
        backend = model.embeddings.backend
        local = {t: [p.tensor.detach().clone() for p in st.local_shards()]
                 for t, st in backend.sharded_state().items()}
        model.save(out / f"{opt}.ctrkit")  # every rank gathers; rank 0 writes
        pred = model.predict(xva, batch_size=batch)
        torch.save({"local": local, "pred": torch.from_numpy(pred),
                    "evaluate": model.evaluate(xva, yva, batch_size=batch)},
                   out / f"{opt}-{rank}.pt")
        (out / f"{opt}-{rank}.json").write_text(json.dumps({"history": hist.history, "placement": placement(backend)}))
    # Any model plug-in: it reads its tables through the same interface (DeepFM pools the
    # history through lookup(), one collective per feature).
    model = ctrkit.build("deepfm", features, dnn_hidden_units=(8,), l2_reg_embedding=0.0,
                         seed=5)
    model.compile("adagrad", lr=0.05, strategy=strategy)
    model.fit(xtr, ytr, batch_size=batch, epochs=1, verbose=0)
    model.save(out / "deepfm.ctrkit")
    torch.save(torch.from_numpy(model.predict(xva, batch_size=batch)), out / f"deepfm-{rank}.pt")
    # Dice's running statistics (dense buffers) follow rank 0 on every rank, as under DDP;
    # the sharded tables' own buffers are left out of that broadcast.
    model = ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                         l2_reg_embedding=0.0, seed=11)
    model.compile("adagrad", lr=0.05, metrics=["auc"], strategy=strategy)
    model.fit(xtr, ytr, batch_size=batch, epochs=1, verbose=0, validation_data=(xva, yva))
    torch.save({k: v for k, v in model.state_dict().items() if not k.startswith("embeddings.")},
               out / f"dice-{rank}.pt")
    # Tables never built whole: every rank initialises its shards only (seeded per shard).
    for name in ("deferred-a", "deferred-b"):
        with sharded_init():
            model = model_for(features, "sgd", strategy, lr=1e-12)
        allocated = len(model.embeddings.tables)
        model.fit(xtr, ytr, batch_size=batch, epochs=1, verbose=0)
        model.save(out / f"{name}.ctrkit")
        (out / f"{name}-{rank}.json").write_text(json.dumps({"allocated_before_fit": allocated}))
    # BackupAndRestore: a run killed after epoch 1 and restarted ends like an uninterrupted one.
    for name, crash in (("straight", None), ("resumed", 1)):
        model = model_for(features, "adagrad", strategy)
        cbs = [BackupAndRestore(out / "backup")]
        if crash is not None:
            try:
                model.fit(xtr, ytr, batch_size=batch, epochs=EPOCHS + 1, verbose=0,
                          callbacks=cbs + [Crash(crash)])
            except KeyboardInterrupt:
                pass
            model = model_for(features, "adagrad", strategy)  # a new process would rebuild it
        hist = model.fit(xtr, ytr, batch_size=batch, epochs=EPOCHS + 1, verbose=0, callbacks=cbs)
        model.save(out / f"{name}.ctrkit")
        (out / f"{name}-{rank}.json").write_text(json.dumps(hist.history))
    sys.stdout.close()
    del model  # freed while the process group lives (see ddp_worker.py)
    gc.collect()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    warnings.simplefilter("default")
    main(Path(sys.argv[1]), int(sys.argv[2]))
