"""Parquet files through fit/evaluate/predict/explain (ctrkit.data.ParquetDataset)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("pyarrow", reason="pyarrow (the ctrkit[parquet] extra) is not installed")

from ctrkit.data import ParquetDataset, ragged_to_padded, write_parquet  # noqa: E402
from ctrkit.errors import ConfigError, InputError, InputTypeError  # noqa: E402
from ctrkit.inputs import prepare_inputs  # noqa: E402
from ctrkit.training.data_adapters import get_data_adapter  # noqa: E402
from ctrkit.training.data_adapters.parquet_data_adapter import ParquetDataAdapter  # noqa: E402
from ctrkit.strategies import LocalPlan  # noqa: E402
from ctrkit.regularizers import MBA  # noqa: E402
from trainer_helpers import rows, same_state, small_din, snapshot  # noqa: E402


def _model(features, **kw):
    model = small_din(features, **kw)
    model.compile("adam", metrics=["auc", "gauc"], gauc_group="user", lr=0.01)
    return model


def write_parts(x, y, folder, sizes, row_group_size, w=None):
    """Rows in order over several files of ``sizes`` rows each."""
    folder.mkdir(exist_ok=True)
    start = 0
    for i, n in enumerate(sizes):
        part = {k: v[start:start + n] for k, v in x.items()}
        write_parquet(part, y[start:start + n], folder / f"part-{i:02d}.parquet",
                      row_group_size=row_group_size,
                      sample_weight=None if w is None else w[start:start + n])
        start += n
    return folder


@pytest.fixture
def data(small_synthetic):
    x, y, features = small_synthetic
    return (*rows(x, y, 700), features)


def test_trained_from_parquet_equals_in_memory_without_shuffling(data, tmp_path):
    x, y, features = data
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y)).astype(np.float32)
    folder = write_parts(x, y, tmp_path / "d", [300, 250, 150], row_group_size=97, w=w)
    ds = ParquetDataset(folder, weight="weight")
    a, b = _model(features), _model(features)
    ha = a.fit(x, y, sample_weight=w, batch_size=64, epochs=2, verbose=0, shuffle=False)
    hb = b.fit(ds, batch_size=64, epochs=2, verbose=0, shuffle=False)
    assert same_state(snapshot(a), snapshot(b))      # identical weights, bit for bit
    assert ha.history == hb.history
    assert hb.params["samples"] == len(y) and hb.params["steps"] == 11
    np.testing.assert_array_equal(a.predict(x, batch_size=50), b.predict(ds, batch_size=50))
    assert a.evaluate(x, y, sample_weight=w) == b.evaluate(ds)
    np.testing.assert_array_equal(a.explain(x), b.explain(ParquetDataset(folder, label=None)))
    assert not same_state(snapshot(b), snapshot(_model(features)))  # it did train
    c = _model(features)  # row groups decoded 37 rows at a time: the same batches
    c.fit(ParquetDataset(folder, weight="weight", read_rows=37), batch_size=64, epochs=2,
          verbose=0, shuffle=False)
    assert same_state(snapshot(a), snapshot(c))


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.integers(1, 60), min_size=1, max_size=8), batch=st.integers(1, 50),
       buffer=st.integers(1, 120), seed=st.integers(0, 1000))
def test_the_shuffle_buffer_emits_every_row_once_in_the_asked_sizes(chunks, batch, buffer, seed):
    from ctrkit.training.data_adapters.data_adapter import Batch
    from ctrkit.training.data_adapters.parquet_data_adapter import shuffle_rebatch
    n = sum(chunks)
    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    bounds = np.r_[0, np.cumsum(chunks)]

    def parts():
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            rid = torch.arange(lo, hi)
            yield Batch({"rid": rid, "seq": torch.stack([rid, -rid], 1)}, rid.float(), None)

    def run():
        return list(shuffle_rebatch(parts(), sizes, buffer, torch.Generator().manual_seed(seed)))
    out = run()
    assert [b.size for b in out] == sizes
    rid = torch.cat([b.x["rid"] for b in out])
    assert torch.equal(rid.sort().values, torch.arange(n))
    for b in out:  # columns stay aligned row by row
        assert torch.equal(b.x["seq"][:, 0], b.x["rid"]) and torch.equal(b.y, b.x["rid"].float())
    assert all(torch.equal(a.x["rid"], b.x["rid"]) for a, b in zip(out, run()))  # seeded


def test_parquet_validation_data_matches_arrays(data, tmp_path):
    x, y, features = data
    xt, yt = rows(x, y, 500)
    xv, yv = rows(x, y, 700, 500)
    write_parquet(xv, yv, tmp_path / "val.parquet", row_group_size=64)
    a, b = _model(features), _model(features)
    ha = a.fit(xt, yt, batch_size=50, epochs=2, verbose=0, validation_data=(xv, yv))
    hb = b.fit(xt, yt, batch_size=50, epochs=2, verbose=0,
               validation_data=ParquetDataset(tmp_path / "val.parquet"))
    assert ha.history == hb.history and hb.params["val_samples"] == 200


def _orders(ds, model, epochs, batch_size=50, shuffle=True):
    """The row ids ('rid' column) of each epoch's batches, read as fit reads them."""
    adapter = get_data_adapter(model, ds, groups=["rid"])
    plan = LocalPlan(None, adapter, batch_size)
    out = []
    for _ in range(epochs):
        out.append(torch.cat([b.x["rid"] for b in adapter.train_batches(plan, shuffle, model.rng)]))
    return out


