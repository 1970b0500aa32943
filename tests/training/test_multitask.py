"""Multi-task training (issue 26): label forms, missing labels, loss weights, logs, errors."""
import csv

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit.callbacks import CSVLogger, EarlyStopping
from ctrkit.errors import ConfigError, InputError
from ctrkit.tasks import Tasks, prepare_targets

N = 400


@pytest.fixture(scope="module")
def data():
    from ctrkit.datasets import make_synthetic
    x, y, features = make_synthetic(n_rows=N, n_users=50, n_items=80, n_categories=6, maxlen=5,
                                    embedding_dim=4, seed=2)
    rng = np.random.default_rng(0)
    buy = (y * (rng.random(N) < 0.5)).astype(np.float32)
    return x, np.stack([y, buy], 1).astype(np.float32), features


def build(features, name="mmoe", **kw):
    kw.setdefault("task_names", ("ctr", "cvr"))
    extra = {"tower_dnn_hidden_units": (8,)}
    if name in ("mmoe", "ple"):
        extra.update(expert_dnn_hidden_units=(8,), gate_dnn_hidden_units=())
    if name == "shared_bottom":
        extra["bottom_dnn_hidden_units"] = (8,)
    return ctrkit.build(name, features, seed=0, **{**extra, **kw})


def trained(features, x, y, **compile_kw):
    model = build(features)
    model.compile("adam", lr=1e-2, metrics=["auc"], **compile_kw)
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    return model, history.history


def test_the_label_forms_give_the_same_training(data):
    """dict by task name, (n, T) array, list of arrays, DataFrame: one training."""
    x, y, features = data
    forms = {"array": y, "dict": {"cvr": y[:, 1], "ctr": y[:, 0]},
             "list": [y[:, 0], y[:, 1]], "frame": pd.DataFrame({"cvr": y[:, 1], "ctr": y[:, 0]})}
    runs = {k: trained(features, x, v) for k, v in forms.items()}
    ref_model, ref_hist = runs["array"]
    for k, (model, hist) in runs.items():
        assert hist == ref_hist, k
        for (name, a), b in zip(ref_model.state_dict().items(), model.state_dict().values()):
            assert torch.equal(a, b), (k, name)


def test_compile_forms_give_the_same_training(data):
    """loss/loss_weights/metrics as one value, a dict or a list in task order."""
    x, y, features = data
    a = trained(features, x, y, loss="binary_crossentropy", loss_weights=[1.0, 0.5])[1]
    b = trained(features, x, y, loss={"cvr": "logloss", "ctr": "binary_crossentropy"},
                loss_weights={"ctr": 1.0, "cvr": 0.5})[1]
    assert a == b


def test_logs_use_keras_names_and_the_total_is_the_weighted_sum(data):
    x, y, features = data
    model = build(features)
    model.compile("adam", lr=1e-2, metrics={"ctr": ["auc"], "cvr": ["auc", "logloss"]},
                  loss_weights=[2.0, 0.5])
    hist = model.fit(x, y, batch_size=64, epochs=1, verbose=0, validation_split=0.25).history
    assert set(hist) == {"loss", "ctr_loss", "cvr_loss", "ctr_auc", "cvr_auc", "cvr_logloss",
                         "val_loss", "val_ctr_loss", "val_cvr_loss", "val_ctr_auc",
                         "val_cvr_auc", "val_cvr_logloss"}
    # the validation total is recomputed over the whole pass: exactly the weighted sum
    assert hist["val_loss"][0] == pytest.approx(
        2.0 * hist["val_ctr_loss"][0] + 0.5 * hist["val_cvr_loss"][0], rel=1e-5)
    # cvr_logloss (metric) and cvr_loss (the task's loss) agree
    assert hist["val_cvr_logloss"][0] == pytest.approx(hist["val_cvr_loss"][0], rel=1e-4)
    ev = model.evaluate(x, y)
    assert ev["loss"] == pytest.approx(2.0 * ev["ctr_loss"] + 0.5 * ev["cvr_loss"], rel=1e-5)


