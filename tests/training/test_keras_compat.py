"""Regression tests of issue 15: what DeepCTR-Torch and Keras users write works as they expect.

Each test names the defect or missing feature it covers; each failed before the fix.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

import ctrkit
from ctrkit.callbacks import (BackupAndRestore, Callback, CallbackList, EarlyStopping, History,
                              ModelCheckpoint, TerminateOnNaN)
from ctrkit.errors import CallbackError, ConfigError, TrainingError
from trainer_helpers import rows, scripted_metric, small_din


@pytest.fixture
def tut(tutorial):
    x, y, features, _ = tutorial
    return x, y, small_din(features)


class Spy(Callback):
    """Records (hook, index) of the hooks it overrides."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def on_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch, dict(logs or {})))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, dict(logs or {})))


# ------------------------------------------------------------------ defect 1: names
@pytest.mark.parametrize("alias,target", [("acc", "accuracy"), ("binary_accuracy", "accuracy")])
def test_defect1_accuracy_aliases_are_logged_under_the_name_given(tut, alias, target):
    x, y, model = tut
    model.compile("adam", "binary_crossentropy", metrics=["binary_crossentropy", alias, target])
    h = model.fit(x, y, batch_size=3, epochs=2, verbose=0, validation_data=(x, y))
    assert h.history[alias] == h.history[target]
    assert h.history["val_" + alias] == h.history["val_" + target]
    assert all(0.0 <= v <= 1.0 for v in h.history[alias])
    # mode='auto' knows the alias' direction: val_acc goes up
    stop = EarlyStopping(monitor="val_" + alias, mode="auto")
    stop.set_model(model)
    stop.on_train_begin()
    stop.on_epoch_end(0, {"val_" + alias: 0.5})
    stop.on_epoch_end(1, {"val_" + alias: 0.6})
    assert stop.best == 0.6


def test_defect1_regression_aliases_for_metrics_and_loss(tut):
    x, _, _ = tut
    features = tut[2].features
    model = ctrkit.build("din", features, task="regression", dnn_hidden_units=(8,),
                         att_hidden_size=(8,), seed=0, init_std=0.05)
    y = np.array([0.5, 1.5, 2.5])
    model.compile("adam", "mean_squared_error",
                  metrics=["mean_squared_error", "mse", "mean_absolute_error", "mae"])
    h = model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    assert h.history["mean_squared_error"] == h.history["mse"]
    assert h.history["mean_absolute_error"] == h.history["mae"]
    assert model.trainer.loss.name == "mse"


def test_defect1_learning_rate_keyword(tut):
    _, _, model = tut
    model.compile("adam", "binary_crossentropy", learning_rate=0.123)
    assert model.trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.123)
    with pytest.raises(ConfigError, match=r"lr=0.1 and learning_rate=0.2"):
        model.compile("adam", lr=0.1, learning_rate=0.2)


# ------------------------------------------------------------------ defect 2: batch aliases
def test_defect2_on_batch_begin_and_end_overrides_are_called(tut):
    x, y, model = tut
    spy = Spy()
    model.compile("adam")
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[spy])
    kinds = [(k, b) for k, b, _ in spy.calls]
    assert kinds == [("batch_begin", 0), ("batch_end", 0), ("batch_begin", 1), ("batch_end", 1)] * 2
    assert all(math.isfinite(logs["loss"]) for k, _, logs in spy.calls if k == "batch_end")


def test_defect2_overriding_both_names_calls_the_train_batch_hook_once(tut):
    x, y, model = tut

    class Both(Spy):
        def on_train_batch_end(self, batch, logs=None):
            self.calls.append(("train_batch_end", batch, {}))

    spy = Both()
    model.compile("adam")
    model.fit(x, y, batch_size=3, epochs=1, verbose=0, callbacks=[spy])
    # as in Keras: the override of on_train_batch_end replaces the alias, nothing runs twice
    assert [k for k, _, _ in spy.calls] == ["batch_begin", "train_batch_end"]


