"""Behaviour of every built-in callback, the shared Monitor, and the hook protocol."""
from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ctrkit
from ctrkit.callbacks import (Callback, CSVLogger, EarlyStopping, History, LambdaCallback,
                              LearningRateScheduler, ModelCheckpoint, Monitor, ProgbarLogger,
                              ReduceLROnPlateau, TerminateOnNaN)
from ctrkit.errors import CallbackError
from ctrkit.persistence import read_model_file
from ctrkit.registry import CALLBACKS, METRICS
from trainer_helpers import WeightsPerEpoch, rows, same_state, scripted_metric, small_din


@pytest.fixture
def tut(tutorial):
    """(x, y, model) on the 3-row tutorial: one step per epoch with batch_size=3."""
    x, y, features, _ = tutorial
    return x, y, small_din(features)


def fit_scripted(x, y, model, values, callbacks, direction="min", epochs=None, **kw):
    """Fit with a metric 'score' whose epoch values are ``values``; returns the History."""
    model.compile("adam", metrics=[scripted_metric("score", values, direction)], lr=0.01)
    return model.fit(x, y, batch_size=3, epochs=epochs or len(values), verbose=0,
                     callbacks=callbacks, **kw)


# --------------------------------------------------------------------------- EarlyStopping
def test_early_stopping_stops_after_patience_and_restores_best_weights(tut):
    x, y, model = tut
    weights = WeightsPerEpoch()
    stop = EarlyStopping(monitor="score", patience=2, restore_best_weights=True)
    #        epoch:  0    1    2     3     4    5
    values = [1.0, 0.8, 0.9, 0.85, 0.7, 0.6]
    h = fit_scripted(x, y, model, values, [weights, stop])
    # best at epoch 1; epochs 2 and 3 do not improve -> stop at the end of epoch 3
    assert h.epoch == [0, 1, 2, 3]
    assert h.history["score"] == values[:4]
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1 and stop.best == 0.8
    assert same_state(model.state_dict(), weights.states[1])
    assert not same_state(model.state_dict(), weights.states[3])  # restoring changed something


def test_early_stopping_says_why_it_stopped_with_the_best_value_rounded_as_the_epoch_lines(
        tut, capsys):
    x, y, model = tut
    stop = EarlyStopping(monitor="score", patience=2, restore_best_weights=True, verbose=1)
    fit_scripted(x, y, model, [1.0, 0.7659269326938754, 0.9, 0.85, 0.7], [stop])
    out = capsys.readouterr().out
    assert ("Epoch 4: early stopping: score did not improve for 2 epochs (patience 2); "
            "best 0.7659 at epoch 2.\n") in out
    assert "Restored the weights of epoch 2." in out and "0.76592" not in out


def test_early_stopping_message_names_the_baseline(tut, capsys):
    x, y, model = tut
    stop = EarlyStopping(monitor="score", patience=1, baseline=0.5, verbose=1)
    fit_scripted(x, y, model, [0.9, 0.8, 0.95], [stop])  # 'min': 0.9 is worse than 0.5
    out = capsys.readouterr().out
    # Keras 3 never stops at epoch 0, so the first stop comes at epoch 1 (printed 1-based)
    assert ("Epoch 2: early stopping: score did not beat the baseline 0.5000 for 2 epochs "
            "(patience 1); best 0.8000 at epoch 2.") in out


def test_early_stopping_mode_auto_reads_the_registry_direction(tut):
    x, y, model = tut
    values = [0.6, 0.7, 0.65, 0.66, 0.9]
    with METRICS.scope():
        METRICS.register("score", scripted_metric("score", values, "max"))
        model.compile("adam", metrics=["score"])
        stop = EarlyStopping(monitor="score", patience=1)  # auto -> 'max' from the registry
        h = model.fit(x, y, batch_size=3, epochs=5, verbose=0, callbacks=[stop])
    assert stop.monitor.direction == "max"
    assert h.epoch == [0, 1, 2] and stop.best == 0.7


def test_early_stopping_explicit_mode_overrides_the_registry(tut):
    x, y, model = tut
    stop = EarlyStopping(monitor="score", patience=1, mode="max")
    h = fit_scripted(x, y, model, [1.0, 0.8, 0.9, 2.0], [stop], direction="min")
    assert h.epoch == [0, 1] and stop.best == 1.0


