"""GAUC equals the per-group definition; it is wired into compile/fit/evaluate."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import roc_auc_score

import ctrkit
from ctrkit.errors import ConfigError, CtrkitError, InputError
from ctrkit.metrics import GAUC, GAUCResult, gauc, get_metric, metric_direction, rela_impr


def reference_gauc(y, p, g, weights, sample_weight=None):
    """The definition, one group at a time with sklearn."""
    num = den = 0.0
    used = skipped = 0
    for u in np.unique(g):
        m = g == u
        sw = None if sample_weight is None else sample_weight[m]
        pos = y[m] == 1
        wpos = pos.sum() if sw is None else sw[pos].sum()
        wneg = (~pos).sum() if sw is None else sw[~pos].sum()
        if wpos == 0 or wneg == 0:
            skipped += 1
            continue
        used += 1
        auc = roc_auc_score(y[m], p[m], sample_weight=sw)
        w = {"impressions": wpos + wneg, "clicks": wpos, "uniform": 1.0}[weights]
        num += w * auc
        den += w
    return num / den, used, skipped


@st.composite
def grouped_data(draw):
    n = draw(st.integers(2, 60))
    n_groups = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_groups, n)
    y = rng.integers(0, 2, n)
    p = rng.integers(0, draw(st.integers(1, 6)), n) / 4.0  # few levels: many ties
    # force at least one group with both classes
    g[:2], y[:2] = g[0], [0, 1]
    return y, p, g, rng


@settings(max_examples=30, deadline=None)
@given(grouped_data(), st.sampled_from(["impressions", "clicks", "uniform"]), st.booleans())
def test_gauc_equals_per_group_roc_auc_score(data, weights, weighted):
    y, p, g, rng = data
    sw = rng.integers(0, 4, len(y)).astype(float) if weighted else None
    if weighted and not ((sw[y == 1] > 0).any() and (sw[y == 0] > 0).any()):
        sw[:2] = 1.0
    try:
        expected, used, skipped = reference_gauc(y, p, g, weights, sw)
    except ZeroDivisionError:  # pragma: no cover - excluded by construction
        return
    if used == 0:
        with pytest.raises(InputError):
            gauc(y, p, g, weights, sample_weight=sw)
        return
    res = gauc(y, p, g, weights, sample_weight=sw, return_details=True)
    assert isinstance(res, GAUCResult)
    assert res.value == pytest.approx(expected, abs=1e-12)
    assert (res.n_groups_used, res.n_groups_skipped) == (used, skipped)
    assert res.n_groups == len(np.unique(g))
    assert gauc(y, p, g, weights, sample_weight=sw) == res.value


def test_integer_sample_weight_equals_repeating_rows():
    rng = np.random.default_rng(3)
    y, p, g = rng.integers(0, 2, 200), rng.integers(0, 5, 200) / 4, rng.integers(0, 20, 200)
    w = rng.integers(0, 4, 200)
    rep = np.repeat(np.arange(200), w)
    for weights in ("impressions", "clicks", "uniform"):
        a = gauc(y, p, g, weights, sample_weight=w.astype(float))
        b = gauc(y[rep], p[rep], g[rep], weights)
        assert a == pytest.approx(b, abs=1e-12)


def test_ties_count_half_and_skipped_groups_are_counted():
    # group 1: one pos, one neg, same score -> 0.5; group 2: perfect -> 1; group 3: one class
    y = np.array([1, 0, 1, 0, 1, 1, 1])
    p = np.array([0.3, 0.3, 0.9, 0.1, 0.2, 0.5, 0.7])
    g = np.array(["a", "a", "b", "b", "c", "c", "c"], dtype=object)
    res = gauc(y, p, g, return_details=True)
    assert res.value == pytest.approx(0.75)
    assert (res.n_groups, res.n_groups_used, res.n_groups_skipped, res.n_rows_skipped) == (3, 2, 1, 3)
    assert list(res.groups) == ["a", "b"] and list(res.group_auc) == [0.5, 1.0]
    # clicks weighting: one click each; uniform: equal; both 0.75 here
    assert gauc(y, p, g, "clicks") == pytest.approx(0.75)
    # impressions weight the rows: group a has 4 rows -> (4*0.5 + 2*1) / 6
    y2, p2 = np.concatenate([y, [1, 0]]), np.concatenate([p, [0.4, 0.4]])
    g2 = np.concatenate([g, np.array(["a", "a"], dtype=object)])
    assert gauc(y2, p2, g2) == pytest.approx((4 * 0.5 + 2 * 1.0) / 6)
    assert gauc(y2, p2, g2, "uniform") == pytest.approx(0.75)
    assert gauc(y2, p2, g2, "clicks") == pytest.approx((2 * 0.5 + 1 * 1.0) / 3)


def test_large_and_negative_group_ids_and_float32_ties():
    g = np.array([-2 ** 62, -2 ** 62, 2 ** 62, 2 ** 62], dtype=np.int64)
    p = np.array([0.1, 0.1, 0.2, 0.3], dtype=np.float32)
    assert gauc([1, 0, 0, 1], p, g, "uniform") == pytest.approx((0.5 + 1.0) / 2)


def test_bad_input_raises_ctrkit_errors():
    with pytest.raises(InputError, match=r"lengths 3, 3 and 2"):
        gauc([1, 0, 1], [0.1, 0.2, 0.3], [1, 1])
    with pytest.raises(InputError, match=r"every one of the 2 group\(s\) has labels of one class"):
        gauc([1, 1, 0], [0.1, 0.2, 0.3], [1, 1, 2])
    with pytest.raises(InputError, match=r"label 2 at row 1"):
        gauc([1, 2, 0], [0.1, 0.2, 0.3], [1, 1, 1])
    with pytest.raises(InputError, match=r"non-finite score nan at row 2"):
        gauc([1, 0, 0], [0.1, 0.2, np.nan], [1, 1, 1])
    with pytest.raises(ConfigError, match=r"weights must be one of \['impressions', 'clicks', 'uniform'\], got 'rows'"):
        gauc([1, 0], [0.1, 0.2], [1, 1], weights="rows")
    with pytest.raises(ConfigError, match="weights must be one of"):
        GAUC(group="user", weights="users")


def test_rela_impr_matches_the_paper_definition():
    assert rela_impr(0.8818, 0.8624) == pytest.approx(((0.8818 - 0.5) / (0.8624 - 0.5) - 1) * 100)
    assert rela_impr(0.75, 0.75) == 0.0
    assert rela_impr(0.5, 0.75) == pytest.approx(-100.0)
    with pytest.raises(InputError, match="auc_base is 0.5"):
        rela_impr(0.7, 0.5)
    with pytest.raises(InputError, match=r"auc_model must be an AUC in \[0, 1\], got 1.2"):
        rela_impr(1.2, 0.7)


def test_gauc_metric_is_registered_with_direction_max():
    m = get_metric("gauc")
    assert (m.name, m.direction, m.needs_groups, m.group) == ("gauc", "max", True, None)
    assert metric_direction("val_gauc") == "max"
    g = GAUC(group="user", weights="clicks", name="gauc_clicks")
    assert (g.name, g.group, g.needs_groups) == ("gauc_clicks", "user", True)


def _user_auc_data():
    """A small data set where GAUC and AUC differ: the user shifts every score."""
    from ctrkit.datasets import make_synthetic
    return make_synthetic(n_rows=600, n_users=30, n_items=100, n_categories=8, maxlen=5,
                          embedding_dim=4, seed=2)


@pytest.mark.parametrize("how", ["name", "object"])
def test_gauc_in_fit_validation_and_evaluate(how):
    x, y, features = _user_auc_data()
    model = ctrkit.build("din", features, dnn_hidden_units=(8,), att_hidden_size=(8,))
    if how == "name":
        model.compile("adam", "binary_crossentropy", metrics=["auc", "gauc"], gauc_group="user")
    else:
        model.compile("adam", "binary_crossentropy", metrics=["auc", GAUC(group="user")])
    hist = model.fit(x, y, batch_size=128, epochs=2, verbose=0, validation_split=0.25)
    assert len(hist.history["gauc"]) == 2 and len(hist.history["val_gauc"]) == 2
    # the logged validation GAUC is gauc() of the model's validation predictions
    split = int(len(y) * 0.75)
    xv = {k: v[split:] for k, v in x.items()}
    pred = model.predict(xv).ravel()
    assert hist.history["val_gauc"][-1] == pytest.approx(gauc(y[split:], pred, xv["user"]),
                                                         abs=1e-6)
    ev = model.evaluate(x, y)
    assert ev["gauc"] == pytest.approx(gauc(y, model.predict(x).ravel(), x["user"]), abs=1e-6)
    assert ev["gauc"] != pytest.approx(ev["auc"], abs=1e-9)


def test_gauc_without_a_group_is_a_config_error():
    x, y, features = _user_auc_data()
    model = ctrkit.build("din", features, dnn_hidden_units=(8,), att_hidden_size=(8,))
    with pytest.raises(ConfigError, match=r"gauc_group='user'"):
        model.compile("adam", "binary_crossentropy", metrics=["gauc"])


def test_gauc_on_one_class_validation_is_a_clear_error_not_nan():
    x, y, features = _user_auc_data()
    model = ctrkit.build("din", features, dnn_hidden_units=(8,), att_hidden_size=(8,))
    model.compile("adam", "binary_crossentropy", metrics=["gauc"], gauc_group="user")
    with pytest.raises(CtrkitError, match="one class only"):
        model.evaluate(x, np.ones_like(y))


@settings(max_examples=40, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5), st.integers(0, 3)),
                     min_size=2, max_size=80))
def test_auc_metric_equals_sklearn_with_ties_and_weights(data):
    from sklearn.metrics import roc_auc_score
    from ctrkit.metrics import get_metric
    y, s, w = (np.array(c, dtype=np.float64) for c in zip(*data))
    auc = get_metric("auc")
    if len(np.unique(y)) < 2:
        with pytest.warns(RuntimeWarning, match="AUC is undefined"):
            assert np.isnan(auc(y, s / 5))
        return
    assert abs(auc(y, s / 5) - roc_auc_score(y, s / 5)) < 1e-12
    if (w[y == 1].sum() > 0) and (w[y == 0].sum() > 0):
        assert abs(auc(y, s / 5, sample_weight=w) - roc_auc_score(y, s / 5, sample_weight=w)) < 1e-12
