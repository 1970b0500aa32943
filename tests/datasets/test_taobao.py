"""Taobao UserBehavior as click and purchase tasks (issue 26)."""
import os
from pathlib import Path

import numpy as np
import pytest

from ctrkit.datasets import load_taobao_userbehavior, taobao_multitask, taobao_path
from ctrkit.errors import ConfigError, DataNotFoundError, InputError

LOG = """\
1,10,100,pv,1000
1,11,101,pv,1001
1,10,100,buy,1002
1,12,100,cart,1003
2,11,101,pv,1000
2,13,102,fav,1004
2,11,101,buy,1005
3,12,100,pv,1001
3,14,102,pv,1006
3,10,100"""  # the last line is cut


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "UserBehavior.csv"
    path.write_text(LOG)
    return path


def test_the_log_drops_only_a_cut_last_line(small, tmp_path):
    log = load_taobao_userbehavior(small)
    assert len(log["user"]) == 9 and log["user"].dtype == np.int64
    assert log["behavior"].tolist()[:3] == ["pv", "pv", "buy"]
    bad = tmp_path / "bad.csv"
    bad.write_text("1,10,100,pv,1000\n1,11,101,pv\n1,12,100,pv,1003\n")
    with pytest.raises(InputError, match="line 2 is incomplete"):
        load_taobao_userbehavior(bad)
    bad.write_text("1,10,100,pv,1000\n1,11,101,click,1001\n")
    with pytest.raises(InputError, match="line 2 has behaviour 'click'"):
        load_taobao_userbehavior(bad)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        taobao_path(tmp_path / "nothing.csv")
    assert taobao_path(tmp_path) == small  # a folder holding UserBehavior.csv


def test_tasks_rows_and_histories(small):
    splits, features = taobao_multitask(small, maxlen=3, negatives=2, embedding_dim=4,
                                        test_fraction=0.25, seed=1)
    x = {k: np.concatenate([splits["train"][0][k], splits["test"][0][k]])
         for k in splits["train"][0]}
    y = np.concatenate([splits["train"][1], splits["test"][1]])
    assert [f.name for f in features] == ["user", "item", "category", "hist_item",
                                          "hist_category"]
    # 7 interacted pairs (duplicates merged), 2 sampled pairs each
    assert y.shape == (21, 2) and y[:, 0].sum() == 7
    assert (y[:, 1] <= y[:, 0]).all()  # buy implies click
    assert y[:, 1].sum() == 2  # (1, 10) and (2, 11) were bought
    # the split is by time: every test row is at least as late as every train row
    assert splits["train"][0]["time"].max() <= splits["test"][0]["time"].min()
    # histories are earlier interacted pairs only: lengths from strictly earlier first events
    pos = y[:, 0] == 1
    user, t = x["user"], x["time"]
    for r in range(len(y)):
        earlier = pos & (user == user[r]) & (t < t[r])
        assert x["seq_length"][r] == min(3, int(earlier.sum())), r
    # a sampled pair is never an interacted one of that user
    pairs = {(u, i) for u, i in zip(user[pos], x["item"][pos])}
    assert not any((u, i) in pairs for u, i in zip(user[~pos], x["item"][~pos]))
    with pytest.raises(ConfigError, match="negatives"):
        taobao_multitask(small, negatives=0)


def test_the_real_head_file():
    path = os.environ.get("CTRKIT_TAOBAO")
    if not path or not Path(path).exists():
        pytest.skip("Taobao UserBehavior not available: set CTRKIT_TAOBAO to UserBehavior.csv")
    log = load_taobao_userbehavior(path)
    assert len(log["user"]) == 84475  # the cut 84,476th line is dropped
    counts = {b: int((log["behavior"] == b).sum()) for b in ("pv", "cart", "fav", "buy")}
    assert counts == {"pv": 75872, "cart": 4497, "fav": 2356, "buy": 1750}
    splits, _ = taobao_multitask(path)
    y = np.concatenate([splits["train"][1], splits["test"][1]])
    pairs = len(np.unique(log["user"] * (int(log["item"].max()) + 1) + log["item"]))
    assert y.shape == (2 * pairs, 2) and y[:, 0].sum() == pairs
    bought = log["behavior"] == "buy"
    assert y[:, 1].sum() == len(np.unique(log["user"][bought] * (int(log["item"].max()) + 1)
                                          + log["item"][bought]))