def test_early_stopping_min_delta(tut):
    x, y, model = tut
    values = [1.0, 0.95, 0.9, 0.85]
    stop = EarlyStopping(monitor="score", patience=0, min_delta=0.1)
    assert fit_scripted(x, y, model, values, [stop]).epoch == [0, 1]
    model2 = small_din(tut[2].features)
    plain = EarlyStopping(monitor="score", patience=0)
    assert fit_scripted(x, y, model2, values, [plain]).epoch == [0, 1, 2, 3]


def test_early_stopping_baseline_counts_improving_epochs_that_miss_it(tut):
    x, y, model = tut
    stop = EarlyStopping(monitor="score", patience=2, baseline=0.5)
    h = fit_scripted(x, y, model, [1.0, 0.9, 0.8, 0.7, 0.4], [stop])
    assert h.epoch == [0, 1] and stop.stopped_epoch == 1 and stop.best == 0.9


def test_early_stopping_start_from_epoch_ignores_warm_up(tut):
    x, y, model = tut
    stop = EarlyStopping(monitor="score", patience=0, start_from_epoch=3)
    h = fit_scripted(x, y, model, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [stop])
    assert h.epoch == [0, 1, 2, 3, 4] and stop.best == 4.0 and stop.best_epoch == 3


def test_early_stopping_resets_so_it_can_be_reused(tut):
    x, y, model = tut
    stop = EarlyStopping(monitor="score", patience=1)
    values = [1.0, 0.5, 0.6, 0.7]
    assert fit_scripted(x, y, model, values, [stop]).epoch == [0, 1, 2]
    assert fit_scripted(x, y, model, values, [stop]).epoch == [0, 1, 2]
    assert stop.best == 0.5


def test_early_stopping_on_real_val_loss(small_synthetic):
    """Without scripting: stops exactly when val_loss has not improved for `patience` epochs."""
    x, y, features = small_synthetic
    xt, yt = rows(x, y, 400)
    model = small_din(features)
    model.compile("adam", metrics=["auc"], lr=0.05)
    stop = EarlyStopping(patience=1, restore_best_weights=True)
    h = model.fit(xt, yt, batch_size=50, epochs=30, verbose=0, validation_split=0.25,
                  callbacks=[stop])
    vl = h.history["val_loss"]
    best = int(np.argmin(vl))
    assert stop.stopped_epoch == len(vl) - 1 == best + 1 < 29
    # the restored weights are the best epoch's: evaluating them gives its val_loss again
    xv, yv = rows(x, y, 400, 300)
    np.testing.assert_allclose(model.evaluate(xv, yv)["loss"], vl[best], rtol=1e-5)


def test_unknown_monitor_key_raises_after_the_first_epoch_listing_keys(tut):
    x, y, model = tut
    model.compile("adam", metrics=["auc"])
    seen = []
    count = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    with pytest.raises(CallbackError, match=r"EarlyStopping monitors 'val_auc', but fit logged "
                       r"no such key .*logged keys are \['loss', 'auc'\]\. Validation keys "
                       r"\(val_\*\) are logged only when fit gets validation_data"):
        model.fit(x, y, batch_size=3, epochs=5, verbose=0,
                  callbacks=[count, EarlyStopping(monitor="val_auc")])
    assert seen == [0]  # raised at the end of the first epoch, not silently ignored


def test_misspelt_monitor_key_suggests_the_logged_one(tut):
    x, y, model = tut
    model.compile("adam", metrics=["auc"])
    with pytest.raises(CallbackError, match=r"monitors 'val_aucc'.*Did you mean 'val_auc'\?"):
        model.fit(x, y, batch_size=3, epochs=2, verbose=0, validation_data=(x, y),
                  callbacks=[ModelCheckpoint("unused.pt", "val_aucc", save_best_only=True)])


def test_auto_mode_needs_a_known_direction(tut):
    x, y, model = tut
    model.compile("adam")
    sched = LearningRateScheduler(lambda epoch, lr: lr)
    with pytest.raises(CallbackError, match=r"cannot tell whether 'lr' should go up or down.*"
                                            r"pass mode='max' or mode='min'"):
        model.fit(x, y, batch_size=3, epochs=2, verbose=0,
                  callbacks=[sched, EarlyStopping(monitor="lr")])


