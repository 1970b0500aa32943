"""The lean exact epoch-end AUC (ctrkit/metrics/exact_auc.py) and chunked averages: the same
values as a brute-force pair count, sklearn and GAUC with one group, in a few bytes per row."""
from __future__ import annotations

import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, mean_squared_error
from sklearn.metrics import roc_auc_score

import ctrkit.metrics.exact_auc as exact_auc_module
import ctrkit.metrics.base as metrics_module
from ctrkit.errors import InputError
from ctrkit.metrics import gauc, get_metric
from ctrkit.metrics.exact_auc import exact_auc


def brute_force_auc(y, s, w=None):
    """Every positive/negative pair, in exact rational arithmetic (a tie counts one half)."""
    w = [Fraction(1)] * len(y) if w is None else [Fraction(float(v)) for v in w]
    wins = Fraction(0)
    P = sum(wi for yi, wi in zip(y, w) if yi == 1)
    N = sum(wi for yi, wi in zip(y, w) if yi == 0)
    for i in range(len(y)):
        if y[i] != 1:
            continue
        for j in range(len(y)):
            if y[j] == 0:
                wins += w[i] * w[j] * (1 if s[i] > s[j] else Fraction(1, 2) if s[i] == s[j] else 0)
    return wins / (P * N)


@st.composite
def labelled_scores(draw):
    n = draw(st.integers(2, 60))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    y[:2] = draw(st.sampled_from([[0, 1], [1, 0]]))        # both classes present
    levels = draw(st.integers(1, 2 * n))                   # few levels: many ties
    s = np.array(draw(st.lists(st.integers(0, levels), min_size=n, max_size=n)), float)
    s = s / levels + draw(st.sampled_from([0.0, -0.5, 3.0]))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    w = None
    if draw(st.booleans()):
        w = np.array(draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5, 3.0]),
                                   min_size=n, max_size=n)))
        w[:2] = 1.0                                        # both classes keep some weight
    return y, s.astype(dtype), w


@settings(max_examples=150, deadline=None)
@given(data=labelled_scores(), chunk=st.sampled_from([1, 3, 1 << 20]))
def test_exact_auc_equals_the_pair_count_sklearn_and_gauc(data, chunk):
    y, s, w = data
    old = exact_auc_module.CHUNK
    exact_auc_module.CHUNK = chunk                         # pieces split anywhere
    try:
        value, P, N = exact_auc(y, s, w)
    finally:
        exact_auc_module.CHUNK = old
    exact = brute_force_auc(y, s.tolist(), w)
    assert value == pytest.approx(float(exact), rel=1e-12, abs=1e-15)
    if w is None:
        assert value == float(exact)                       # integer counts: exact to the bit
        assert (P, N) == (float((y == 1).sum()), float((y == 0).sum()))
    assert value == pytest.approx(roc_auc_score(y, s, sample_weight=w), rel=1e-12, abs=1e-15)
    assert value == pytest.approx(gauc(y, s, np.zeros(len(y), dtype=np.int64),
                                       sample_weight=w), rel=1e-12, abs=1e-15)
    # the registered metric is this AUC (to the bit without weights)
    auc = get_metric("auc")(y, s, sample_weight=w)
    assert auc == value if w is None else auc == pytest.approx(value, rel=1e-12, abs=1e-15)


def test_positives_the_larger_class_and_the_smaller_give_the_same_value():
    # which class is sorted and which searched must not matter: flip labels and scores
    rng = np.random.default_rng(3)
    y = (rng.random(5000) < 0.8).astype(np.float32)
    s = np.round(rng.random(5000), 2)
    w = rng.uniform(0, 2, 5000)
    for weights in (None, w):
        a = exact_auc(y, s, weights)[0]
        b = exact_auc(1 - y, -s, weights)[0]
        assert a == pytest.approx(b, rel=1e-12)
        assert a == pytest.approx(roc_auc_score(y, s, sample_weight=weights), rel=1e-12)