@pytest.fixture
def rid_files(data, tmp_path):
    x, y, features = data
    x = dict(x, rid=np.arange(len(y)))
    folder = write_parts(x, y, tmp_path / "rid", [200, 200, 300], row_group_size=50)
    return folder, features, len(y)


def test_shuffling_is_deterministic_under_seed_and_every_epoch_is_a_permutation(rid_files):
    folder, features, n = rid_files
    ds = ParquetDataset(folder, shuffle_buffer=120)
    one = _orders(ds, small_din(features, seed=5), 3)
    two = _orders(ds, small_din(features, seed=5), 3)
    other = _orders(ds, small_din(features, seed=6), 3)
    for a, b in zip(one, two):
        assert torch.equal(a, b)
    assert not torch.equal(one[0], other[0])
    assert not torch.equal(one[0], one[1])            # a new order every epoch
    for order in one + other:
        assert torch.equal(order.sort().values, torch.arange(n))  # each row once per epoch
    # and fit itself follows the model's seed: same seed -> same weights
    a, b = _model(features, seed=5), _model(features, seed=5)
    a.fit(ds, batch_size=64, epochs=2, verbose=0)
    b.fit(ds, batch_size=64, epochs=2, verbose=0)
    assert same_state(snapshot(a), snapshot(b))


def test_without_a_buffer_row_groups_stay_whole_and_their_order_is_permuted(rid_files):
    folder, features, n = rid_files
    order = _orders(ParquetDataset(folder, shuffle_buffer=0), small_din(features), 1,
                    batch_size=50)[0].numpy()
    groups = order.reshape(-1, 50)                      # row groups of 50 rows, batches of 50
    assert all((np.diff(g) == 1).all() and g[0] % 50 == 0 for g in groups)
    starts = groups[:, 0]
    assert sorted(starts) == list(range(0, n, 50)) and list(starts) != sorted(starts)
    # files are permuted as wholes: each file's row groups are consecutive in the epoch
    file_of = np.searchsorted([200, 400, 700], starts, side="right")
    assert (np.diff(file_of) != 0).sum() == 2