def test_defect2_callbacklist_calls_each_name_as_keras_does():
    class Both(Spy):
        def on_train_batch_end(self, batch, logs=None):
            self.calls.append(("train_batch_end", batch, dict(logs or {})))

    spy = Both()
    cbs = CallbackList([spy])
    cbs.on_batch_end(3, {"loss": 1.0})         # Keras 3: the callbacks' on_batch_end
    cbs.on_train_batch_end(4, {"loss": 2.0})   # the override, which replaces the alias
    assert spy.calls == [("batch_end", 3, {"loss": 1.0}), ("train_batch_end", 4, {"loss": 2.0})]


# ------------------------------------------------------------------ defect 3: keyword logs
def test_defect3_callbacklist_hooks_take_logs_by_keyword():
    seen = []

    class Probe(Callback):
        def on_train_begin(self, logs=None):
            seen.append(("train_begin", logs))

        def on_epoch_end(self, epoch, logs=None):
            seen.append(("epoch_end", epoch, logs))

    cbs = CallbackList([Probe()])
    cbs.on_train_begin(logs={"phase": "train"})
    cbs.on_epoch_end(1, logs={"loss": 0.1})
    cbs.on_epoch_end(2)
    assert seen == [("train_begin", {"phase": "train"}), ("epoch_end", 1, {"loss": 0.1}),
                    ("epoch_end", 2, {})]
    with pytest.raises(TypeError, match="unexpected keyword"):
        cbs.on_train_begin(log={})
    with pytest.raises(TypeError, match=r"\(index, logs=None\)"):
        cbs.on_epoch_end()