def test_nan_labels_add_nothing_to_the_task(data):
    """A row without a task's label: its loss and metrics are those of the labelled rows."""
    x, y, features = data
    model = build(features)
    model.compile("adam", metrics=["auc"])
    missing = y.copy()
    missing[::3, 1] = np.nan
    keep = ~np.isnan(missing[:, 1])
    full = model.evaluate(x, missing)
    sub = model.evaluate({k: v[keep] for k, v in x.items()}, y[keep])
    assert full["cvr_loss"] == pytest.approx(sub["cvr_loss"], rel=1e-6)
    assert full["cvr_auc"] == pytest.approx(sub["cvr_auc"], rel=1e-12)
    assert full["ctr_loss"] != pytest.approx(sub["ctr_loss"], rel=1e-6)  # ctr uses every row


def _grads(model, x, y, weights):
    model.compile("sgd", loss_weights=weights)
    trainer = model.trainer
    data = trainer.prepare(x, y)
    batch = next(iter(data.batches(len(data))))
    model.zero_grad()
    model.train()
    trainer._loss(model(batch.x), batch.y, batch.w).backward()
    return torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel())
                      for p in model.parameters()])


def test_a_task_without_labels_in_a_batch_contributes_zero_gradient(data):
    x, y, features = data
    model = build(features)
    no_cvr = y.copy()
    no_cvr[:, 1] = np.nan
    g_missing = _grads(model, x, no_cvr, [1.0, 1.0])
    g_ctr_only = _grads(model, x, y, [1.0, 0.0])
    assert torch.isfinite(g_missing).all()
    torch.testing.assert_close(g_missing, g_ctr_only, rtol=0, atol=0)


@settings(max_examples=8, deadline=None)
@given(k=st.floats(0.0, 8.0, allow_nan=False), which=st.integers(0, 1))
def test_scaling_a_loss_weight_scales_its_gradient_contribution(data, k, which):
    x, y, features = data
    model = build(features, dnn_dropout=0.0)
    base = [1.0, 1.0]
    w_zero, w_k = list(base), list(base)
    w_zero[which], w_k[which] = 0.0, k
    g1, g0, gk = (_grads(model, x, y, w) for w in (base, w_zero, w_k))
    torch.testing.assert_close(gk - g0, k * (g1 - g0), rtol=1e-4, atol=1e-6)


def test_esmm_ctcvr_is_ctr_times_cvr(data):
    x, y, features = data
    model = build(features, name="esmm", task_names=("ctr", "ctcvr"))
    pred = model.predict(x)
    source = model.input_source(x)
    batch = next(iter(source.batches(N))).x
    model.eval()
    with torch.no_grad():
        z = model.ctr_cvr_logits(batch).double()
    p = torch.sigmoid(z).numpy()
    np.testing.assert_allclose(pred[:, 0], p[:, 0], rtol=1e-6)
    np.testing.assert_allclose(pred[:, 1], p[:, 0] * p[:, 1], rtol=1e-5)
    assert (pred[:, 1] <= pred[:, 0] + 1e-7).all()


def test_esmm_needs_two_binary_tasks(data):
    _, _, features = data
    with pytest.raises(ConfigError, match="exactly two binary tasks"):
        build(features, name="esmm", task_names=("a", "b", "c"),
              task_types=("binary",) * 3)


def test_early_stopping_and_csv_logger_per_task(data, tmp_path):
    x, y, features = data
    model = build(features)
    model.compile("adam", lr=1e-2, metrics=["auc"])
    stop = EarlyStopping("val_cvr_auc", patience=0, min_delta=1.0)  # never improves by 1
    path = tmp_path / "log.csv"
    hist = model.fit(x, y, batch_size=64, epochs=5, verbose=0, validation_split=0.25,
                     callbacks=[stop, CSVLogger(str(path))])
    assert len(hist.epoch) == 2  # epoch 0 sets the best, epoch 1 does not improve by 1
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and "val_cvr_auc" in rows[0] and "ctr_loss" in rows[0]
    assert float(rows[1]["val_cvr_auc"]) == pytest.approx(hist.history["val_cvr_auc"][1])


