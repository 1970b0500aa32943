"""The training loop: modes, exact metrics, weights, validation, determinism, output, bad input."""
from __future__ import annotations

import io
import math
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ctrkit.callbacks import Callback, ProgbarLogger
from ctrkit.errors import ConfigError, InputError
from ctrkit.registry import METRICS
from ctrkit.metrics.base import Metric
from trainer_helpers import rows, same_state, small_din, snapshot


class Phase(Callback):
    """Tags each forward pass with the phase the trainer is in (train / test)."""

    def __init__(self, model, hostile: bool = False) -> None:
        super().__init__()
        self.phase = None
        self.forwards = []  # (phase, model.training) per forward call
        self.hostile = hostile
        model.register_forward_pre_hook(
            lambda module, args: self.forwards.append((self.phase, module.training)))

    def on_train_batch_begin(self, batch, logs=None):
        self.phase = "train"
        if self.hostile:  # a careless callback that leaves the model in eval mode
            self.model.eval()

    def on_test_begin(self, logs=None):
        self.phase = "test"

    def on_epoch_end(self, epoch, logs=None):
        self.phase = "predict"
        self.model.predict({k: v[:5] for k, v in self.x.items()})  # a callback that predicts
        self.phase = None


@pytest.fixture
def data(small_synthetic):
    x, y, features = small_synthetic
    return (*rows(x, y, 200), features)


def capture_train_predictions(model):
    """Record sigmoid(logits) of every forward pass made with autograd on (training steps)."""
    preds = []

    def hook(module, args, out):
        if torch.is_grad_enabled():
            preds.append(torch.sigmoid(out.detach()).numpy().copy())
    model.register_forward_hook(hook)
    return preds


# --------------------------------------------------------------------------- modes
@pytest.mark.parametrize("hostile", [False, True])
def test_every_training_batch_runs_in_train_mode_even_after_validation(data, hostile):
    x, y, features = data
    model = small_din(features, dnn_dropout=0.3, dnn_use_bn=True)
    model.compile("adam", metrics=["auc"])
    phase = Phase(model, hostile)
    phase.x = x
    model.fit(x, y, batch_size=50, epochs=3, verbose=0, validation_split=0.2, callbacks=[phase])
    train = [t for p, t in phase.forwards if p == "train"]
    other = [t for p, t in phase.forwards if p in ("test", "predict")]
    assert len(train) == 3 * 4 and all(train)            # 160 rows / 50 -> 4 steps, 3 epochs
    assert len(other) == 3 * 2 and not any(other)         # validation + callback predict: eval
    assert model.training  # fit leaves the model as a training model


# --------------------------------------------------------------------------- exact metrics
def test_one_class_batches_give_the_exact_epoch_auc(data):
    x, y, features = data
    order = np.argsort(y, kind="stable")[np.r_[0:20, -20:0]]  # 20 negatives, then 20 positives
    xs, ys = {k: v[order] for k, v in x.items()}, y[order]
    model = small_din(features)
    model.compile("adam", metrics=["auc", "logloss"], lr=0.01)
    preds = capture_train_predictions(model)
    h = model.fit(xs, ys, batch_size=10, epochs=2, verbose=0, shuffle=False)
    assert len(preds) == 8 and all(len(np.unique(ys[i * 10:(i + 1) * 10])) == 1 for i in range(4))
    for epoch in range(2):
        p = np.concatenate(preds[4 * epoch:4 * (epoch + 1)])
        auc = h.history["auc"][epoch]
        assert math.isfinite(auc) and auc == pytest.approx(roc_auc_score(ys, p), rel=1e-12, abs=1e-12)
        ll = -np.mean(ys * np.log(p) + (1 - ys) * np.log(1 - p))
        np.testing.assert_allclose(h.history["logloss"][epoch], ll, rtol=1e-5)
        np.testing.assert_allclose(h.history["loss"][epoch], ll, rtol=1e-5)


