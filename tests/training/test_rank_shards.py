"""A user's iterable under torchrun (issue 27): ctrkit.data.shard_by_rank, steps agreed
between ranks, predict in the stream's order; compared with one process here."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ctrkit
from ctrkit.data import RankShard, shard_by_rank
from ctrkit.errors import ConfigError

from test_torchrec import needs_torchrec
from test_torchrec_scale import run_worker


@pytest.mark.parametrize("n,world", [(7, 3), (6, 2), (1, 2), (0, 3)])
def test_shards_partition_the_stream_and_even_the_ranks(n, world):
    items = list(range(n))
    even = [list(shard_by_rank(items, rank=r, world_size=world)) for r in range(world)]
    assert {len(s) for s in even} == {n // world}
    assert sorted(sum(even, [])) == items[:n // world * world]  # the incomplete group dropped
    every = [list(shard_by_rank(items, r, world, drop_last=False)) for r in range(world)]
    assert sorted(sum(every, [])) == items
    assert [len(shard_by_rank(items, r, world, drop_last=False)) for r in range(world)] == [
        len(s) for s in every]
    assert all(s == items[r::world] for r, s in enumerate(every))
    with pytest.raises(ConfigError, match=r"rank must be in 0\.\.world_size-1, got rank=3"):
        shard_by_rank(items, rank=3, world_size=3)
    assert isinstance(shard_by_rank(items), RankShard)  # one process: rank 0 of 1


@pytest.fixture(scope="module")
def iter_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("iter")
    _, _, features, logs = run_worker(root, "iterable_worker.py", "iter")
    return root, features, logs


@needs_torchrec
@pytest.mark.slow
def test_ddp_from_shards_follows_one_process_on_the_joined_batches(iter_run):
    import iterable_worker as w
    root, features, logs = iter_run
    assert logs[0]["history"] == logs[1]["history"]
    data = w.batches(root)
    # step k of the 2 ranks = batches 2k and 2k+1: one process on those pairs, joined
    joined = [({k: np.concatenate([a[0][k], b[0][k]]) for k in a[0]},
               np.concatenate([a[1], b[1]])) for a, b in zip(data[0::2], data[1::2])]
    one = w.ddp_model(features)
    one.trainer.strategy = None
    one.fit(joined, epochs=w.EPOCHS, verbose=0)
    got = ctrkit.load(root / "ddp_iter.ctrkit").state_dict()
    for k, v in one.state_dict().items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=1e-5, msg=k)
    for k, v in logs[0]["history"].items():  # the gathered epoch metrics of the 18 batches
        assert len(v) == w.EPOCHS


@needs_torchrec
@pytest.mark.slow
def test_predict_and_evaluate_from_shards_return_every_row_in_stream_order(iter_run):
    import iterable_worker as w
    root, features, logs = iter_run
    data = w.batches(root)
    x = {k: np.concatenate([b[0][k] for b in data]) for k in data[0][0]}
    y = np.concatenate([b[1] for b in data])
    for name in ("ddp", "torchrec"):
        one = ctrkit.load(root / f"{name}_iter.ctrkit")
        want = one.predict(x)
        for r in (0, 1):
            got = torch.load(root / f"{name}_pred-{r}.pt", weights_only=True).numpy()
            assert got.shape == (len(y), 1)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    one = ctrkit.load(root / "ddp_iter.ctrkit")
    one.compile("sgd", "binary_crossentropy")
    assert logs[0]["evaluate"]["loss"] == pytest.approx(one.evaluate(x, y)["loss"], abs=1e-6)


@needs_torchrec
@pytest.mark.slow
def test_what_cannot_work_is_refused_on_every_rank_with_the_fix(iter_run):
    *_, logs = iter_run
    for log in logs:
        assert "drop_last=True), which drops the last batches" in log["drop_last"]
        assert "wrap the iterable in ctrkit.data.shard_by_rank(data)" in log["plain"]
        assert "iterables have [4, 5] batches" in log["lengths"]
        assert "at step 3 ranks [0] ran out while others had batches" in log["ran_out"]
