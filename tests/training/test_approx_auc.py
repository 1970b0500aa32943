"""The bounded-memory AUC: its stated error bound holds, and streamed passes keep no rows."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from ctrkit.metrics.approx_auc import AUCHistogram
from trainer_helpers import rows, small_din


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 400), seed=st.integers(0, 10 ** 6), ties=st.booleans(),
       weighted=st.booleans())
def test_the_error_never_exceeds_the_stated_bound(n, seed, ties, weighted):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    p = rng.random(n) ** 3
    if ties:
        p = np.round(p, 2)
    w = rng.uniform(0.1, 3, n) if weighted else None
    h = AUCHistogram()
    for part in np.array_split(np.arange(n), 3):  # batch by batch
        h.update(y[part], p[part], None if w is None else w[part])
    auc, bound = h.result()
    exact = roc_auc_score(y, p, sample_weight=w)
    assert abs(auc - exact) <= bound + 1e-12
    assert 0 <= bound <= 0.5


def test_continuous_scores_are_within_1e_4_and_distinct_bins_are_exact():
    rng = np.random.default_rng(0)
    n = 200_000
    logit = rng.normal(-3, 1.5, n)                      # CTR-like: most probabilities small
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype(np.float64)
    h = AUCHistogram()
    h.update(y, p)
    auc, bound = h.result()
    assert bound < 1e-4 and abs(auc - roc_auc_score(y, p)) < 1e-4
    # scores in different bins (here 64 well separated values, heavily tied): exact
    q = np.round(rng.random(n) * 63) / 63
    h = AUCHistogram()
    h.update(y, q)
    assert h.result()[0] == pytest.approx(roc_auc_score(y, q), abs=1e-12)
    assert len(np.unique(h.bins(q))) == 64


def test_bins_are_monotone_in_the_probability():
    p = np.sort(np.r_[0.0, 1e-300, 2.0 ** -50, 0.5 - 1e-12, 0.5, 0.5 + 1e-12,
                      np.random.default_rng(1).random(1000), 1 - 1e-12, 1.0])
    h = AUCHistogram()
    b = h.bins(p)
    assert (np.diff(b) >= 0).all() and b[0] == 0 and b[-1] == h.n_bins - 1
    mid = h.bins(np.array([0.5 - 1e-6, 0.5, 0.5 + 1e-6]))
    assert mid[0] < mid[1] < mid[2]        # around 0.5 the bins are finest
    assert len(np.unique(h.bins(np.linspace(0.01, 0.0102, 40)))) == 40  # 2.4e-6 wide there


def test_a_streamed_fit_with_approx_auc_keeps_no_per_row_store(small_synthetic, tmp_path,
                                                               monkeypatch):
    pytest.importorskip("pyarrow", reason="pyarrow (the ctrkit[parquet] extra) is not installed")
    from ctrkit.data import ParquetDataset, write_parquet
    import ctrkit.training.trainer as trainer_module
    x, y, features = small_synthetic
    write_parquet(x, y, tmp_path / "t.parquet", row_group_size=300)
    ds = ParquetDataset(tmp_path / "t.parquet")
    exact = small_din(features)
    exact.compile("adam", metrics=["auc"], lr=0.01)
    he = exact.fit(ds, batch_size=128, epochs=2, verbose=0, validation_data=ds)

    class NoStore:
        def __init__(self, *a, **k):
            raise AssertionError("a per-row store was made")
    bounded = small_din(features)
    bounded.compile("adam", metrics=["approx_auc"], lr=0.01)
    monkeypatch.setattr(trainer_module, "PredictionStore", NoStore)
    hb = bounded.fit(ds, batch_size=128, epochs=2, verbose=0, validation_data=ds)
    ev = bounded.evaluate(ds)
    # same training (metrics do not touch it): the approximations sit next to the exact values
    np.testing.assert_allclose(hb.history["approx_auc"], he.history["auc"], atol=1e-4)
    np.testing.assert_allclose(hb.history["val_approx_auc"], he.history["val_auc"], atol=1e-4)
    np.testing.assert_allclose(hb.history["val_loss"], he.history["val_loss"], rtol=1e-5)
    assert ev["approx_auc"] == hb.history["val_approx_auc"][-1]
    # in memory the store is kept (it costs nothing more there) and the value is the same
    monkeypatch.undo()
    xs, ys = rows(x, y, 600)
    assert bounded.evaluate(xs, ys)["approx_auc"] == pytest.approx(
        _approx(ys, bounded.predict(xs)), abs=1e-12)


def _approx(y, p):
    h = AUCHistogram()
    h.update(y, p.ravel())
    return h.result()[0]
