"""The synthetic generator: deterministic, and its label follows the planted rule."""
import numpy as np
from sklearn.metrics import roc_auc_score

from ctrkit.datasets import make_synthetic, synthetic_click_probability


def test_same_seed_same_data_and_padding_is_zero():
    a, ya, _ = make_synthetic(n_rows=500, seed=3)
    b, yb, _ = make_synthetic(n_rows=500, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a) and np.array_equal(ya, yb)
    pad = np.arange(20)[None, :] >= a["seq_length"][:, None]
    assert (a["hist_item"][pad] == 0).all() and (a["hist_item"][~pad] > 0).all()


def test_click_rate_rises_with_category_matches_in_the_history():
    x, y, _ = make_synthetic(n_rows=20000, seed=0)
    matches = np.minimum((x["hist_cate"] == x["cate"][:, None]).sum(1), 3)
    rates = [y[matches == k].mean() for k in range(4)]
    assert all(b > a + 0.05 for a, b in zip(rates, rates[1:])), rates
    assert rates[0] < 0.2 and rates[2] > 0.8
    p = synthetic_click_probability(n_rows=20000, seed=0)
    assert roc_auc_score(y, p) > 0.8  # the planted signal is strong


def test_signal_zero_makes_labels_independent():
    x, y, _ = make_synthetic(n_rows=20000, seed=0, signal=0.0)
    matches = (x["hist_cate"] == x["cate"][:, None]).sum(1)
    assert abs(y[matches == 0].mean() - y[matches >= 2].mean()) < 0.03