def test_sample_weight_weighs_the_training_loss_and_metrics(data):
    x, y, features = data
    w = np.random.default_rng(0).uniform(0, 3, size=len(y))
    model = small_din(features)
    model.compile("adam", metrics=["logloss", "auc"], lr=0.01)
    preds = capture_train_predictions(model)
    h = model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False, sample_weight=w)
    p = np.concatenate(preds)
    ll = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(h.history["loss"][0], np.mean(w * ll), rtol=1e-5)
    np.testing.assert_allclose(h.history["logloss"][0], np.average(ll, weights=w), rtol=1e-5)
    w32 = w.astype(np.float32)  # weights travel as float32, like the labels
    assert h.history["auc"][0] == pytest.approx(roc_auc_score(y, p, sample_weight=w32), rel=1e-12, abs=1e-12)
    assert h.history["auc"][0] != roc_auc_score(y, p)


def test_rows_with_zero_weight_do_not_influence_training(data):
    x, y, features = data
    w = np.where(np.arange(len(y)) % 3 == 0, 0.0, 1.0)
    flipped = np.where(w == 0, 1 - y, y)
    states = []
    for labels in (y, flipped):
        model = small_din(features, l2_reg_embedding=0.0)
        model.compile("adam", lr=0.01)
        model.fit(x, labels, batch_size=32, epochs=2, verbose=0, sample_weight=w)
        states.append(snapshot(model))
    assert same_state(*states)


def test_validation_data_with_weights(data):
    x, y, features = data
    xt, yt = rows(x, y, 150)
    xv, yv = rows(x, y, 200, 150)
    wv = np.linspace(0.1, 2.0, len(yv))
    model = small_din(features)
    model.compile("adam", metrics=["logloss"], lr=0.01)
    h = model.fit(xt, yt, batch_size=50, epochs=1, verbose=0, validation_data=(xv, yv, wv))
    weighted = model.evaluate(xv, yv, sample_weight=wv)
    plain = model.evaluate(xv, yv)
    assert h.history["val_loss"][0] == pytest.approx(weighted["loss"], rel=1e-6)
    assert h.history["val_logloss"][0] == pytest.approx(weighted["logloss"], rel=1e-6)
    assert weighted["logloss"] != pytest.approx(plain["logloss"], rel=1e-6)
    p = model.predict(xv).ravel()
    ll = -(yv * np.log(p) + (1 - yv) * np.log(1 - p))
    assert weighted["loss"] == pytest.approx(np.mean(wv * ll), rel=1e-5)


def test_validation_split_holds_out_the_last_rows_before_shuffling(data):
    x, y, features = data
    model = small_din(features)
    model.compile("adam", metrics=["auc"])
    h = model.fit(x, y, batch_size=50, epochs=1, verbose=0, validation_split=0.25)
    xv, yv = rows(x, y, 200, 150)
    ev = model.evaluate(xv, yv)
    assert h.params["samples"] == 150 and h.params["val_samples"] == 50
    assert h.history["val_loss"][0] == pytest.approx(ev["loss"], rel=1e-6)
    assert h.history["val_auc"][0] == ev["auc"]


@pytest.mark.parametrize("weighted", [False, True])
def test_epoch_loss_does_not_depend_on_batch_size(data, weighted):
    """Mean reduction + size-weighted batch means: the epoch loss is the mean over rows."""
    x, y, features = data
    w = np.linspace(0.0, 2.0, len(y)) if weighted else None
    losses = []
    for batch_size in (7, 64, 200):
        model = small_din(features, att_activation="relu", l2_reg_embedding=0.0)  # no batch stats
        model.compile("sgd", metrics=["logloss"])
        model.trainer.optimizer.param_groups[0]["lr"] = 0.0  # keep the weights fixed
        h = model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, sample_weight=w)
        losses.append(h.history["loss"][0])
    np.testing.assert_allclose(losses, losses[0], rtol=1e-6)
    assert losses[0] == pytest.approx(model.evaluate(x, y, sample_weight=w)["loss"], rel=1e-6)


def test_regression_task_logs_mse_and_mae(data):
    x, _, features = data
    target = np.linspace(-1.0, 3.0, len(x["user"]))
    model = small_din(features, task="regression")
    model.compile("adam", "mse", metrics=["mse", "mae"], lr=0.01)
    preds = []
    model.register_forward_hook(lambda m, a, out: preds.append(out.detach().numpy().copy())
                                if torch.is_grad_enabled() else None)
    h = model.fit(x, target, batch_size=50, epochs=1, verbose=0, shuffle=False)
    p = np.concatenate(preds)
    np.testing.assert_allclose(h.history["mse"][0], np.mean((p - target) ** 2), rtol=1e-5)
    np.testing.assert_allclose(h.history["mae"][0], np.mean(np.abs(p - target)), rtol=1e-5)
    np.testing.assert_allclose(h.history["loss"][0], h.history["mse"][0], rtol=1e-5)