def test_a_buffer_holding_every_row_gives_uniform_permutations_like_in_memory(rid_files):
    folder, features, n = rid_files
    model = small_din(features, seed=11)
    orders = _orders(ParquetDataset(folder, shuffle_buffer=n), model, 300)
    first = np.array([int(o[0]) for o in orders])
    # the first row of an epoch is uniform over the rows (as with torch.randperm): a chi-square
    # test over 7 bins of 100 rows (critical value at p=0.001 with 6 dof: 22.46); seeded, so
    # it is deterministic.
    counts = np.bincount(first // 100, minlength=7)
    chi2 = float(((counts - 300 / 7) ** 2 / (300 / 7)).sum())
    assert chi2 < 22.46, counts
    # rows of the first and last file mix: in-memory-like, not file by file
    pos = np.array([np.argsort(o.numpy())[[0, 699]] for o in orders])
    assert 0.4 < float((pos[:, 0] < pos[:, 1]).mean()) < 0.6


def test_reading_runs_in_a_background_thread(data, tmp_path, monkeypatch):
    x, y, features = data
    write_parquet(x, y, tmp_path / "t.parquet", row_group_size=100)
    threads = []
    original = ParquetDataAdapter._read

    def spy(self, unit, *args):
        threads.append(threading.current_thread().name)
        return original(self, unit, *args)
    monkeypatch.setattr(ParquetDataAdapter, "_read", spy)
    _model(features).fit(ParquetDataset(tmp_path / "t.parquet"), batch_size=64, verbose=0)
    assert len(threads) == 7 and set(threads) == {"ctrkit-reader"}
    threads.clear()
    _model(features).fit(ParquetDataset(tmp_path / "t.parquet", prefetch=0), batch_size=64,
                         verbose=0)
    assert set(threads) == {threading.main_thread().name}


def test_ragged_list_columns_are_padded_by_the_shared_policy(data, tmp_path):
    x, y, features = data
    rng = np.random.default_rng(2)
    maxlen = x["hist_item"].shape[1]
    lens = rng.integers(0, 2 * maxlen, len(y))              # some longer than maxlen
    items = [rng.integers(1, 200, k) for k in lens]
    cates = [rng.integers(1, 10, k) for k in lens]
    raw = {k: v for k, v in x.items() if k not in ("hist_item", "hist_cate", "seq_length")}
    raw["hist_item"] = np.array(items + [None], dtype=object)[:-1]
    raw["hist_cate"] = np.array(cates + [None], dtype=object)[:-1]
    write_parquet(raw, y, tmp_path / "ragged.parquet", row_group_size=128)
    offsets = np.r_[0, np.cumsum(lens)]
    hi, ln = ragged_to_padded(np.concatenate(items), offsets, maxlen)
    hc, _ = ragged_to_padded(np.concatenate(cates), offsets, maxlen)
    padded = dict(raw, hist_item=hi, hist_cate=hc, seq_length=ln)
    assert (ln == np.minimum(lens, maxlen)).all() and (ln < lens).any() and (ln == 0).any()
    a, b = _model(features), _model(features)
    a.fit(padded, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    b.fit(ParquetDataset(tmp_path / "ragged.parquet"), batch_size=64, epochs=1, verbose=0,
          shuffle=False)
    assert same_state(snapshot(a), snapshot(b))


def test_vocabularies_attached_to_the_model_apply_to_streamed_rows(data, tmp_path):
    from ctrkit.data import CategoricalEncoder
    x, y, features = data
    raw = dict(x, user=np.array([f"u{v}" for v in x["user"]]))
    write_parquet(raw, y, tmp_path / "raw.parquet", row_group_size=100)
    a, b = _model(features), _model(features)
    for m in (a, b):
        m.encoders["user"] = CategoricalEncoder("user").fit(raw["user"])
    a.fit(raw, y, batch_size=64, verbose=0, shuffle=False)
    b.fit(ParquetDataset(tmp_path / "raw.parquet"), batch_size=64, verbose=0, shuffle=False)
    assert same_state(snapshot(a), snapshot(b))
    np.testing.assert_array_equal(a.predict(raw), b.predict(ParquetDataset(tmp_path / "raw.parquet")))


def test_mba_counts_ids_in_a_streaming_pass(data, tmp_path):
    x, y, features = data
    write_parts(x, y, tmp_path / "m", [350, 350], row_group_size=60)
    model = _model(features, embedding_regularizer="mba", l2_reg_embedding=1e-2)
    ref = MBA(strength=1e-2)
    ref.prepare(model, prepare_inputs(model.features, x))
    a = _model(features, embedding_regularizer="mba", l2_reg_embedding=1e-2)
    b = _model(features, embedding_regularizer="mba", l2_reg_embedding=1e-2)
    a.fit(x, y, batch_size=64, verbose=0, shuffle=False)
    b.fit(ParquetDataset(tmp_path / "m"), batch_size=64, verbose=0, shuffle=False)
    for k, v in ref.inv_counts.items():
        assert torch.equal(b.regularizer.inv_counts[k], v)
    assert same_state(snapshot(a), snapshot(b))


# --------------------------------------------------------------------------- errors
def _write(path, cols, y=None, **kw):
    return write_parquet(cols, y, path, **kw)


def test_a_schema_mismatch_names_the_file_before_the_first_step(data, tmp_path):
    x, y, features = data
    good = write_parquet(x, y, tmp_path / "good.parquet")
    model = _model(features)
    before = snapshot(model)
    cases = [
        ({k: v for k, v in x.items() if k != "cate"},
         r"file '.*bad.parquet': has no column 'cate' \(feature 'cate'\)"),
        (dict(x, item=x["hist_item"]),
         r"file '.*bad.parquet': column 'item' is a list column .* but SparseFeat 'item' takes "
         r"one id per row"),
        (dict(x, hist_item=x["item"]),
         r"column 'hist_item' has type int64, but VarLenSparseFeat 'hist_item' needs a list "
         r"column"),
        (dict(x, cate=x["cate"].astype(str)),
         r"column 'cate' has type string, but SparseFeat 'cate' takes integer ids"),
        (dict(x, hist_item=x["hist_item"][:, :3]),
         r"column 'hist_item' holds 3 ids per row beside the length column 'seq_length'"),
    ]
    for cols, msg in cases:
        bad = _write(tmp_path / "bad.parquet", cols, y)
        with pytest.raises(InputError, match=msg):
            model.fit(ParquetDataset([good, bad]), verbose=0)
    with pytest.raises(InputError, match=r"has no column 'label' \(the label column\)"):
        model.fit(ParquetDataset(_write(tmp_path / "bad.parquet", x)), verbose=0)
    with pytest.raises(ConfigError, match=r"ParquetDataset with label=None, but fit/evaluate "
                                          r"need labels"):
        model.evaluate(ParquetDataset(good, label=None))
    assert same_state(before, snapshot(model))


def test_a_bad_value_names_the_file_the_row_group_and_the_row(data, tmp_path):
    x, y, features = data
    model = _model(features)
    big = dict(x, item=x["item"].copy())
    big["item"][130] = -4                                       # one row group, decoded by 50
    path = write_parquet(big, y, tmp_path / "big.parquet", row_group_size=1000)
    with pytest.raises(InputError, match=r"file '.*big.parquet', row group 0 \(row 100 on\): "
                                         r"Feature 'item' has id -4 at row 30"):
        model.predict(ParquetDataset(path, label=None, read_rows=50))
    bad = dict(x, item=x["item"].copy())
    bad["item"][250] = 10 ** 9                                  # row group 2 (100 rows each), row 50
    path = write_parquet(bad, y, tmp_path / "ids.parquet", row_group_size=100)
    with pytest.raises(InputError, match=r"In x, file '.*ids.parquet', row group 2: Feature "
                                         r"'item' has id 1000000000 at row 50"):
        model.fit(ParquetDataset(path), batch_size=64, verbose=0, shuffle=False)
    y2 = y.copy()
    y2[130] = 3
    path = write_parquet(x, y2, tmp_path / "y.parquet", row_group_size=100)
    with pytest.raises(InputError, match=r"row group 1: y has label 3.0 at row 30"):
        model.fit(ParquetDataset(path), verbose=0)
    with pytest.raises(InputError, match=r"^In validation_data, file .*y.parquet.*, row group 1"):
        model.fit(x, y, verbose=0, validation_data=ParquetDataset(path))
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    t = pq.read_table(write_parquet(x, y, tmp_path / "n.parquet"))
    user = pa.array([None] + list(x["user"][1:]), type=pa.int64())
    pq.write_table(t.set_column(t.schema.get_field_index("user"), "user", user),
                   tmp_path / "null.parquet")
    with pytest.raises(InputError, match=r"row group 0: Column 'user' is null at row 0"):
        model.predict(ParquetDataset(tmp_path / "null.parquet", label=None))


def test_ragged_rows_that_look_padded_are_refused(data, tmp_path):
    x, y, features = data
    no_len = {k: v for k, v in x.items() if k != "seq_length"}  # padded ids, lengths dropped
    path = write_parquet(no_len, y, tmp_path / "p.parquet", row_group_size=1000)
    row = int(np.argmax(x["seq_length"] < x["hist_item"].shape[1]))
    # the in-memory rule and message (ctrkit.inputs), with the file and row group in front
    with pytest.raises(InputError, match=rf"row group 0: Sequence feature 'hist_item' holds "
                                         rf"the padding id 0 at row {row}, "):
        _model(features).fit(ParquetDataset(path), verbose=0)


def test_arguments_that_do_not_apply_to_parquet_are_refused(data, tmp_path):
    x, y, features = data
    ds = ParquetDataset(write_parquet(x, y, tmp_path / "t.parquet"))
    model = _model(features)
    with pytest.raises(InputError, match=r"carries its own labels and weights; pass y=None"):
        model.fit(ds, y, verbose=0)
    with pytest.raises(ConfigError, match=r"validation_split needs in-memory arrays"):
        model.fit(ds, validation_split=0.1, verbose=0)
    with pytest.raises(ConfigError, match=r"a ParquetDataset has a known size \(700 rows\)"):
        model.fit(ds, steps_per_epoch=3, verbose=0)
    assert isinstance(InputTypeError("x"), InputError)


# --------------------------------------------------------------------------- 2 processes
@pytest.fixture(scope="module")
def ddp_parquet(tmp_path_factory):
    """tests/training/ddp_parquet_worker.py on 2 gloo processes over Parquet files."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    import ddp_worker
    from ctrkit.datasets import make_synthetic
    root = tmp_path_factory.mktemp("ddp_parquet")
    x, y, features = make_synthetic(n_rows=601 + 203, n_users=40, n_items=60, n_categories=6,
                                    maxlen=6, embedding_dim=4, seed=3)
    x = dict(x, rid=np.arange(len(y)))
    write_parts({k: v[:601] for k, v in x.items()}, y[:601], root / "train", [250, 351], 45)
    write_parquet({k: v[601:] for k, v in x.items()}, y[601:], root / "val.parquet",
                  row_group_size=50)
    (root / "val").mkdir()
    (root / "val.parquet").rename(root / "val" / "val.parquet")
    torch.save(features, root / "features.pt")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    here = Path(__file__).resolve().parent
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={port}",
           str(here / "ddp_parquet_worker.py"), str(root), str(root)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    del ddp_worker
    return root, x, y, features


def _rank(root, r):
    import json
    return json.loads((root / f"parquet-{r}.json").read_text()), torch.load(root / f"parquet-{r}.pt",
                                                                  weights_only=True)


@pytest.mark.slow
def test_each_rank_reads_its_share_and_runs_the_same_steps(ddp_parquet):
    from ctrkit.strategies import step_bounds
    root, x, y, features = ddp_parquet
    logs = [_rank(root, r)[0] for r in (0, 1)]
    bounds = step_bounds(601, 32, 2)
    for r in (0, 1):  # every step on both ranks, with DDP's per-rank batch sizes, 2 epochs
        assert logs[r]["sizes"] == [b[r + 1] - b[r] for b in bounds] * 2
    # 14 training row groups (250 rows -> 6, 351 rows -> 8); per pass (MBA's counting pass,
    # then 2 epochs) a rank reads about half of them (+1 where its share starts mid row
    # group), never all 14
    for r in (0, 1):
        reads = [u for u in logs[r]["train_reads"] if u[0] == "train"]
        assert 3 * 7 <= len(reads) <= 3 * 8, len(reads)
        val = [u for u in logs[r]["train_reads"] if u[0] == "val"]
        assert 2 * 2 <= len(val) <= 2 * 3  # its shard of the 5 validation row groups
    assert logs[0]["history"] == logs[1]["history"]


@pytest.mark.slow
def test_gathered_epoch_metrics_cover_every_row_once_and_are_exact(ddp_parquet):
    from sklearn.metrics import roc_auc_score
    root, x, y, features = ddp_parquet
    log, _ = _rank(root, 0)
    # per epoch: the training rows, then the validation rows (each rank read its share)
    for i, g in enumerate(log["gathered"]):
        epoch, prefix, rows = i // 2, ("", "val_")[i % 2], (range(601), range(601, 804))[i % 2]
        assert sorted(g["rid"]) == list(rows)
        assert np.array_equal(np.asarray(g["y"]), y[np.asarray(g["rid"])])
        assert log["history"][prefix + "auc"][epoch] == pytest.approx(
            roc_auc_score(g["y"], g["p"]), abs=1e-12)
        assert log["history"][prefix + "rows"][epoch] == len(rows)


@pytest.mark.slow
def test_collective_predict_and_evaluate_from_parquet_match_one_process(ddp_parquet):
    root, x, y, features = ddp_parquet
    (l0, s0), (l1, s1) = _rank(root, 0), _rank(root, 1)
    assert torch.equal(s0["pred"], s1["pred"]) and s0["pred"].shape == (203, 1)
    for k in s0["state"]:
        assert torch.equal(s0["state"][k], s1["state"][k]), k
    # each rank predicted a shard: 203 rows in row groups of 50 -> 2 or 3 reads, not 5
    assert all(2 * 2 <= len(lg["predict_reads"]) <= 2 * 3 for lg in (l0, l1))  # predict+evaluate
    import ddp_parquet_worker
    model = ddp_parquet_worker.model_for(features)
    model.load_state_dict(s0["state"])
    model.compile("adam", metrics=["auc"])
    xv = {k: v[601:] for k, v in x.items()}
    np.testing.assert_allclose(model.predict(xv, batch_size=32), s0["pred"].numpy(), atol=1e-6)
    local = model.evaluate(xv, y[601:], batch_size=32)
    assert l0["evaluate"]["auc"] == pytest.approx(local["auc"], abs=1e-9)
    assert l0["history"]["val_auc"][-1] == l0["evaluate"]["auc"]
    # the bounded-memory AUC summed over ranks: the same numbers on both, next to the exact
    assert l0["approx"] == l1["approx"]
    from ctrkit.metrics.approx_auc import AUCHistogram
    h = AUCHistogram()
    h.update(y[601:], model.predict(xv, batch_size=32).ravel())
    value, bound = h.result()
    pairs = float(y[601:].sum() * (1 - y[601:]).sum())
    # within the stated bound (+ a pair or two whose rows sit on a bin edge, since the local
    # predictions equal the ranks' only to 1e-6)
    assert abs(l0["approx"]["approx_auc"] - local["auc"]) <= bound + 2 / pairs
    assert l0["approx"]["loss"] == pytest.approx(local["loss"], rel=1e-5)


@pytest.mark.slow
def test_mba_counts_from_each_rank_share_sum_to_the_whole_data(ddp_parquet):
    root, x, y, features = ddp_parquet
    import ddp_parquet_worker
    model = ddp_parquet_worker.model_for(features)
    ref = MBA(strength=1e-2)
    ref.prepare(model, prepare_inputs(model.features, {k: v[:601] for k, v in x.items()}))
    for r in (0, 1):
        counts = _rank(root, r)[1]["inv_counts"]
        for k, v in ref.inv_counts.items():
            assert torch.equal(counts[k], v), (r, k)


def test_several_label_columns_train_as_in_memory_labels(data, tmp_path):
    """label=["click", "buy"] (issue 26): one column per task in task order, a null label is
    a missing one (NaN); fit/evaluate from Parquet equal the same rows in memory, bit for bit,
    and the columns are checked against the model's tasks."""
    import ctrkit
    x, y, features = data
    buy = np.where(np.arange(len(y)) % 3 == 0, np.nan, y * (np.arange(len(y)) % 2))
    folder = tmp_path / "mt"
    folder.mkdir()
    start = 0
    for i, n in enumerate([400, 300]):
        part = {k: v[start:start + n] for k, v in x.items()}
        part["click"] = y[start:start + n].astype(np.int64)
        part["buy"] = buy[start:start + n]  # NaN floats
        write_parquet(part, None, folder / f"part-{i}.parquet", row_group_size=90)
        start += n
    # one file stores the missing labels as Parquet nulls instead of NaN
    import pyarrow as pa
    import pyarrow.parquet as pq
    t = pq.read_table(folder / "part-1.parquet")
    col = t.column("buy").to_numpy()
    t = t.set_column(t.schema.get_field_index("buy"), "buy",
                     pa.array([None if np.isnan(v) else v for v in col], pa.float64()))
    pq.write_table(t, folder / "part-1.parquet", row_group_size=90)

    def model():
        m = ctrkit.build("din", features, seed=0, task_names=("ctr", "cvr"),
                         dnn_hidden_units=(8,), att_hidden_size=(8,))
        m.compile("adam", metrics=["auc"], lr=0.01)
        return m
    a, b = model(), model()
    labels = {"ctr": y, "cvr": buy}
    ha = a.fit(x, labels, batch_size=64, epochs=2, verbose=0, shuffle=False)
    ds = ParquetDataset(folder, label=["click", "buy"])
    hb = b.fit(ds, batch_size=64, epochs=2, verbose=0, shuffle=False)
    assert same_state(snapshot(a), snapshot(b))
    assert ha.history == hb.history and "cvr_auc" in hb.history
    assert a.evaluate(x, labels) == b.evaluate(ds)
    np.testing.assert_array_equal(a.predict(x), b.predict(ParquetDataset(folder, label=None)))
    with pytest.raises(ConfigError, match=r"tasks \['ctr', 'cvr'\]: give one label column per"):
        b.evaluate(ParquetDataset(folder, label=["click", "buy", "label"]))
    with pytest.raises(ConfigError, match="one output: give one label column"):
        _model(features).evaluate(ds)
    with pytest.raises(ConfigError, match="distinct column names"):
        ParquetDataset(folder, label=["click", "click"])
