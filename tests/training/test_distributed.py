"""Data-parallel fit under torchrun: 2 gloo processes on loopback against one process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from ctrkit.errors import ConfigError
from ctrkit.inputs import prepare_inputs
from ctrkit import strategies as distributed
from ctrkit.strategies import step_bounds
from ctrkit.metrics.gauc import gauc
from ctrkit.regularizers import MBA

import ddp_worker

HERE = Path(__file__).resolve().parent
BATCH = 32  # per rank; the one-process run uses 2 * BATCH
#: 2 ranks x batch b follow 1 process x batch 2b up to float32 rounding of the gradient sums
#: (then amplified a little by Adam over 20 steps); measured max difference is ~1e-7.
WEIGHT_TOL = 1e-5

needs_gloo = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with gloo is not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Launch tests/training/ddp_worker.py on 2 processes; return its output folder."""
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    out = tmp_path_factory.mktemp("ddp")
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           str(HERE / "ddp_worker.py"), str(out), str(BATCH)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _load(path: Path):
    return torch.load(path, weights_only=True)


@needs_gloo
def test_both_ranks_end_with_identical_weights(ddp_run):
    for name in ("equiv", "full"):
        a, b = _load(ddp_run / f"{name}-0.pt"), _load(ddp_run / f"{name}-1.pt")
        a, b = (a, b) if name == "equiv" else (a["state"], b["state"])
        assert a.keys() == b.keys()
        for k in a:  # Dice running statistics included (rank 0's are broadcast)
            assert torch.equal(a[k], b[k]), k


