"""The TensorBoard callback: Keras's layout of scalars, batch points, opt-in histograms."""
from __future__ import annotations

import subprocess
import sys

import pytest

from ctrkit.callbacks import TensorBoard
from ctrkit.errors import CallbackError
from trainer_helpers import small_din


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(folder), size_guidance={"histograms": 0, "scalars": 0})
    acc.Reload()
    return acc


@pytest.fixture
def tb_data(tutorial):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: "
                                              "pip install 'ctrkit[tensorboard]'")
    x, y, features, _ = tutorial
    return x, y, small_din(features)


def test_epoch_scalars_in_train_and_validation_runs(tb_data, tmp_path):
    x, y, model = tb_data
    model.compile("adam", metrics=["auc"])
    h = model.fit(x, y, batch_size=3, epochs=3, verbose=0, validation_data=(x, y),
                  callbacks=[TensorBoard(tmp_path)])
    train, val = events(tmp_path / "train"), events(tmp_path / "validation")
    assert sorted(train.Tags()["scalars"]) == ["epoch_auc", "epoch_learning_rate", "epoch_loss"]
    assert sorted(val.Tags()["scalars"]) == ["epoch_auc", "epoch_loss",
                                             "evaluation_auc_vs_iterations",
                                             "evaluation_loss_vs_iterations"]
    assert [e.value for e in train.Scalars("epoch_learning_rate")] == pytest.approx([0.003] * 3)
    # each validation comes after its epoch's batches: step = training batches so far
    steps = -(-len(y) // 3)
    assert [e.step for e in val.Scalars("evaluation_loss_vs_iterations")] == [steps, 2 * steps,
                                                                             3 * steps]
    assert ([e.value for e in val.Scalars("evaluation_loss_vs_iterations")]
            == pytest.approx(h.history["val_loss"]))
    assert [e.step for e in train.Scalars("epoch_loss")] == [0, 1, 2]
    assert [e.value for e in train.Scalars("epoch_loss")] == pytest.approx(h.history["loss"])
    assert [e.value for e in val.Scalars("epoch_auc")] == pytest.approx(h.history["val_auc"])
    assert train.Tags()["histograms"] == []  # embedding histograms are off by default


def test_batch_loss_every_n_batches_and_histograms_on_request(tb_data, tmp_path):
    x, y, model = tb_data
    model.compile("adam")
    seen = []

    class Losses(ctrkit_callback()):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs["loss"])

    model.fit(x, y, batch_size=1, epochs=3, verbose=0, shuffle=False,
              callbacks=[Losses(), TensorBoard(tmp_path, update_freq=2, histogram_freq=2,
                                               write_steps_per_second=True)])
    train = events(tmp_path / "train")
    points = train.Scalars("batch_loss")
    # 3 batches per epoch, 9 in all: points after global batches 2, 4, 6 and 8
    assert [p.step for p in points] == [2, 4, 6, 8]
    assert [p.value for p in points] == pytest.approx([seen[1], seen[3], seen[5], seen[7]])
    assert [p.step for p in train.Scalars("batch_steps_per_second")] == [2, 4, 6, 8]
    assert [e.step for e in train.Scalars("epoch_steps_per_second")] == [0, 1, 2]
    hists = train.Tags()["histograms"]
    # every weight, tagged <parameter path>/histogram (Keras's naming)
    assert sorted(hists) == sorted(name.replace(".", "/") + "/histogram"
                                   for name, _ in model.named_parameters())
    tag = "embeddings/tables/item/weight/histogram"
    assert [e.step for e in train.Histograms(tag)] == [0, 2]  # epochs 0, 2 (Keras: epoch % 2)
    table = model.embeddings.tables["item"].weight
    assert train.Histograms(tag)[0].histogram_value.num == table.numel()


def ctrkit_callback():
    from ctrkit.callbacks import Callback
    return Callback


@pytest.mark.parametrize("kw,match", [({"update_freq": 0}, "update_freq"),
                                      ({"update_freq": "step"}, "update_freq"),
                                      ({"histogram_freq": -1}, "histogram_freq"),
                                      ({"write_graph": True}, r"write_graph=True\) is not "
                                                              r"supported: .*deprecated"),
                                      ({"write_images": True}, r"write_images=True\) is not"),
                                      ({"profile_batch": (1, 3)}, r"profile_batch=\(1, 3\)\) .*"
                                                                  r"torch.profiler"),
                                      ({"embeddings_freq": 1}, "embeddings_freq=1"),
                                      ({"embeddings_metadata": {"item": "m.tsv"}},
                                       "embeddings_metadata=")])
def test_bad_arguments(kw, match, tmp_path):
    with pytest.raises(CallbackError, match=match):
        TensorBoard(tmp_path, **kw)


def test_import_ctrkit_does_not_import_tensorboard():
    code = ("import sys, ctrkit; from ctrkit.callbacks import TensorBoard; "
            "TensorBoard('x'); print('tensorboard' in sys.modules, "
            "'torch.utils.tensorboard' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_missing_tensorboard_says_how_to_install(tutorial, tmp_path, monkeypatch):
    import builtins
    real = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real(name, *args, **kwargs)

    x, y, features, _ = tutorial
    model = small_din(features)
    model.compile("adam")
    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ImportError, match=r"pip install 'ctrkit\[tensorboard\]'"):
        model.fit(x, y, batch_size=3, epochs=1, verbose=0, callbacks=[TensorBoard(tmp_path)])
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


def test_evaluate_writes_evaluation_scalars_and_closes_its_writer(tb_data, tmp_path):
    x, y, model = tb_data
    model.compile("adam")
    tb = TensorBoard(tmp_path)
    logs = model.evaluate(x, y, callbacks=[tb])
    val = events(tmp_path / "validation")
    assert val.Tags()["scalars"] == ["evaluation_loss_vs_iterations"]
    assert [e.value for e in val.Scalars("evaluation_loss_vs_iterations")] == pytest.approx(
        [logs["loss"]])
    assert tb._writers == {}


def test_lr_callbacks_give_one_learning_rate_curve(tb_data, tmp_path):
    from ctrkit.callbacks import LearningRateScheduler
    x, y, model = tb_data
    model.compile("sgd", lr=0.1)
    model.fit(x, y, batch_size=3, epochs=3, verbose=0,
              callbacks=[LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)),
                         TensorBoard(tmp_path)])
    train = events(tmp_path / "train")
    assert "epoch_lr" not in train.Tags()["scalars"]  # 'lr' is the alias of 'learning_rate'
    assert [e.value for e in train.Scalars("epoch_learning_rate")] == pytest.approx(
        [0.1, 0.05, 0.1 / 3])


def test_update_freq_batch_is_every_batch(tmp_path):
    assert TensorBoard(tmp_path, update_freq="batch").update_freq == 1