# ------------------------------------------------------------------ defect 5: checkpoint fallback
class Plain(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.stop_training = False


def test_defect5_checkpoint_of_a_model_without_save_writes_the_documented_dict(tmp_path):
    model = Plain()
    path = tmp_path / "sub" / "full.pt"
    ckpt = ModelCheckpoint(str(path), save_weights_only=False)
    ckpt.set_model(model)
    ckpt.on_train_begin()
    ckpt.on_epoch_end(0, {"loss": 0.25})
    data = torch.load(path, weights_only=True)
    assert set(data) == {"format", "state_dict", "optimizer_state_dict", "epoch", "logs",
                         "model", "class"}
    assert data["format"] == "ctrkit-checkpoint" and data["epoch"] == 1
    assert data["logs"] == {"loss": 0.25} and data["optimizer_state_dict"] is None
    assert data["class"].endswith("Plain")
    fresh = Plain()
    fresh.load_state_dict(data["state_dict"])
    assert torch.equal(fresh.linear.weight, model.linear.weight)


# ------------------------------------------------------------------ defect 6: backup_dir
@pytest.mark.parametrize("bad", ["", "  ", None, b""])
def test_defect6_backup_dir_must_name_a_folder(bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CallbackError, match=r"BackupAndRestore\(backup_dir=.*\) needs a folder"):
        BackupAndRestore(bad)
    assert os.listdir(tmp_path) == []


def test_defect6_backup_dir_of_a_wrong_type():
    with pytest.raises(CallbackError, match=r"must be a path \(str or os.PathLike\), got int"):
        BackupAndRestore(3)


# ------------------------------------------------------------------ defect 7: model.history
def test_defect7_history_sets_model_history(tut):
    x, y, model = tut
    model.compile("adam")
    h = model.fit(x, y, batch_size=3, epochs=2, verbose=0)
    assert model.history is h and model.history.history["loss"] == h.history["loss"]
    h2 = model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    assert model.history is h2 and len(h2.history["loss"]) == 1
    standalone = History()
    standalone.set_model(model)
    standalone.on_train_begin()
    assert model.history is standalone


def test_defect7_a_history_does_not_keep_its_model_alive(tutorial):
    import gc
    import weakref
    x, y, features, _ = tutorial
    model = small_din(features)
    model.compile("adam")
    h = model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    assert h.model is model and model.history is h
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None and h.model is None  # model -> History only, never History -> model
    assert len(h.history["loss"]) == 1


def test_defect7_a_models_own_history_attribute_is_left_alone(tut):
    x, y, model = tut
    model.history = "the model's own"
    model.compile("adam")
    h = model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    assert model.history == "the model's own" and len(h.history["loss"]) == 1


# ------------------------------------------------------------------ ModelCheckpoint features
def test_checkpoint_save_freq_in_batches_with_batch_placeholder(tut, tmp_path):
    x, y, model = tut
    model.compile("adam")
    ckpt = ModelCheckpoint(str(tmp_path / "m-{epoch}-{batch}.pt"), save_freq=2,
                           save_weights_only=True)
    # 3 rows, batch_size=1: 3 batches per epoch, 9 in all; a save after batches 2, 4, 6, 8
    model.fit(x, y, batch_size=1, epochs=3, verbose=0, shuffle=False, callbacks=[ckpt])
    names = [os.path.basename(p) for p in ckpt.saved]
    assert names == ["m-1-2.pt", "m-2-1.pt", "m-2-3.pt", "m-3-2.pt"]
    assert sorted(os.listdir(tmp_path)) == sorted(names)


def test_checkpoint_batch_placeholder_needs_batch_saving(tut, tmp_path):
    x, y, model = tut
    model.compile("adam")
    with pytest.raises(CallbackError, match=r"\{batch\} is filled only when save_freq is a "
                                            r"number of batches"):
        model.fit(x, y, batch_size=3, epochs=1, verbose=0,
                  callbacks=[ModelCheckpoint(str(tmp_path / "m-{batch}.pt"))])


@pytest.mark.parametrize("bad", [0, -1, "batch", 1.5, True])
def test_checkpoint_rejects_bad_save_freq(bad, tmp_path):
    with pytest.raises(CallbackError, match=r"save_freq=.* must be 'epoch' or a positive"):
        ModelCheckpoint(str(tmp_path / "m.pt"), save_freq=bad)


def test_checkpoint_initial_value_threshold(tut, tmp_path):
    x, y, model = tut
    model.compile("adam", metrics=[scripted_metric("score", [0.5, 0.35, 0.32, 0.2])], lr=0.01)
    ckpt = ModelCheckpoint(str(tmp_path / "m-{epoch}.pt"), monitor="score", mode="min",
                           save_best_only=True, initial_value_threshold=0.4)
    model.fit(x, y, batch_size=3, epochs=4, verbose=0, callbacks=[ckpt])
    # 0.5 does not beat the threshold 0.4: epoch 1 is never written
    assert [os.path.basename(p) for p in ckpt.saved] == ["m-2.pt", "m-3.pt", "m-4.pt"]
    assert ckpt.best == 0.2


def test_checkpoint_period_saves_every_nth_epoch(tut, tmp_path):
    x, y, model = tut
    model.compile("adam")
    ckpt = ModelCheckpoint(str(tmp_path / "m-{epoch}.pt"), period=2, save_weights_only=True)
    model.fit(x, y, batch_size=3, epochs=5, verbose=0, callbacks=[ckpt])
    assert [os.path.basename(p) for p in ckpt.saved] == ["m-2.pt", "m-4.pt"]
    with pytest.raises(CallbackError, match="period"):
        ModelCheckpoint("m.pt", period=2, save_freq=3)


# ------------------------------------------------------------------ fit(validation_freq)
def test_validation_freq_validates_every_nth_epoch_and_callbacks_skip_the_others(tut):
    x, y, model = tut
    model.compile("adam")
    seen = []

    class Keys(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(sorted(k for k in logs if k.startswith("val_")))

    stop = EarlyStopping(monitor="val_loss", patience=5)
    h = model.fit(x, y, batch_size=3, epochs=5, verbose=0, validation_data=(x, y),
                  validation_freq=2, callbacks=[Keys(), stop])
    assert seen == [[], ["val_loss"], [], ["val_loss"], []]
    assert len(h.history["loss"]) == 5 and len(h.history["val_loss"]) == 2
    with pytest.raises(ConfigError, match="validation_freq must be a positive integer"):
        model.fit(x, y, batch_size=3, epochs=1, verbose=0, validation_freq=0)


# ------------------------------------------------------------------ TerminateOnNaN(raise_error)
def test_terminate_on_nan_raise_error_raises_at_once_and_skips_train_end(small_synthetic):
    x, y, features = small_synthetic
    xt, yt = rows(x, y, 20)
    calls = []

    def loss(p, t):  # NaN from the third training step on
        if torch.is_grad_enabled():
            calls.append(1)
        out = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
        return out * float("nan") if len(calls) > 2 else out

    class Ends(Callback):
        def on_train_end(self, logs=None):
            calls.append("train_end")

    model = small_din(features)
    model.compile("sgd", loss=loss)
    stop = TerminateOnNaN(raise_error=True)
    with pytest.raises(TrainingError, match=r"loss of batch 0 in epoch 1 is nan"):
        model.fit(xt, yt, batch_size=10, epochs=3, verbose=0, shuffle=False,
                  callbacks=[stop, Ends()])
    assert isinstance(TrainingError("x"), RuntimeError)
    assert "train_end" not in calls and (stop.stopped_epoch, stop.stopped_batch) == (1, 0)


# ------------------------------------------------------------------ BackupAndRestore(save_freq)
class Died(Exception):
    """Stands for a crash of the process."""


class DieAt(Callback):
    def __init__(self, step: int) -> None:
        super().__init__()
        self.step, self.seen = step, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.step:
            raise Died


def test_backup_save_freq_backs_up_mid_epoch_and_redoes_that_epoch(tut, tmp_path):
    x, y, model = tut
    model.compile("adam")
    backup = BackupAndRestore(tmp_path, save_freq=2)
    # 3 batches per epoch; backups after global batches 2 and 4; it dies after batch 5
    with pytest.raises(Died):
        model.fit(x, y, batch_size=1, epochs=3, verbose=0, callbacks=[backup, DieAt(5)])
    saved = torch.load(tmp_path / "backup.ctrkit", weights_only=True)
    assert saved["epoch"] == 0  # the backup after batch 4 was taken during epoch 1 (0-based)
    resumed = small_din(tut[2].features)
    resumed.compile("adam")
    epochs = []

    class Epochs(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(epoch)

    resumed.fit(x, y, batch_size=1, epochs=3, verbose=0,
                callbacks=[BackupAndRestore(tmp_path, save_freq=2), Epochs()])
    assert epochs == [1, 2]  # epoch 1 is redone from its first batch (Keras 3)
    assert not (tmp_path / "backup.ctrkit").exists()


@pytest.mark.parametrize("bad", [0, "batch", True, False])
def test_backup_rejects_bad_save_freq(bad, tmp_path):
    with pytest.raises(CallbackError, match=r"save_freq=.* must be 'epoch' or a positive"):
        BackupAndRestore(tmp_path, save_freq=bad)


# ------------------------------------------------------------------ CallbackList.append
def test_callbacklist_append_passes_model_and_params_and_checks_type():
    model, first, second = Plain(), Callback(), Callback()
    cbs = CallbackList([first])
    cbs.set_model(model)
    cbs.set_params({"epochs": 3})
    cbs.append(second)
    assert second.model is model and second.params == {"epochs": 3}
    assert list(cbs) == [first, second]
    with pytest.raises(CallbackError, match="not a ctrkit.callbacks.Callback"):
        cbs.append(lambda: None)
    cbs.set_params(None)
    assert first.params == {} and second.params == {}


# ------------------------------------------------------------------ EarlyStopping(baseline)
def test_early_stopping_baseline_keras3_never_stops_at_epoch_0(tut):
    x, y, model = tut
    model.compile("adam", metrics=[scripted_metric("score", [0.9, 0.8, 0.7])], lr=0.01)
    stop = EarlyStopping(monitor="score", mode="min", patience=0, baseline=0.5,
                         restore_best_weights=True)
    h = model.fit(x, y, batch_size=3, epochs=3, verbose=0, callbacks=[stop])
    # epoch 0 misses the baseline but Keras 3 does not stop at epoch 0; epoch 1 stops
    assert h.epoch == [0, 1] and stop.stopped_epoch == 1
    assert stop.best == 0.8 and stop.best_epoch == 1


def test_early_stopping_baseline_met_resets_patience(tut):
    x, y, model = tut
    model.compile("adam", metrics=[scripted_metric("score", [0.9, 0.8, 0.4, 0.45, 0.3, 0.5,
                                                              0.6, 0.1])], lr=0.01)
    stop = EarlyStopping(monitor="score", mode="min", patience=2, baseline=0.5)
    h = model.fit(x, y, batch_size=3, epochs=8, verbose=0, callbacks=[stop])
    # 0.9 and 0.8 improve but miss the baseline, so they count towards patience: wait
    # reaches 2 at epoch 1
    assert h.epoch == [0, 1] and stop.stopped_epoch == 1 and stop.best == 0.8
    model.compile("adam", metrics=[scripted_metric("score", [0.9, 0.4, 0.45, 0.3, 0.5, 0.6,
                                                              0.1])], lr=0.01)
    h = model.fit(x, y, batch_size=3, epochs=7, verbose=0, callbacks=[stop])
    # 0.4 beats the baseline (wait 0); 0.45 (1); 0.3 beats it again (0); 0.5 (1); 0.6 (2): stop
    assert h.epoch == [0, 1, 2, 3, 4, 5] and stop.stopped_epoch == 5 and stop.best == 0.3


def test_defect7_a_fitted_model_still_pickles_whole(tut, tmp_path):
    # DeepCTR-Torch's check_model pickles the whole model (torch.save(model)); model.history
    # (a History holding its model weakly) must not break that
    x, y, model = tut
    model.compile("adam", metrics=["acc"])
    model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    torch.save(model, tmp_path / "m.pt")
    again = torch.load(tmp_path / "m.pt", weights_only=False)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    assert again.history.model is again and again.history.history == model.history.history


# --------------------------------------------------------------------------- found by the ports
# of Keras 3's callback tests (tests/compat/test_keras_*.py)
class _Counter(ctrkit.models.base.BaseModel):
    """A model whose __init__ takes no arguments (Keras's `TestModel()` in callback_test)."""

    def __init__(self, logit_shape="rows"):
        super().__init__([ctrkit.DenseFeat("x", 1)], task="regression")
        self.w = torch.nn.Parameter(torch.ones(()))
        self.logit_shape = logit_shape

    def forward(self, batch):
        out = batch["x"] * self.w  # (B, 1)
        return out[:, 0] if self.logit_shape == "rows" else out


def test_a_model_subclass_whose_init_takes_no_arguments_builds():
    class NoArgs(ctrkit.models.base.BaseModel):
        def __init__(self):
            super().__init__([ctrkit.DenseFeat("x", 1)], task="regression")
            self.w = torch.nn.Parameter(torch.ones(()))

    model = NoArgs()  # raised StopIteration
    assert model.hparams == {} and isinstance(model.w, torch.nn.Parameter)


def test_logits_of_shape_b_1_are_refused_not_broadcast_against_b_labels():
    x, y = {"x": np.arange(6.0).reshape(-1, 1)}, np.arange(6.0)
    model = _Counter("column")
    model.compile("sgd", "mse")
    # (B, 1) - (B,) broadcasts to (B, B): a wrong loss without an error (only torch's warning)
    with pytest.raises(ConfigError, match=r"_Counter.forward returned logits of shape \(3, 1\) "
                                          r"for a batch of 3 rows; .* shape \(3,\)"):
        model.fit(x, y, batch_size=3, verbose=0)
    with pytest.raises(ConfigError, match=r"shape \(6, 1\) for a batch of 6 rows"):
        model.evaluate(x, y, batch_size=6)
    with pytest.raises(ConfigError, match=r"shape \(4, 1\) for a batch of 4 rows"):
        model.predict(x, batch_size=4)
    good = _Counter()
    good.compile("sgd", "mse")
    assert good.evaluate(x, y)["loss"] == pytest.approx(0.0)  # logits == x == y


@pytest.mark.parametrize("lr", [lambda step: 0.1, "0.1x", True, [0.1]])
def test_a_learning_rate_that_is_not_a_number_is_a_config_error(lr):
    model = _Counter()
    with pytest.raises(ConfigError, match=r"lr \(learning_rate\) must be a number > 0, got .*"
                                          r"LearningRateScheduler"):
        model.compile("adam", "mse", learning_rate=lr)


def test_predict_takes_keras_verbose_and_prints_nothing(capfd):
    model = _Counter()
    x = {"x": np.arange(4.0).reshape(-1, 1)}
    for verbose in (0, 1, 2):
        np.testing.assert_array_equal(model.predict(x, verbose=verbose), x["x"])
    assert capfd.readouterr() == ("", "")
    with pytest.raises(ConfigError, match="verbose must be 0"):
        model.predict(x, verbose=3)


def test_backup_flags_are_keyword_only_and_a_users_folder_is_kept(tmp_path):
    # Keras 2 puts delete_checkpoint third, Keras 3 double_checkpoint: by position it would be
    # read as the wrong flag, silently
    with pytest.raises(TypeError):
        BackupAndRestore(tmp_path, "epoch", False)
    x, y = {"x": np.arange(6.0).reshape(-1, 1)}, np.arange(6.0)
    mine = tmp_path / "mine"
    mine.mkdir()
    made = tmp_path / "made" / "here"
    for folder in (mine, made):
        model = _Counter()
        model.compile("sgd", "mse")
        model.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(folder)])
    assert mine.is_dir() and os.listdir(mine) == []  # the user's folder stays
    assert not made.exists() and (tmp_path / "made").is_dir()  # only the folder it created


def test_on_test_end_sees_the_evaluations_own_keys_during_fit(tut):
    x, y, model = tut
    model.compile("adam", metrics=["auc"])
    seen = []
    cb = ctrkit.callbacks.LambdaCallback(on_test_end=lambda logs: seen.append(dict(logs)))
    h = model.fit(x, y, batch_size=3, epochs=2, verbose=0, validation_data=(x, y),
                  callbacks=[cb])
    assert [sorted(s) for s in seen] == [["auc", "loss"]] * 2
    assert [s["loss"] for s in seen] == h.history["val_loss"]
    assert [s["auc"] for s in seen] == h.history["val_auc"]


def test_tensorboard_writes_numpy_and_tensor_scalars(tut, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: "
                                              "pip install 'ctrkit[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    x, y, model = tut
    model.compile("adam")
    extra = ctrkit.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.update(
        f32=np.float32(0.25), t=torch.tensor(0.5), text="skip me"))
    model.fit(x, y, batch_size=3, epochs=1, verbose=0,
              callbacks=[extra, ctrkit.callbacks.TensorBoard(tmp_path)])
    acc = EventAccumulator(str(tmp_path / "train"))
    acc.Reload()
    assert [e.value for e in acc.Scalars("epoch_f32")] == [0.25]
    assert [e.value for e in acc.Scalars("epoch_t")] == [0.5]
    assert "epoch_text" not in acc.Tags()["scalars"]


def test_the_progress_line_shows_the_learning_rate_once(tut, capsys):
    x, y, model = tut
    model.compile("sgd", lr=0.1)
    h = model.fit(x, y, batch_size=3, epochs=2, verbose=2,
                  callbacks=[ctrkit.callbacks.LearningRateScheduler(lambda e: 0.1 / (e + 1))])
    assert h.history["lr"] == h.history["learning_rate"] == [0.1, 0.05]
    lines = capsys.readouterr().out.splitlines()
    assert [("learning_rate: 0.1000" in s, "learning_rate: 0.0500" in s, " lr:" in s)
            for s in lines] == [(True, False, False), (False, True, False)]