def test_regression_task_gets_mse_and_identity_output(data):
    x, y, features = data
    model = build(features, task_types=("binary", "regression"))
    model.compile("adam", lr=1e-2)
    assert [l.name for l in model.trainer.losses] == ["binary_crossentropy", "mse"]
    rating = y.copy()
    rating[:, 1] = 3.0 + 2 * y[:, 1]
    model.fit(x, rating, batch_size=64, epochs=3, verbose=0)
    pred = model.predict(x)
    assert ((pred[:, 0] > 0) & (pred[:, 0] < 1)).all() and pred[:, 1].mean() > 1.5


@pytest.mark.parametrize("y, match", [
    (lambda y: y[:, :1], r"shape \(400, 1\)"),
    (lambda y: {"ctr": y[:, 0]}, r"missing \['cvr'\]"),
    (lambda y: {"ctr": y[:, 0], "cvr": y[:, 1], "buy": y[:, 1]}, r"unknown \['buy'\]"),
    (lambda y: np.stack([y[:, 0], y[:, 1] * 2], 1), r"label 2.0 at row .*'cvr' is binary"),
    (lambda y: np.stack([y[:, 0], np.full(len(y), np.inf)], 1), "infinite label at row 0"),
])
def test_bad_labels_are_refused_naming_the_task(data, y, match):
    x, labels, features = data
    model = build(features)
    model.compile("adam")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(InputError, match=match):
        model.fit(x, y(labels), verbose=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_bad_compile_arguments_are_refused(data):
    x, y, features = data
    model = build(features)
    with pytest.raises(ConfigError, match="loss_weights for task 'cvr'"):
        model.compile("adam", loss_weights=[1.0, -1.0])
    with pytest.raises(ConfigError, match="list of 3 entries but the model has 2 tasks"):
        model.compile("adam", loss=["logloss"] * 3)
    with pytest.raises(ConfigError, match="does not fit task='regression'"):
        build(features, task_types=("binary", "regression")).compile(
            "adam", loss=["logloss", "logloss"])
    single = ctrkit.build("din", features)
    with pytest.raises(ConfigError, match="this model has one output"):
        single.compile("adam", loss_weights=[1.0])
    single.compile("adam")
    with pytest.raises(ConfigError, match="one output"):
        single.predict(x, as_dict=True)


def test_task_declarations_are_checked():
    with pytest.raises(ConfigError, match="at least 2"):
        Tasks(("ctr",))
    with pytest.raises(ConfigError, match="distinct"):
        Tasks(("ctr", "ctr"))
    with pytest.raises(ConfigError, match="one type per task"):
        Tasks(("ctr", "cvr"), ("binary",))
    with pytest.raises(ConfigError, match="must each be one of"):
        Tasks(("ctr", "cvr"), ("binary", "multiclass"))
    t = Tasks(("a", "b"))
    assert prepare_targets([np.array([1, 0]), np.array([0, 1])], 2, t).tolist() == \
        [[1.0, 0.0], [0.0, 1.0]]
    # a nested Python list is read as rows, as numpy reads it
    assert prepare_targets([[1, 0], [0, 1]], 2, t).tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_streamed_batches_carry_several_labels(data):
    """An iterable of (x_batch, y_batch) batches with (B, T) labels trains as the arrays do."""
    x, y, features = data
    a = build(features)
    a.compile("adam", lr=1e-2)
    a.fit(x, y, batch_size=100, epochs=1, verbose=0, shuffle=False)
    b = build(features)
    b.compile("adam", lr=1e-2)
    batches = [({k: v[i:i + 100] for k, v in x.items()}, y[i:i + 100]) for i in range(0, N, 100)]
    b.fit(batches, epochs=1, verbose=0)
    np.testing.assert_allclose(b.predict(x), a.predict(x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["esmm", "ple"])
def test_export_serves_one_column_per_task(data, tmp_path, name):
    x, y, features = data
    model = build(features, name=name, task_names=("ctr", "ctcvr"))
    served = torch.export.load(str(model.export(tmp_path / "m.pt2"))).module()
    cols = model.input_columns(x)
    from ctrkit.inputs import get_feature_names
    out = served(*[torch.as_tensor(cols[n]) for n in get_feature_names(model.features)])
    assert out.shape == (N, 2)
    np.testing.assert_allclose(out.double().detach().numpy(), model.predict(x), rtol=1e-5,
                               atol=1e-7)