def test_metric_directions():
    from ctrkit.metrics.base import metric_direction
    assert {k: metric_direction(k) for k in ("auc", "val_auc", "accuracy", "loss", "val_loss",
                                             "logloss", "binary_crossentropy", "mse", "mae")} == {
        "auc": "max", "val_auc": "max", "accuracy": "max", "loss": "min", "val_loss": "min",
        "logloss": "min", "binary_crossentropy": "min", "mse": "min", "mae": "min"}
    assert metric_direction("lr") is None


# --------------------------------------------------------------------------- optimizer
def test_compile_optimizer_by_name_with_lr_or_as_an_instance(data):
    x, y, features = data
    model = small_din(features)
    model.compile("adagrad", lr=0.05)
    assert isinstance(model.trainer.optimizer, torch.optim.Adagrad)
    assert model.trainer.optimizer.param_groups[0]["lr"] == 0.05
    model.compile("rmsprop")
    assert model.trainer.optimizer.param_groups[0]["lr"] == 0.01  # DeepCTR's default
    sgd = torch.optim.SGD(model.parameters(), lr=0.3)
    model.compile(sgd)
    assert model.trainer.optimizer is sgd and sgd.param_groups[0]["lr"] == 0.3
    model.compile(sgd, lr=0.2)
    assert sgd.param_groups[0]["lr"] == 0.2
    # the instance is the one that steps: lr 0 in it leaves every parameter as it was
    sgd.param_groups[0]["lr"] = 0.0
    before = snapshot(model)
    model.fit(x, y, batch_size=50, epochs=1, verbose=0)
    assert all(torch.equal(before[k], v) for k, v in model.named_parameters())


def test_an_optimizer_of_another_model_is_refused(data):
    _, _, features = data
    model, other = small_din(features), small_din(features)
    with pytest.raises(ConfigError, match=r"The Adam instance passed to compile holds none of "
                                          r"this model's parameters"):
        model.compile(torch.optim.Adam(other.parameters()))


