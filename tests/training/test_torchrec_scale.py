"""Big data and big tables together (issue 27): DIN at its defaults with strategy='torchrec'
trained from Parquet on 2 gloo processes, compared with one process here.

The worker (torchrec_scale_worker.py) writes per-rank files; one process reloads the gathered
model and recomputes what the ranks reported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ctrkit
from ctrkit.data import ParquetDataset, write_parquet
from ctrkit.datasets import make_synthetic
from ctrkit.regularizers import MBA, BatchL2

from test_torchrec import _free_port, needs_torchrec

HERE = Path(__file__).resolve().parent
N_TRAIN, N_VAL = 601, 203
PENALTY_ROWS = 16


def _launch(script: str, *args, extra=(), timeout=300):
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", *extra,
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           str(HERE / script), *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def write_data(root: Path):
    """Train (2 files, row groups of 45) and validation (row groups of 50) Parquet data."""
    x, y, features = make_synthetic(n_rows=N_TRAIN + N_VAL, n_users=40, n_items=60,
                                    n_categories=6, maxlen=6, embedding_dim=4, seed=3)
    x = dict(x, rid=np.arange(len(y)))
    (root / "train").mkdir()
    (root / "val").mkdir()
    write_parquet({k: v[:250] for k, v in x.items()}, y[:250], root / "train" / "a.parquet",
                  row_group_size=45)
    write_parquet({k: v[250:N_TRAIN] for k, v in x.items()}, y[250:N_TRAIN],
                  root / "train" / "b.parquet", row_group_size=45)
    write_parquet({k: v[N_TRAIN:] for k, v in x.items()}, y[N_TRAIN:],
                  root / "val" / "val.parquet", row_group_size=50)
    torch.save(features, root / "features.pt")
    torch.save(({k: v[:N_TRAIN] for k, v in x.items()}, y[:N_TRAIN]), root / "arrays.pt")
    return x, y, features


def run_worker(root: Path, script: str, logs: str):
    """Write the data into ``root``, run ``script`` on 2 processes over it; return ``(x, y,
    features, [rank 0's, rank 1's ROOT/<logs>-<rank>.json])``."""
    x, y, features = write_data(root)
    proc = _launch(script, root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return x, y, features, [json.loads((root / f"{logs}-{r}.json").read_text()) for r in (0, 1)]


@pytest.fixture(scope="module")
def scale_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    return (root, *run_worker(root, "torchrec_scale_worker.py", "scale"))


def _batch(x):
    return {k: torch.as_tensor(v[:PENALTY_ROWS]) for k, v in x.items() if k != "rid"}


@needs_torchrec
@pytest.mark.slow
def test_din_defaults_train_from_parquet_and_metrics_equal_one_process(scale_run):
    root, x, y, features, logs = scale_run
    assert logs[0]["history"] == logs[1]["history"]
    one = ctrkit.load(root / "din_default.ctrkit")  # the gathered tables, on one process
    one.compile("adagrad", "binary_crossentropy", metrics=["auc", "gauc", "logloss"],
                gauc_group="user")
    ev = one.evaluate(ParquetDataset(root / "val"), batch_size=32)
    for r in (0, 1):
        for k in ("loss", "auc", "gauc", "logloss"):
            assert logs[r]["evaluate"][k] == pytest.approx(ev[k], abs=1e-6), k
            # the epoch's validation metrics were gathered over both ranks' rows
            assert logs[r]["history"]["val_" + k][0] == pytest.approx(ev[k], abs=1e-6), k
    expected = one.predict(ParquetDataset(root / "val", label=None), batch_size=32)
    for r in (0, 1):  # every row once, in input order, on every rank
        pred = torch.load(root / f"pred-{r}.pt", weights_only=True).numpy()
        assert pred.shape == (N_VAL, 1)
        np.testing.assert_allclose(pred, expected, rtol=0, atol=1e-6)


@needs_torchrec
@pytest.mark.slow
def test_each_rank_reads_only_its_share_of_the_files(scale_run):
    *_, logs = scale_run
    # train: 250 rows -> 6 row groups, 351 -> 8; a rank reads about half per pass (+1 where
    # its share starts mid row group); the counting pass is skipped (no MBA), so 1 epoch
    for r in (0, 1):
        train = [u for u in logs[r]["train_reads"] if u[0] != "val.parquet"]
        assert 7 <= len(train) <= 8, train
        for key in ("train_reads", "predict_reads"):
            val = [u for u in logs[r][key] if u[0] == "val.parquet"]
            per_pass = 2 if key == "predict_reads" else 1  # predict, then evaluate
            assert 2 * per_pass <= len(val) <= 3 * per_pass, val  # of 5 row groups
    shares = [{tuple(u) for u in logs[r]["train_reads"] if u[0] != "val.parquet"}
              for r in (0, 1)]
    assert len(shares[0] & shares[1]) <= 1  # at most the row group both shares cut


@needs_torchrec
@pytest.mark.slow
def test_row_wise_regularizers_under_torchrec_equal_one_process(scale_run):
    root, x, y, features, logs = scale_run
    batch = _batch(x)
    one = ctrkit.load(root / "din_default.ctrkit")
    # DIN's default whole-table L2 is its row-wise form under TorchRec: BatchL2 here
    want = BatchL2(1e-6).penalty(one, batch).item()
    for r in (0, 1):
        assert logs[r]["penalty_default"] == pytest.approx(want, rel=1e-5)
    mba_one = ctrkit.load(root / "mba_torchrec.ctrkit")
    reg = MBA(0.05)
    reg.prepare(mba_one, {k: torch.as_tensor(v[:N_TRAIN]) for k, v in x.items() if k != "rid"})
    want = reg.penalty(mba_one, batch).item()
    assert want > 0
    for r in (0, 1):
        assert logs[r]["penalty_mba"] == pytest.approx(want, rel=1e-5)
    # its gradient reached the sharded rows through the same lookup: TorchRec trains what
    # DDP trains (SGD; float rounding of the sums over 2 ranks)
    a = ctrkit.load(root / "mba_torchrec.ctrkit").state_dict()
    b = ctrkit.load(root / "mba_ddp.ctrkit").state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5, msg=k)
    init = ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                        dnn_activation="relu", att_activation="sigmoid", seed=5,
                        init_std=0.1).state_dict()["embeddings.tables.item.weight"]
    assert not torch.allclose(a["embeddings.tables.item.weight"], init)


def test_ddp_names_the_measured_cut_over_to_torchrec():
    from ctrkit.strategies.ddp import TORCHREC_HINT_BYTES, torchrec_hint
    from ctrkit.strategies.torchrec import sharded_init
    rows = TORCHREC_HINT_BYTES // (4 * 16)  # 16 floats of 4 bytes per row
    with sharded_init():  # table shapes only, nothing allocated
        below = ctrkit.build("base", [ctrkit.SparseFeat("item", rows - 1, 16)])
        above = ctrkit.build("base", [ctrkit.SparseFeat("item", rows, 16)])
    assert torchrec_hint(below) is None
    assert torchrec_hint(above) == (
        "strategy=DDP all-reduces 64 MiB of dense embedding gradients every step (every row of "
        "every table, whatever the batch looks up); above 64 MiB compile(strategy='torchrec') "
        "trained faster in ctrkit's measurements (docs/scaling.md), and holds 1/W of each "
        "table per process.")