def test_one_class_gives_nan_with_a_warning_and_bad_input_is_refused():
    assert np.isnan(exact_auc(np.ones(4), np.arange(4.0))[0])
    # weighted: a class present only with weight 0 has no pairs either
    assert np.isnan(exact_auc(np.array([1, 0, 0]), np.arange(3.0), np.array([0.0, 1, 1]))[0])
    with pytest.warns(RuntimeWarning, match="all labels are one class"):
        assert np.isnan(get_metric("auc")(np.zeros(3), np.arange(3.0)))
    with pytest.raises(InputError, match=r"label 2 at row 1; labels must be 0 or 1"):
        exact_auc(np.array([1, 2, 0]), np.arange(3.0))
    with pytest.raises(InputError, match=r"non-finite score nan at row 2"):
        get_metric("auc")(np.array([1, 0, 0]), np.array([0.1, 0.2, np.nan]))
    with pytest.raises(InputError, match="one entry per row"):
        exact_auc(np.array([1, 0]), np.arange(3.0))


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("rate", [0.25, 0.75])   # positives the smaller class, or negatives
@pytest.mark.parametrize("weighted", [False, True])
def test_the_epoch_end_auc_needs_a_few_bytes_per_row(monkeypatch, weighted, rate):
    # numpy reports its allocations to tracemalloc: the AUC over n rows allocates one bool per
    # row (and one more, briefly, to count the negatives) plus the smaller class sorted (8 bytes
    # per row of it; 32 weighted), never the int64
    # sort keys and float64 copies of the general GAUC (over 50 bytes per row).
    monkeypatch.setattr(exact_auc_module, "CHUNK", 256)     # a chunk's arrays: a few KB
    n = 200_000
    rng = np.random.default_rng(0)
    y = (rng.random(n) < rate).astype(np.float32)
    p = 1 / (1 + np.exp(-rng.normal(-1, 1.5, n)))
    w = rng.uniform(0.5, 2, n).astype(np.float32) if weighted else None
    small = min((y == 1).mean(), (y == 0).mean())
    per_row = (32 if weighted else 8) * small + 1          # + the label mask
    lean = _peak_bytes(lambda: exact_auc(y, p, w))
    assert lean <= per_row * n + 20 * 8 * 256 + 20_000
    general = _peak_bytes(lambda: gauc(y, p, np.zeros(n, dtype=np.int64), sample_weight=w))
    assert general > 5 * lean                               # what it replaced


@pytest.mark.parametrize("name, reference", [
    ("logloss", lambda y, p, w: log_loss(y, p, sample_weight=w)),
    ("mse", lambda y, p, w: mean_squared_error(y, p, sample_weight=w)),
    ("mae", lambda y, p, w: mean_absolute_error(y, p, sample_weight=w)),
    ("accuracy", lambda y, p, w: accuracy_score(y, (p >= 0.5).astype(np.float32), sample_weight=w))])
@pytest.mark.parametrize("weighted", [False, True])
def test_chunked_averages_equal_the_whole_array_ones(monkeypatch, name, reference, weighted):
    monkeypatch.setattr(metrics_module, "_CHUNK", 1000)     # many pieces, a partial last one
    rng = np.random.default_rng(1)
    n = 10_500
    y = (rng.random(n) < 0.3).astype(np.float32)
    p = rng.random(n)
    w = rng.uniform(0, 2, n).astype(np.float32) if weighted else None
    assert get_metric(name)(y, p, sample_weight=w) == pytest.approx(reference(y, p, w), rel=1e-12)
    # and in bounded memory: a few chunks, whatever the rows
    assert _peak_bytes(lambda: get_metric(name)(y, p, sample_weight=w)) < 10 * 8 * 1000 + 20_000


def test_logloss_clips_probabilities_as_before():
    y = np.array([1.0, 0.0, 1.0])
    p = np.array([0.0, 1.0, 0.5])                           # clipped to 1e-15, 1 - 1e-15
    expected = -(np.log(1e-15) + np.log(1 - (1 - 1e-15)) + np.log(0.5)) / 3
    assert get_metric("logloss")(y, p) == pytest.approx(expected, rel=1e-12)