def test_clipnorm_bounds_each_step(data):
    x, y, features = data
    model = small_din(features, l2_reg_embedding=0.0)
    model.compile("sgd", lr=1.0, clipnorm=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    model.fit(x, y, batch_size=len(y), epochs=1, verbose=0)  # one step
    step = torch.sqrt(sum(((p.detach() - b) ** 2).sum()
                          for p, b in zip(model.parameters(), before)))
    assert 0 < float(step) <= 1e-3 * (1 + 1e-4)
    with pytest.raises(ConfigError, match=r"clipnorm must be > 0, got 0"):
        model.compile("sgd", clipnorm=0)


# --------------------------------------------------------------------------- reproducibility
def run(features, x, y, seed):
    model = small_din(features, seed=seed, dnn_dropout=0.5)
    model.compile("adam", metrics=["auc"], lr=0.01)
    h = model.fit(x, y, batch_size=32, epochs=3, verbose=0, validation_split=0.2)
    return snapshot(model), h.history


def test_seed_makes_runs_identical_and_leaves_the_global_rng_alone(data):
    x, y, features = data
    torch.manual_seed(123)
    before = torch.get_rng_state()
    np_before = np.random.get_state()[1].copy()
    w1, h1 = run(features, x, y, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    assert np.array_equal(np.random.get_state()[1], np_before)
    torch.manual_seed(999)  # the user's global RNG does not leak into a seeded run
    w2, h2 = run(features, x, y, seed=7)
    assert same_state(w1, w2) and h1 == h2
    w3, h3 = run(features, x, y, seed=8)
    assert not same_state(w1, w3) and h1 != h3


# --------------------------------------------------------------------------- devices
def test_device_choices():
    from ctrkit.models.base import resolve_device
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match=r"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', "
                                          r"got 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_clear_error(tutorial, device):
    _, _, features, _ = tutorial
    with pytest.raises(ConfigError, match=rf"device='{device}' but CUDA is not available here; "
                                          r"use device='cpu' or device='auto'"):
        small_din(features, device=device)


def test_predictions_are_numpy_on_the_cpu(tutorial):
    x, y, features, _ = tutorial
    model = small_din(features, device="auto")
    model.compile("adam")
    model.fit(x, y, epochs=1, verbose=0)
    pred = model.predict(x)
    assert isinstance(pred, np.ndarray) and pred.shape == (3, 1) and pred.dtype == np.float64
    assert ((pred > 0) & (pred < 1)).all()


# --------------------------------------------------------------------------- verbose
def test_verbose_0_prints_nothing_at_all(data, capfd):
    x, y, features = data
    model = small_din(features)
    model.compile("adam", metrics=["auc"])
    model.fit(x, y, batch_size=50, epochs=2, verbose=0, validation_split=0.2)
    model.evaluate(x, y)
    model.predict(x)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_verbose_2_prints_one_line_per_epoch(data, capsys):
    x, y, features = data
    model = small_din(features)
    model.compile("adam", metrics=["auc"])
    model.fit(x, y, batch_size=50, epochs=3, verbose=2, validation_split=0.2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        parts = line.split(" - ")
        assert parts[0] == f"Epoch {i + 1}/3" and parts[1].endswith("s")
        assert [p.split(": ")[0] for p in parts[2:]] == ["loss", "auc", "val_loss", "val_auc"]


def test_verbose_1_plain_lines_when_not_a_tty(data, capsys):
    x, y, features = data
    model = small_din(features)
    model.compile("adam")
    model.fit(x, y, batch_size=50, epochs=2, verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out
    assert out.splitlines()[0] == "Train on 200 samples, validate on 0 samples, 4 steps per epoch"
    assert [ln.split(" - ")[0] for ln in out.splitlines()[1:]] == ["Epoch 1/2", "Epoch 2/2"]


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_verbose_1_progress_bar_with_rate_and_eta_on_a_tty(data, monkeypatch):
    x, y, features = data
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stdout", tty)
    model = small_din(features)
    model.compile("adam")
    model.fit(x, y, batch_size=50, epochs=2, verbose=1)
    monkeypatch.undo()
    out = tty.getvalue()
    assert out.count("\n") == 1 + 2 * 2  # header, then "Epoch e/E" and the final bar per epoch
    assert "Epoch 1/2\n" in out and "Epoch 2/2\n" in out
    assert "\r1/4 [" in out and "steps/s - ETA" in out  # first step always draws
    assert "\r4/4 [==============================]" in out and "- loss: " in out


def test_progbar_redraws_at_most_once_per_interval():
    """Only the first and the last step draw when the interval is long."""
    bar = ProgbarLogger(verbose=1, stream=FakeTTY(), interval=3600)
    bar.set_params({"epochs": 1, "steps": 100})
    bar.on_epoch_begin(0, {})
    for step in range(100):
        bar.on_train_batch_end(step, {"loss": 0.5})
    drawn = bar.stream.getvalue()
    assert drawn.count("\r") == 2 and "\r1/100 [" in drawn and "\r100/100 [" in drawn


def test_history_plot_writes_a_png(tutorial, tmp_path):
    x, y, features, _ = tutorial
    model = small_din(features)
    model.compile("adam", metrics=["auc"])
    h = model.fit(x, y, batch_size=3, epochs=3, verbose=0, validation_data=(x, y))
    fig = h.plot(keys=("loss", "auc"), path=tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [[line.get_label() for line in ax.get_lines()] for ax in fig.axes]
    assert labels == [["loss", "val_loss"], ["auc", "val_auc"]]
    with pytest.raises(KeyError, match=r"History has no \['gauc'\]"):
        h.plot(keys=("gauc",))


# --------------------------------------------------------------------------- bad input
@pytest.fixture
def compiled(tutorial):
    x, y, features, _ = tutorial
    model = small_din(features)
    model.compile("adam", metrics=["auc"])
    return x, y, model


@pytest.mark.parametrize("split", [1.0, -0.1, 1.5, "0.2", True])
def test_validation_split_outside_0_1(compiled, split):
    x, y, model = compiled
    with pytest.raises(ConfigError, match=r"validation_split must lie in \[0, 1\), got "
                                          + repr(split).replace(".", r"\.")):
        model.fit(x, y, epochs=1, verbose=0, validation_split=split)


def test_validation_split_that_leaves_no_rows(compiled):
    x, y, model = compiled
    with pytest.raises(ConfigError, match=r"validation_split=0\.8 leaves 0 training and 3 "
                                          r"validation rows out of 3; both must be >= 1"):
        model.fit(x, y, epochs=1, verbose=0, validation_split=0.8)


def test_validation_data_of_the_wrong_shape(compiled):
    x, y, model = compiled
    with pytest.raises(InputError, match=r"validation_data must be a tuple \(x_val, y_val\) or "
                                         r"\(x_val, y_val, sample_weight\), got tuple of length 1"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=(x,))
    with pytest.raises(InputError, match=r"In validation_data: y has 2 labels but x has 3 rows"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y[:2]))
    with pytest.raises(InputError, match=r"In validation_data: Sequence feature 'hist_item' has "
                                         r"shape \(3, 3\) but needs \(rows, maxlen=4\)"):
        bad = dict(x, hist_item=x["hist_item"][:, :3])
        model.fit(x, y, epochs=1, verbose=0, validation_data=(bad, y))


def test_validation_data_with_a_missing_feature(compiled):
    x, y, model = compiled
    before = snapshot(model)
    missing = {k: v for k, v in x.items() if k != "item"}
    with pytest.raises(InputError, match=r"In validation_data: x is missing feature\(s\) "
                                         r"\['item'\]"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=(missing, y))
    assert same_state(before, model.state_dict())  # nothing was trained


def test_all_zero_sample_weights(compiled):
    x, y, model = compiled
    with pytest.raises(InputError, match=r"sample_weight is 0 for every row"):
        model.fit(x, y, epochs=1, verbose=0, sample_weight=np.zeros(3))
    with pytest.raises(InputError, match=r"In validation_data: sample_weight is 0 for every row"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y, [0, 0, 0]))


@pytest.mark.parametrize("epochs, initial", [(3, 3), (2, 5), (0, 0)])
def test_epochs_must_exceed_initial_epoch(compiled, epochs, initial):
    x, y, model = compiled
    with pytest.raises(ConfigError, match=rf"epochs \({epochs}\) must be greater than "
                                          rf"initial_epoch \({initial}\)"):
        model.fit(x, y, epochs=epochs, initial_epoch=initial, verbose=0)


@pytest.mark.parametrize("kw, match", [
    ({"epochs": 2.5}, r"epochs must be an integer, got 2\.5"),
    ({"verbose": 3}, r"verbose must be 0 \(silent\), 1 \(progress bar\) or 2"),
    ({"batch_size": 0}, r"batch_size must be a positive integer, got 0"),
])
def test_other_bad_fit_arguments(compiled, kw, match):
    x, y, model = compiled
    with pytest.raises(ConfigError, match=match):
        model.fit(x, y, **{"verbose": 0, **kw})


def group_metric(calls):
    def fn(y, p, sample_weight=None, groups=None):
        calls.append(groups)
        return float(len(np.unique(groups)))
    return Metric("groups_seen", fn, "max", needs_groups=True)


def test_a_metric_that_needs_groups_without_them(compiled):
    x, y, model = compiled
    with METRICS.scope():
        METRICS.register("groups_seen", group_metric([]))
        with pytest.raises(ConfigError, match=r"Metric 'groups_seen' needs a group per row "
                                              r"\(e\.g\. the user\) but none was named; pass "
                                              r"compile\(\.\.\., gauc_group='user'\)"):
            model.compile("adam", metrics=["groups_seen"])
        model.compile("adam", metrics=["groups_seen"], gauc_group="session")
        with pytest.raises(InputError, match=r"x has no column 'session', which is needed here"):
            model.fit(x, y, epochs=1, verbose=0)


def test_a_group_metric_gets_the_groups_of_the_epoch(compiled):
    x, y, model = compiled
    calls = []
    with METRICS.scope():
        METRICS.register("groups_seen", group_metric(calls))
        model.compile("adam", metrics=["groups_seen"], gauc_group="user")
        h = model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False,
                      validation_data=(x, y))
    assert [list(g) for g in calls] == [[0, 1, 2], [0, 1, 2]]
    assert h.history["groups_seen"] == [3.0] and h.history["val_groups_seen"] == [3.0]