@needs_gloo
def test_two_ranks_batch_b_match_one_process_batch_2b(ddp_run):
    xtr, ytr, _, _, features = ddp_worker.data()
    model = ddp_worker.equivalence_model(features)
    hist = model.fit(xtr, ytr, batch_size=2 * BATCH, epochs=2, verbose=0)
    ddp = _load(ddp_run / "equiv-0.pt")
    one = model.state_dict()
    worst = max(float((ddp[k] - one[k]).abs().max()) for k in one)
    assert worst < WEIGHT_TOL
    # the weights did move, so the comparison means something
    fresh = ddp_worker.equivalence_model(features).state_dict()
    assert max(float((fresh[k] - one[k]).abs().max()) for k in one) > 100 * WEIGHT_TOL
    logged = json.loads((ddp_run / "equiv-history-0.json").read_text())
    np.testing.assert_allclose(logged["loss"], hist.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(logged["auc"], hist.history["auc"], atol=1e-4)


@needs_gloo
def test_auxiliary_losses_under_ddp_match_one_process(ddp_run):
    """A model's add_auxiliary_loss term is scaled like the data loss on each rank, so 2 ranks
    x batch b follow 1 process x batch 2b, and ``aux_loss`` is logged over all ranks."""
    xtr, ytr, _, _, features = ddp_worker.data()
    from ctrkit.registry import MODELS
    with MODELS.scope():
        model = ddp_worker.aux_model(features)
        hist = model.fit(xtr, ytr, batch_size=2 * BATCH, epochs=2, verbose=0)
        fresh = ddp_worker.aux_model(features).state_dict()
    one = model.state_dict()
    for r in (0, 1):
        ddp = _load(ddp_run / f"aux-{r}.pt")
        assert max(float((ddp[k] - one[k]).abs().max()) for k in one) < WEIGHT_TOL
        logged = json.loads((ddp_run / f"aux-history-{r}.json").read_text())
        np.testing.assert_allclose(logged["aux_loss"], hist.history["aux_loss"], rtol=1e-5)
        np.testing.assert_allclose(logged["loss"], hist.history["loss"], rtol=1e-5)
    assert max(float((fresh[k] - one[k]).abs().max()) for k in one) > 100 * WEIGHT_TOL


@needs_gloo
def test_gathered_validation_metrics_are_exact(ddp_run):
    _, _, xva, yva, features = ddp_worker.data()
    full = [_load(ddp_run / f"full-{r}.pt") for r in (0, 1)]
    logs = [json.loads((ddp_run / f"history-{r}.json").read_text()) for r in (0, 1)]
    pred = full[0]["pred"].numpy().ravel()
    assert pred.shape == (len(yva),)
    # predict returns every row, in order, on every rank
    assert torch.equal(full[0]["pred"], full[1]["pred"])
    # one process computing over the same predictions gets the logged (gathered) numbers
    assert logs[0]["history"]["val_auc"][-1] == pytest.approx(roc_auc_score(yva, pred), abs=1e-12)
    assert logs[0]["history"]["val_gauc"][-1] == pytest.approx(
        gauc(yva, pred, groups=xva["user"]), abs=1e-12)
    assert full[0]["evaluate"]["auc"] == pytest.approx(roc_auc_score(yva, pred), abs=1e-12)
    # ...and the rows are in their original order: a local predict with rank 0's weights
    model = __import__("ctrkit").build("din", features, dnn_hidden_units=(16, 8),
                                       att_hidden_size=(8,))
    model.load_state_dict(full[0]["state"])
    np.testing.assert_allclose(model.predict(xva, batch_size=BATCH).ravel(), pred, atol=1e-6)


@needs_gloo
def test_every_rank_sees_the_same_logs_and_decides_the_same(ddp_run):
    logs = [json.loads((ddp_run / f"history-{r}.json").read_text()) for r in (0, 1)]
    assert logs[0] == logs[1]
    # EarlyStopping (patience 1, unreachable min_delta) stopped both ranks after 2 of 5 epochs
    assert logs[0]["epoch"] == [0, 1]
    # ReduceLROnPlateau (patience 0) halved the rate at epoch 2's end (epoch 1 set the best)
    lrs = [_load(ddp_run / f"full-{r}.pt")["lr"] for r in (0, 1)]
    assert lrs == [pytest.approx(0.01 * 0.5)] * 2


@needs_gloo
def test_a_stop_on_one_rank_stops_every_rank_at_the_same_step(ddp_run):
    runs = [json.loads((ddp_run / f"stop-{r}.json").read_text()) for r in (0, 1)]
    assert runs[0]["stopped_at"] == runs[1]["stopped_at"] == [1, 3]  # rank 1 asked, both stop
    assert runs[0]["weights"] == runs[1]["weights"]


@needs_gloo
def test_ranks_given_different_data_are_refused_on_every_rank(ddp_run):
    for r in (0, 1):
        msg = (ddp_run / f"refused-{r}.txt").read_text()
        assert "same, complete training data" in msg and "300..301 rows" in msg


@needs_gloo
def test_only_rank_zero_prints_and_writes(ddp_run):
    out0 = (ddp_run / "stdout-0.txt").read_text()
    assert "Epoch 1/2" in out0 and "Epoch 2/5" in out0
    assert (ddp_run / "stdout-1.txt").read_text() == ""
    assert (ddp_run / "log-0.csv").exists() and (ddp_run / "ckpt-0.pt").exists()
    assert not (ddp_run / "log-1.csv").exists() and not (ddp_run / "ckpt-1.pt").exists()
    rows = (ddp_run / "log-0.csv").read_text().splitlines()
    assert len(rows) == 1 + 2


@needs_gloo
def test_mba_counts_ids_over_the_whole_training_set(ddp_run):
    xtr, _, _, _, features = ddp_worker.data()
    model = __import__("ctrkit").build("din", features, dnn_hidden_units=(16, 8),
                                       att_hidden_size=(8,))
    reg = MBA(strength=1e-2)
    reg.prepare(model, prepare_inputs(model.features, xtr))
    for r in (0, 1):
        counts = _load(ddp_run / f"full-{r}.pt")["inv_counts"]
        assert counts.keys() == reg.inv_counts.keys()
        for k in counts:
            assert torch.equal(counts[k], reg.inv_counts[k]), (r, k)


@pytest.mark.parametrize("n,batch,world,sizes", [
    (601, 32, 2, [64] * 9 + [25]),
    (129, 32, 2, [64, 65]),          # a 1-row tail cannot feed 2 ranks: it joins the step before
    (3, 32, 2, [3]),
    (10, 2, 4, [10]),                # 10 = 8 + 2: 2 rows cannot feed 4 ranks
    (12, 2, 4, [8, 4]),
])
def test_step_bounds_fold_a_tail_smaller_than_the_world(n, batch, world, sizes):
    assert [b[-1] - b[0] for b in step_bounds(n, batch, world)] == sizes


@settings(max_examples=30, deadline=None)
@given(world=st.integers(1, 8), batch=st.integers(1, 40), extra=st.integers(0, 500))
def test_step_bounds_give_every_row_to_one_rank_and_never_an_empty_rank(world, batch, extra):
    n = world + extra
    bounds = step_bounds(n, batch, world)
    flat = [p for b in bounds for p in b]
    assert flat[0] == 0 and flat[-1] == n
    for prev, b in zip(bounds, bounds[1:]):
        assert b[0] == prev[-1]                        # steps tile 0..n-1, in order
        assert all(b2 - b1 == batch for b1, b2 in zip(prev, prev[1:]))  # earlier steps full
    parts = [b2 - b1 for b1, b2 in zip(bounds[-1], bounds[-1][1:])]
    assert min(parts) >= 1 and max(parts) - min(parts) <= 1
    # the loss scales local_n * W / global_n average to 1: the global-batch mean loss
    assert sum(p * world / sum(parts) for p in parts) / world == pytest.approx(1.0)


def test_strategy_is_checked_and_ddp_needs_a_launch(small_synthetic, monkeypatch):
    import ctrkit
    x, y, features = small_synthetic
    model = ctrkit.build("din", features, dnn_hidden_units=(8,), att_hidden_size=(4,))
    with pytest.raises(ConfigError, match=r"strategy must be None .*'ddp' or 'torchrec'.*got 'dp'"):
        model.compile("adam", strategy="dp")
    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    model.compile("adam", strategy="ddp")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match="launch the script with torchrun"):
        model.fit(x, y, epochs=1, verbose=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert distributed.world() == (0, 1) and distributed.is_rank_zero()