@pytest.mark.parametrize("make, match", [
    (lambda: EarlyStopping(mode="up"), r"EarlyStopping\(mode='up'\) is not one of \['auto', "
                                       r"'min', 'max'\]"),
    (lambda: EarlyStopping(patience=-1), r"EarlyStopping\(patience=-1\) must be an integer"),
    (lambda: EarlyStopping(min_delta=-0.1), r"min_delta=-0.1\) must be a finite number >= 0"),
    (lambda: ReduceLROnPlateau(factor=1.5), r"ReduceLROnPlateau\(factor=1.5\) must lie in"),
    (lambda: ReduceLROnPlateau(cooldown=-2), r"cooldown=-2\) must be an integer >= 0"),
    (lambda: LearningRateScheduler(0.1), r"schedule=0.1\) must be a function"),
    (lambda: LambdaCallback(on_epoch_ends=print), r"unknown hook 'on_epoch_ends'"),
    (lambda: LambdaCallback(on_epoch_end=3), r"on_epoch_end=3\) must be a function"),
    (lambda: CSVLogger("a.csv", separator="::"), r"separator='::'\) must be one character"),
])
def test_bad_callback_arguments(make, match):
    with pytest.raises(CallbackError, match=match):
        make()


# --------------------------------------------------------------------------- Monitor
@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=20), st.sampled_from(["min", "max"]),
       st.sampled_from([0.0, 0.25]))
def test_monitor_improvements_are_exactly_the_running_records(values, mode, delta):
    m = Monitor("Test", "score", mode, delta)
    m.reset()
    sign = 1.0 if mode == "max" else -1.0
    best = None
    for v in values:
        expected = best is None or sign * (v - best) > delta
        assert m.update(v) == expected
        if expected:
            best = v
        assert m.best == best


def test_monitor_nan_never_improves():
    m = Monitor("Test", "val_loss", "auto", 0.0)
    m.reset()
    assert m.update(float("nan")) is False and m.best is None
    assert m.update(1.0) and not m.update(float("nan")) and m.best == 1.0
    assert m.direction == "min"


# --------------------------------------------------------------------------- ModelCheckpoint
def test_model_checkpoint_writes_only_on_improvement(tut, tmp_path):
    x, y, model = tut
    weights = WeightsPerEpoch()
    ckpt = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}-{score:.2f}.pt", monitor="score",
                           save_best_only=True)
    values = [0.5, 0.6, 0.4, 0.45, 0.3]
    fit_scripted(x, y, model, values, [weights, ckpt])
    names = ["ckpt-01-0.50.pt", "ckpt-03-0.40.pt", "ckpt-05-0.30.pt"]
    assert sorted(os.listdir(tmp_path)) == names  # no other epoch, no temp file left over
    assert ckpt.saved == [str(tmp_path / n) for n in names] and ckpt.best == 0.3
    for name, epoch in zip(names, (0, 2, 4)):
        read_model_file(tmp_path / name)  # verified; plain data + tensors only
        reloaded = ctrkit.load(tmp_path / name)
        assert reloaded.registered_name == "din"
        assert same_state(reloaded.state_dict(), weights.states[epoch])


def test_model_checkpoint_weights_only_reloads_into_a_fresh_model(tut, tmp_path):
    x, y, model = tut
    path = tmp_path / "best.pt"
    ckpt = ModelCheckpoint(path, monitor="score", save_best_only=True, save_weights_only=True,
                           mode="max")
    weights = WeightsPerEpoch()
    fit_scripted(x, y, model, [0.1, 0.9, 0.5], [weights, ckpt])
    assert ckpt.saved == [str(path), str(path)]
    fresh = small_din(model.features, seed=99)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert same_state(fresh.state_dict(), weights.states[1])
    model.load_state_dict(weights.states[1])
    np.testing.assert_array_equal(fresh.predict(x), model.predict(x))


