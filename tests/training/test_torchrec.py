"""Sharded embedding tables through TorchRec: 2 gloo processes on loopback vs one process.

The torchrun worker (torchrec_worker.py) trains with strategy=TorchRec(...) and writes per-rank
files; these tests compare them with one unsharded process here (which needs no torchrec).
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import ctrkit
from ctrkit.errors import ConfigError
from ctrkit.strategies import torchrec as torchrec_strategy
from ctrkit.strategies.torchrec import TorchRec

from torchrec_cases import EPOCHS, SHARDING, data, model_for

HERE = Path(__file__).resolve().parent
BATCH = 32  # per rank; the one-process run uses 2 * BATCH
#: float32 rounding of the gradient sums (different order on 2 ranks), amplified by Adagrad's
#: division by sqrt(accumulated squares) over 20 steps; measured: SGD 3e-8, Adagrad 4e-7.
WEIGHT_TOL = {"sgd": 1e-6, "adagrad": 1e-5}

needs_torchrec = pytest.mark.skipif(
    importlib.util.find_spec("torchrec") is None
    or not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torchrec (scripts/install_torchrec.sh) or torch.distributed with gloo is missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sharded_run(tmp_path_factory):
    """Launch torchrec_worker.py on 2 processes; return its output folder."""
    out = tmp_path_factory.mktemp("torchrec")
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           str(HERE / "torchrec_worker.py"), str(out), str(BATCH)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _json(path: Path):
    return json.loads(path.read_text())


def _state(path: Path):
    return ctrkit.load(path).state_dict()


@needs_torchrec
@pytest.mark.slow
def test_plan_follows_the_constraints_and_each_rank_holds_only_its_rows(sharded_run):
    full = _state(sharded_run / "sgd.ctrkit")  # the gathered tables, as one process has them
    logs = [_json(sharded_run / f"sgd-{r}.json") for r in (0, 1)]
    local = [torch.load(sharded_run / f"sgd-{r}.pt", weights_only=True)["local"] for r in (0, 1)]
    for table, kind in SHARDING.items():
        assert logs[0]["placement"][table]["sharding"] == kind
        assert logs[0]["placement"][table]["shards"] == logs[1]["placement"][table]["shards"]
    item = logs[0]["placement"]["item"]["shards"]
    rows = full["embeddings.tables.item.weight"].shape[0]
    # row-wise: one block of rows per rank, together every row exactly once, all columns
    assert sorted(r for r, _, _ in item) == [0, 1]
    assert sorted((o[0], o[0] + s[0]) for _, o, s in item) == [(0, 31), (31, rows)]
    assert all(o[1] == 0 and s[1] == 8 for _, o, s in item)
    for r in (0, 1):
        mine = [(o, s) for rank, o, s in item if rank == r]
        assert [tuple(map(tuple, x)) for x in logs[r]["placement"]["item"]["local"]] == \
            [(tuple(o), tuple(s)) for o, s in mine]
        (o, s), = mine
        held = local[r]["item"]
        assert len(held) == 1 and held[0].shape == (s[0], 8) and s[0] < rows  # its rows only
        # the shard a rank trained is that block of the saved (gathered) table
        assert torch.equal(held[0], full["embeddings.tables.item.weight"][o[0]:o[0] + s[0]])
    # a table-wise table lives on one rank; the other holds nothing of it
    (owner, _, _), = logs[0]["placement"]["cate"]["shards"]
    assert len(local[owner]["cate"]) == 1 and local[1 - owner]["cate"] == []


@needs_torchrec
@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
def test_two_sharded_ranks_follow_one_process_with_the_global_batch(sharded_run, optimizer):
    xtr, ytr, xva, yva, features = data()
    model = model_for(features, optimizer)
    hist = model.fit(xtr, ytr, batch_size=2 * BATCH, epochs=EPOCHS, verbose=0,
                     validation_data=(xva, yva))
    one = model.state_dict()
    sharded = _state(sharded_run / f"{optimizer}.ctrkit")
    assert sharded.keys() == one.keys()
    worst = max(float((sharded[k] - one[k]).abs().max()) for k in one)
    assert worst < WEIGHT_TOL[optimizer]
    fresh = model_for(features, optimizer).state_dict()  # the weights moved: a real comparison
    for k in one:
        if k.startswith("embeddings."):
            assert float((fresh[k] - one[k]).abs().max()) > 100 * WEIGHT_TOL[optimizer], k
    logs = [_json(sharded_run / f"{optimizer}-{r}.json")["history"] for r in (0, 1)]
    assert logs[0] == logs[1]
    np.testing.assert_allclose(logs[0]["loss"], hist.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(logs[0]["val_auc"], hist.history["val_auc"], atol=1e-4)


@needs_torchrec
@pytest.mark.slow
def test_saved_sharded_model_loads_on_one_process_and_predicts_the_same(sharded_run):
    _, _, xva, yva, _ = data()
    runs = [torch.load(sharded_run / f"adagrad-{r}.pt", weights_only=True) for r in (0, 1)]
    assert torch.equal(runs[0]["pred"], runs[1]["pred"])  # every rank gets every row, in order
    pred = runs[0]["pred"].numpy().ravel()
    assert pred.shape == (len(yva),)
    loaded = ctrkit.load(sharded_run / "adagrad.ctrkit")
    np.testing.assert_allclose(loaded.predict(xva, batch_size=BATCH).ravel(), pred, atol=1e-6)
    # the collective evaluate computed its metric over all rows exactly
    assert runs[0]["evaluate"]["auc"] == pytest.approx(roc_auc_score(yva, pred), abs=1e-12)


@needs_torchrec
@pytest.mark.slow
def test_another_model_plug_in_trains_sharded_and_reloads(sharded_run):
    _, _, xva, _, features = data()
    pred = torch.load(sharded_run / "deepfm-0.pt", weights_only=True).numpy().ravel()
    loaded = ctrkit.load(sharded_run / "deepfm.ctrkit")
    np.testing.assert_allclose(loaded.predict(xva, batch_size=BATCH).ravel(), pred, atol=1e-6)
    fresh = ctrkit.build("deepfm", features, dnn_hidden_units=(8,), l2_reg_embedding=0.0, seed=5)
    assert not torch.equal(fresh.state_dict()["embeddings.tables.item.weight"],
                           loaded.state_dict()["embeddings.tables.item.weight"])  # it trained


@needs_torchrec
@pytest.mark.slow
def test_dice_running_statistics_are_the_same_on_every_rank(sharded_run):
    a, b = (torch.load(sharded_run / f"dice-{r}.pt", weights_only=True) for r in (0, 1))
    assert a.keys() == b.keys()
    stats = [k for k in a if "running" in k]
    assert stats  # the default DIN has Dice in its attention unit
    for k in a:
        assert torch.equal(a[k], b[k]), k
    *_, features = data()
    fresh = ctrkit.build("din", features, dnn_hidden_units=(16, 8), att_hidden_size=(8,),
                         l2_reg_embedding=0.0, seed=11).state_dict()
    assert any(not torch.equal(fresh[k], a[k]) for k in stats)  # they were updated


@needs_torchrec
@pytest.mark.slow
def test_deferred_tables_are_created_shard_by_shard_and_seeded(sharded_run):
    a, b = (_state(sharded_run / f"deferred-{n}.ctrkit") for n in ("a", "b"))
    for r in (0, 1):  # nothing allocated before the fit sharded the tables
        assert _json(sharded_run / f"deferred-a-{r}.json") == {"allocated_before_fit": 0}
    item = a["embeddings.tables.item.weight"]
    assert torch.equal(item, b["embeddings.tables.item.weight"])  # same seed: same shards
    *_, features = data()
    whole = model_for(features, "sgd").state_dict()["embeddings.tables.item.weight"]
    assert not torch.equal(item, whole)  # drawn per shard, not the full table's stream
    assert 0.08 < float(item.std()) < 0.12 and abs(float(item.mean())) < 0.02  # N(0, 0.1)
    top, bottom = item[:30], item[31:61]  # the two ranks' shards: independent streams
    assert float((top - bottom).abs().min()) > 0


def test_deferred_tables_cannot_be_used_or_saved_before_sharding(tmp_path):
    from ctrkit.errors import SerializationError
    from ctrkit.strategies.torchrec import sharded_init
    _, _, xva, _, features = data()
    with sharded_init():
        model = model_for(features, "sgd", "torchrec")
    assert len(model.embeddings.tables) == 0 and model.embeddings.specs["item"] == (61, 8)
    with pytest.raises(ConfigError, match=r"deferred \(built inside sharded_init\(\)\)"):
        model.predict(xva)
    with pytest.raises(SerializationError, match="nothing to save"):
        model.save(tmp_path / "m.ctrkit")
    assert not (tmp_path / "m.ctrkit").exists()
    assert len(model_for(features, "sgd").embeddings.tables) == 3  # the block has ended


@needs_torchrec
@pytest.mark.slow
def test_backup_and_restore_resumes_a_sharded_run_exactly(sharded_run):
    straight, resumed = (_state(sharded_run / f"{n}.ctrkit") for n in ("straight", "resumed"))
    for k in straight:  # tables and the fused Adagrad state both restored: identical weights
        assert torch.equal(straight[k], resumed[k]), k
    assert _json(sharded_run / "straight-0.json") == _json(sharded_run / "resumed-0.json")
    assert not (sharded_run / "backup" / "backup.ctrkit").exists()  # deleted when fit ends


@needs_torchrec
@pytest.mark.slow
def test_only_rank_zero_prints(sharded_run):
    assert "Epoch 2/2" in (sharded_run / "stdout-0.txt").read_text()
    assert (sharded_run / "stdout-1.txt").read_text() == ""


# ------------------------------------------------------------------ one process, no torchrec
def _din(features, **kw):
    return ctrkit.build("din", features, dnn_hidden_units=(8,), att_hidden_size=(4,), **kw)


def test_compile_refuses_what_the_sharded_backend_cannot_serve():
    *_, features = data()
    dense_only = ctrkit.build("base", [ctrkit.DenseFeat("score", 1)], l2_reg_embedding=0.0)
    with pytest.raises(ConfigError, match="has none .*use strategy='ddp'"):
        dense_only.compile("sgd", strategy="torchrec")
    model = _din(features, l2_reg_embedding=0.0)
    with pytest.raises(ConfigError, match=r"needs CUDA.*'adagrad', 'rowwise_adagrad'.*'sgd'"):
        model.compile("adam", strategy="torchrec")
    with pytest.raises(ConfigError, match=r"fused optimizers, chosen by name: one of \['adagrad', "
                                          r"'adam', 'rowwise_adagrad', 'sgd'\]; got 'rmsprop'"):
        model.compile("rmsprop", strategy="torchrec")
    with pytest.raises(ConfigError, match="chosen by name"):
        model.compile(torch.optim.SGD(model.parameters(), lr=0.1), strategy="torchrec")
    with pytest.raises(ConfigError, match="clipnorm cannot be used with strategy='torchrec'"):
        model.compile("sgd", clipnorm=1.0, strategy="torchrec")
    with pytest.raises(ConfigError, match=r"names tables \['items'\].*\['cate', 'item', 'user'\]"):
        model.compile("sgd", strategy=TorchRec(sharding={"items": "row_wise"}))
    # Every default compiles: the whole-table L2 becomes its row-wise form, MBA is row-wise.
    _din(features).compile("sgd", strategy="torchrec")  # DIN's default l2_reg_embedding=1e-6
    _din(features, embedding_regularizer="mba", l2_reg_embedding=1e-3).compile(
        "sgd", strategy="torchrec")
    with pytest.raises(ConfigError, match=r"WholeTableL2\(l2_reg_embedding=1e-06\).*"
                                          r"whole_table_l2='refuse'.*'mba' or 'batch_l2'"):
        _din(features).compile("sgd", strategy=TorchRec(whole_table_l2="refuse"))

    class Reads(ctrkit.regularizers.Regularizer):  # reads whole tables: no sharded_form
        def penalty(self, model, batch):
            return None
    with pytest.raises(ConfigError, match="Reads sets no sharded_form='rows'"):
        _din(features, embedding_regularizer=Reads(1e-3)).compile("sgd", strategy="torchrec")
    with pytest.raises(ConfigError, match="whole_table_l2=.* 'rows' .*'refuse', got 'dense'"):
        TorchRec(whole_table_l2="dense")
    model.compile("rowwise_adagrad", lr=0.1, strategy="torchrec")
    assert model.trainer.embedding_optimizer == ("rowwise_adagrad", 0.1)
    dense = {id(p) for g in model.trainer.optimizer.param_groups for p in g["params"]}
    tables = {id(p) for p in model.embeddings.parameters()}
    assert dense and not dense & tables  # the tables are the fused optimizer's alone
    assert dense == {id(p) for p in model.parameters()} - tables
    assert type(model.trainer.optimizer).__name__ == "Adagrad"


@pytest.mark.parametrize("sharding,match", [
    ({"item": "data_parallel"}, "replicas of an unpooled EmbeddingCollection fail"),
    ({"item": "rows"}, r"gives table 'item' the sharding \['rows'\]; allowed: \['row_wise'"),
    ({"item": []}, "allowed"),
    (["item"], "must map table names"),
])
def test_torchrec_options_are_checked(sharding, match):
    with pytest.raises(ConfigError, match=match):
        TorchRec(sharding=sharding)
    assert TorchRec(sharding={"item": ["row_wise", "table_wise"]}).sharding == {
        "item": ("row_wise", "table_wise")}


def test_strategy_torchrec_needs_a_torchrun_launch(monkeypatch):
    xtr, ytr, _, _, features = data()
    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    model = model_for(features, "sgd", "torchrec")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match="launch the script with torchrun"):
        model.fit(xtr, ytr, epochs=1, verbose=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.embeddings.backend is None and "item" in model.embeddings.tables


def test_import_ctrkit_and_compile_never_import_torchrec():
    code = ("import sys, ctrkit\n"
            "from ctrkit.datasets import make_synthetic\n"
            "x, y, f = make_synthetic(n_rows=20, seed=0)\n"
            "m = ctrkit.build('din', f, l2_reg_embedding=0.0)\n"
            "m.compile('sgd', strategy='torchrec')\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torchrec', 'fbgemm_gpu')))\n")
    env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_missing_torchrec_is_reported_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchrec", None)  # import torchrec -> ImportError
    with pytest.raises(ConfigError, match=r"needs TorchRec.*fbgemm-gpu-cpu==1\.8\.0.*"
                                          r"--no-deps torchrec==1\.8\.0"):
        torchrec_strategy.import_torchrec()