def test_model_checkpoint_every_epoch_and_model_save(tut, tmp_path):
    x, y, model = tut
    written = []

    def save(path):  # what a persistence plug-in's model.save would do
        written.append(path)
        with open(path, "w") as f:
            f.write("saved by model.save")

    model.save = save
    ckpt = ModelCheckpoint(str(tmp_path / "m-{epoch}.ctrkit"))
    fit_scripted(x, y, model, [3.0, 2.0, 4.0], [ckpt])
    assert sorted(os.listdir(tmp_path)) == ["m-1.ctrkit", "m-2.ctrkit", "m-3.ctrkit"]
    assert (tmp_path / "m-3.ctrkit").read_text() == "saved by model.save"
    assert all(os.path.dirname(p) == str(tmp_path) and p.endswith(".ctrkit") for p in written)


def test_model_checkpoint_missing_placeholder(tut, tmp_path):
    x, y, model = tut
    model.compile("adam", metrics=["auc"])
    with pytest.raises(CallbackError, match=r"names \{val_auc\}, which fit does not log; "
                                            r"available placeholders are \['epoch'\] \+ "
                                            r"\['loss', 'auc'\]"):
        model.fit(x, y, batch_size=3, epochs=2, verbose=0,
                  callbacks=[ModelCheckpoint(tmp_path / "m-{val_auc:.3f}.pt")])
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- learning rate
def test_reduce_lr_on_plateau_lowers_the_optimizer_lr(tut):
    x, y, model = tut
    plateau = ReduceLROnPlateau(monitor="score", factor=0.5, patience=1, min_lr=0.03)
    model.compile("sgd", metrics=[scripted_metric("score", [1.0] * 5)], lr=0.1)
    h = model.fit(x, y, batch_size=3, epochs=5, verbose=0, callbacks=[plateau])
    # lr logged is the one each epoch ran with; 0.1 -> 0.05 -> floor 0.03
    assert h.history["lr"] == [0.1, 0.1, 0.05, 0.03, 0.03]
    assert model.trainer.optimizer.param_groups[0]["lr"] == 0.03


def test_reduce_lr_on_plateau_cooldown_and_improvement(tut):
    x, y, model = tut
    plateau = ReduceLROnPlateau(monitor="score", factor=0.5, patience=1, cooldown=2)
    model.compile("sgd", metrics=[scripted_metric("score", [1, 1, 1, 1, 1, 0.5, 0.6])], lr=0.1)
    h = model.fit(x, y, batch_size=3, epochs=7, verbose=0, callbacks=[plateau])
    assert h.history["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025]
    assert model.trainer.optimizer.param_groups[0]["lr"] == 0.0125


def test_the_param_group_lr_is_the_one_training_uses(tut):
    """What the lr callbacks change is what the optimizer steps with: lr 0 freezes weights."""
    x, y, model = tut
    model.compile("sgd", lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    model.trainer.optimizer.param_groups[0]["lr"] = 0.0
    model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_learning_rate_scheduler(tut):
    x, y, model = tut
    model.compile("adam", lr=0.1)
    sched = LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    h = model.fit(x, y, batch_size=3, epochs=3, verbose=0, callbacks=[sched])
    assert h.history["lr"] == [0.1, 0.05, 0.025]
    one_arg = LearningRateScheduler(lambda epoch: 1.0 / (epoch + 1))
    h = model.fit(x, y, batch_size=3, epochs=5, initial_epoch=3, verbose=0, callbacks=[one_arg])
    assert h.epoch == [3, 4] and h.history["lr"] == [0.25, 0.2]


def test_learning_rate_scheduler_rejects_bad_rates(tut):
    x, y, model = tut
    model.compile("adam", lr=0.001)
    sched = LearningRateScheduler(lambda epoch, lr: None if epoch == 1 else lr)
    with pytest.raises(CallbackError, match=r"schedule\(1, 0.001\) returned None; it must "
                                            r"return a finite learning rate >= 0"):
        model.fit(x, y, batch_size=3, epochs=3, verbose=0, callbacks=[sched])


def test_lr_callbacks_need_a_compiled_optimizer(tut):
    _, _, model = tut
    sched = LearningRateScheduler(lambda epoch, lr: lr)
    sched.set_model(model)
    with pytest.raises(CallbackError, match=r"model has no optimizer; call model.compile"):
        sched.on_train_begin({})


# --------------------------------------------------------------------------- CSVLogger
def read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_rows_equal_history(small_synthetic, tmp_path):
    x, y, features = small_synthetic
    xt, yt = rows(x, y, 200)
    model = small_din(features)
    model.compile("adam", metrics=["auc", "logloss"], lr=0.01)
    path = tmp_path / "logs" / "train.csv"
    plateau = ReduceLROnPlateau(patience=0, factor=0.5)
    h = model.fit(xt, yt, batch_size=50, epochs=3, verbose=0, validation_split=0.25,
                  callbacks=[plateau, CSVLogger(path, separator=";")])
    table = read_csv(path, ";")
    assert table[0] == ["epoch"] + list(h.history) and "lr" in h.history
    assert len(table) == 1 + len(h.epoch)
    for row, epoch in zip(table[1:], range(len(h.epoch))):
        assert int(row[0]) == h.epoch[epoch]
        assert [float(v) for v in row[1:]] == [h.history[k][epoch] for k in h.history]

    # append=True continues the same file with one header
    h2 = model.fit(xt, yt, batch_size=50, epochs=5, initial_epoch=3, verbose=0,
                   validation_split=0.25,
                   callbacks=[plateau, CSVLogger(path, separator=";", append=True)])
    table = read_csv(path, ";")
    assert [r[0] for r in table] == ["epoch", "0", "1", "2", "3", "4"]
    assert [float(v) for v in table[-1][1:]] == [h2.history[k][-1] for k in h2.history]

    # append=False starts over
    model.fit(xt, yt, batch_size=50, epochs=1, verbose=0, validation_split=0.25,
              callbacks=[plateau, CSVLogger(path, separator=";")])
    assert len(read_csv(path, ";")) == 2


def test_csv_logger_append_refuses_other_columns(tut, tmp_path):
    x, y, model = tut
    path = tmp_path / "log.csv"
    model.compile("adam", metrics=["auc"])
    model.fit(x, y, batch_size=3, epochs=1, verbose=0, callbacks=[CSVLogger(path)])
    model.compile("adam")
    with pytest.raises(CallbackError, match=r"has columns \['epoch', 'loss', 'auc'\], but this "
                                            r"run logs \['epoch', 'loss'\]"):
        model.fit(x, y, batch_size=3, epochs=1, verbose=0,
                  callbacks=[CSVLogger(path, append=True)])


# --------------------------------------------------------------------------- TerminateOnNaN
def test_terminate_on_nan_stops_at_the_first_nan_batch(small_synthetic):
    x, y, features = small_synthetic
    xt, yt = rows(x, y, 20)
    steps = []

    def loss(p, t):  # finite for three training steps, NaN from the fourth on
        if torch.is_grad_enabled():  # a training step, not validation
            steps.append(1)
        out = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
        return out * float("nan") if len(steps) > 3 else out

    model = small_din(features)
    model.compile("sgd", loss=loss, metrics=["auc"])
    stop = TerminateOnNaN()
    with pytest.warns(RuntimeWarning, match=r"loss of batch 1 in epoch 1 is nan; training "
                                            r"stopped"):
        h = model.fit(xt, yt, batch_size=10, epochs=5, verbose=0, shuffle=False,
                      validation_data=(xt, yt), callbacks=[stop])
    assert (stop.stopped_epoch, stop.stopped_batch) == (1, 1)
    assert h.epoch == [0, 1] and math.isfinite(h.history["loss"][0])
    assert math.isnan(h.history["loss"][1])
    # the diverged weights give NaN predictions: the metrics say NaN instead of crashing
    assert math.isnan(h.history["val_auc"][1])


# --------------------------------------------------------------------------- protocol
class Recorder(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        if name.startswith("on_"):
            def record(*args):
                logs = args[-1]
                assert isinstance(logs, dict)  # every hook gets a logs dict
                self.calls.append((name,) + tuple(a for a in args[:-1]))
            return record
        return super().__getattribute__(name)


def test_hook_order_of_fit_evaluate_and_predict(tutorial):
    x, y, features, _ = tutorial
    model = small_din(features)
    model.compile("adam")
    rec = Recorder()
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, validation_data=(x, y), callbacks=[rec])
    epoch = lambda e: ([("on_epoch_begin", e)]
                       + [("on_train_batch_begin", 0), ("on_train_batch_end", 0),
                          ("on_train_batch_begin", 1), ("on_train_batch_end", 1)]
                       + [("on_test_begin",), ("on_test_batch_begin", 0), ("on_test_batch_end", 0),
                          ("on_test_batch_begin", 1), ("on_test_batch_end", 1), ("on_test_end",)]
                       + [("on_epoch_end", e)])
    assert rec.calls == [("on_train_begin",)] + epoch(0) + epoch(1) + [("on_train_end",)]
    rec.calls = []
    model.evaluate(x, y, batch_size=2, callbacks=[rec])
    assert rec.calls == [("on_test_begin",), ("on_test_batch_begin", 0), ("on_test_batch_end", 0),
                         ("on_test_batch_begin", 1), ("on_test_batch_end", 1), ("on_test_end",)]
    rec.calls = []
    model.predict(x, batch_size=3, callbacks=[rec])
    assert rec.calls == [("on_predict_begin",), ("on_predict_batch_begin", 0),
                         ("on_predict_batch_end", 0), ("on_predict_end",)]


def test_logs_carry_loss_metrics_and_val_metrics(tutorial):
    x, y, features, _ = tutorial
    model = small_din(features)
    model.compile("adam", metrics=["auc", "logloss"])
    batch_logs, epoch_logs, params = [], [], []
    cb = LambdaCallback(on_train_batch_end=lambda b, logs: batch_logs.append(dict(logs)),
                        on_epoch_end=lambda e, logs: epoch_logs.append(dict(logs)),
                        on_train_begin=lambda logs: params.append(dict(cb.params)))
    h = model.fit(x, y, batch_size=2, epochs=2, verbose=0, validation_data=(x, y), callbacks=[cb])
    assert len(batch_logs) == 4 and all(math.isfinite(b["loss"]) for b in batch_logs)
    assert [list(e) for e in epoch_logs] == [["loss", "auc", "logloss", "val_loss", "val_auc",
                                              "val_logloss"]] * 2
    assert params[0]["epochs"] == 2 and params[0]["samples"] == 3 and params[0]["steps"] == 2
    assert h.params == params[0]


def test_lambda_callback_hooks_get_index_and_logs(tut):
    x, y, model = tut
    model.compile("adam")
    got = []
    cb = LambdaCallback(on_epoch_begin=lambda e, logs: got.append(("begin", e, logs)),
                        on_train_end=lambda logs: got.append(("end", sorted(logs))))
    model.fit(x, y, batch_size=3, epochs=2, verbose=0, callbacks=[cb])
    assert got == [("begin", 0, {}), ("begin", 1, {}), ("end", ["loss"])]


def test_a_callback_stops_training_mid_epoch_through_model_stop_training(small_synthetic):
    x, y, features = small_synthetic
    xt, yt = rows(x, y, 100)
    model = small_din(features)
    model.compile("adam")
    batches = []

    def on_batch_end(batch, logs):
        batches.append(batch)
        if len(batches) == 7:
            model.stop_training = True

    h = model.fit(xt, yt, batch_size=20, epochs=4, verbose=0,
                  callbacks=[LambdaCallback(on_train_batch_end=on_batch_end)])
    assert batches == [0, 1, 2, 3, 4, 0, 1] and h.epoch == [0, 1]


def test_non_callback_objects_are_refused(tut):
    x, y, model = tut
    model.compile("adam")
    with pytest.raises(CallbackError, match=r"callbacks\[1\] is 'early_stopping' \(str\), not a "
                                            r"ctrkit.callbacks.Callback\. Subclass"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[History(), "early_stopping"])


def test_every_builtin_callback_is_registered():
    assert CALLBACKS.get("early_stopping") is EarlyStopping
    builtins = {EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, LearningRateScheduler,
                CSVLogger, TerminateOnNaN, LambdaCallback, History, ProgbarLogger,
                ctrkit.callbacks.TensorBoard}
    assert builtins == {cls for _, cls in CALLBACKS.items()}
    assert all(name in ctrkit.callbacks.__all__ for name in
               ("EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler",
                "CSVLogger", "TerminateOnNaN", "LambdaCallback", "History", "ProgbarLogger"))
