"""Iterables of batches (generators, DataLoaders, lists) through fit/evaluate/predict."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ctrkit.errors import ConfigError, InputError
from ctrkit.training.data_adapters import IterableDataAdapter, get_data_adapter
from trainer_helpers import rows, same_state, small_din, snapshot


def batches(x, y, size, w=None):
    out = []
    for s in range(0, len(y), size):
        xb = {k: v[s:s + size] for k, v in x.items()}
        out.append((xb, y[s:s + size]) if w is None else (xb, y[s:s + size], w[s:s + size]))
    return out


def _model(features, **kw):
    model = small_din(features, **kw)
    model.compile("adam", metrics=["auc", "gauc"], gauc_group="user", lr=0.01)
    return model


@pytest.fixture
def data(small_synthetic):
    x, y, features = small_synthetic
    return (*rows(x, y, 400), features)


def test_a_list_of_batches_trains_exactly_like_the_arrays_without_shuffling(data):
    x, y, features = data
    w = np.random.default_rng(1).uniform(0.5, 2, len(y))
    a, b = _model(features), _model(features)
    ha = a.fit(x, y, sample_weight=w, batch_size=64, epochs=2, verbose=0, shuffle=False)
    hb = b.fit(batches(x, y, 64, w), epochs=2, verbose=0)
    assert same_state(snapshot(a), snapshot(b))
    assert ha.history == hb.history
    assert hb.params["steps"] == 7 and hb.params["samples"] is None


def test_a_generator_with_steps_per_epoch_continues_across_epochs(data):
    x, y, features = data
    seen = []

    def gen():
        while True:  # an endless stream: Keras semantics, the epoch is steps_per_epoch batches
            for i, b in enumerate(batches(x, y, 50)):
                seen.append(i)
                yield b
    model = _model(features)
    h = model.fit(gen(), steps_per_epoch=3, epochs=3, verbose=0)
    assert len(h.history["loss"]) == 3
    assert seen[:9] == [0, 1, 2, 3, 4, 5, 6, 7, 0]  # epoch 2 starts at the 4th batch
    ref = _model(features)
    ref.fit(batches(x, y, 50)[:8] + batches(x, y, 50)[:1], steps_per_epoch=3, epochs=3,
            verbose=0)
    assert same_state(snapshot(model), snapshot(ref))


def test_a_used_up_generator_is_an_error_not_an_empty_epoch(data):
    x, y, features = data
    model = _model(features)
    with pytest.raises(InputError, match=r"x ran out of batches: pass 2 got 0\. It is an "
                                         r"iterator, which runs once"):
        model.fit(iter(batches(x, y, 100)), epochs=2, verbose=0)
    with pytest.raises(InputError, match=r"pass 1 got 4 of steps=5"):
        _model(features).fit(iter(batches(x, y, 100)), steps_per_epoch=5, verbose=0)


def test_a_torch_dataloader_feeds_fit_evaluate_and_predict(data):
    x, y, features = data

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return {k: v[i] for k, v in x.items()}, y[i]

    loader = torch.utils.data.DataLoader(Rows(), batch_size=64, shuffle=False)
    a, b = _model(features), _model(features)
    h = a.fit(loader, epochs=2, verbose=0)
    b.fit(x, y, batch_size=64, epochs=2, verbose=0, shuffle=False)
    assert same_state(snapshot(a), snapshot(b)) and h.params["steps"] == len(loader)
    np.testing.assert_array_equal(a.predict(loader), b.predict(x, batch_size=64))
    pred_only = torch.utils.data.DataLoader([{k: v[i] for k, v in x.items()} for i in range(len(y))],
                                            batch_size=50)
    np.testing.assert_array_equal(a.predict(pred_only), b.predict(x, batch_size=50))
    assert a.evaluate(loader) == b.evaluate(x, y, batch_size=64)


def test_validation_data_may_be_an_iterable(data):
    x, y, features = data
    xt, yt = rows(x, y, 300)
    xv, yv = rows(x, y, 400, 300)
    a, b = _model(features), _model(features)
    ha = a.fit(xt, yt, batch_size=50, epochs=2, verbose=0, validation_data=(xv, yv))
    hb = b.fit(xt, yt, batch_size=50, epochs=2, verbose=0,
               validation_data=batches(xv, yv, 30))
    for k in ("val_auc", "val_gauc"):
        assert ha.history[k] == hb.history[k]
    np.testing.assert_allclose(ha.history["val_loss"], hb.history["val_loss"], rtol=1e-6)


def test_a_bad_batch_is_named_and_a_bad_first_batch_stops_before_any_step(data):
    x, y, features = data
    model = _model(features)
    before = snapshot(model)
    bad = batches(x, y, 100)
    bad[0][0]["item"] = bad[0][0]["item"].copy()
    bad[0][0]["item"][7] = 10 ** 6
    with pytest.raises(InputError, match=r"In batch 0 of x: Feature 'item' has id 1000000 at "
                                         r"row 7"):
        model.fit(bad, verbose=0)
    assert same_state(before, snapshot(model))
    late = batches(x, y, 100)
    late[2] = ({k: v for k, v in late[2][0].items() if k != "cate"}, late[2][1])
    with pytest.raises(InputError, match=r"In batch 2 of x: x is missing feature\(s\) \['cate'\]"):
        model.fit(late, verbose=0)
    with pytest.raises(InputError, match=r"batch 0 of x has no labels"):
        model.fit([b[0] for b in batches(x, y, 100)], verbose=0)
    with pytest.raises(InputError, match=r"batch 1 of x has sample weights but the first batch "
                                         r"lacks them"):
        b = batches(x, y, 100)
        model.fit([b[0], (*b[1], np.ones(100))], verbose=0)


def test_arguments_that_do_not_apply_to_an_iterable_are_refused(data):
    x, y, features = data
    model = _model(features)
    with pytest.raises(InputError, match=r"carries its own labels and weights; pass y=None"):
        model.fit(batches(x, y, 100).__iter__(), y, verbose=0)
    with pytest.raises(ConfigError, match=r"batch_size=32 was given but list_iterator input "
                                          r"makes its own batches"):
        model.fit(iter(batches(x, y, 100)), batch_size=32, verbose=0)
    with pytest.raises(ConfigError, match=r"validation_split needs in-memory arrays"):
        model.fit(batches(x, y, 100), validation_split=0.2, verbose=0)
    with pytest.raises(ConfigError, match=r"steps_per_epoch applies to an iterable"):
        model.fit(x, y, steps_per_epoch=2, verbose=0)
    mba = _model(features, embedding_regularizer="mba", l2_reg_embedding=1e-3)
    with pytest.raises(ConfigError, match=r"'MBA' regularizer counts ids over the whole "
                                          r"training set"):
        mba.fit(batches(x, y, 100), verbose=0)


def test_encoders_apply_to_every_streamed_batch(data):
    from ctrkit.data import CategoricalEncoder
    x, y, features = data
    raw = dict(x, user=np.array([f"u{v}" for v in x["user"]]))
    a, b = _model(features), _model(features)
    for m in (a, b):
        enc = CategoricalEncoder()
        enc.fit(raw["user"])
        m.encoders["user"] = enc
    a.fit(raw, y, batch_size=100, epochs=1, verbose=0, shuffle=False)
    b.fit(batches(raw, y, 100), epochs=1, verbose=0)
    assert same_state(snapshot(a), snapshot(b))
    np.testing.assert_array_equal(a.predict(raw), b.predict(batches(raw, y, 64)))


def test_the_reader_thread_reads_ahead_and_stops(data):
    x, y, features = data
    model = _model(features)
    adapter = get_data_adapter(model, batches(x, y, 50), groups=["user"])
    assert isinstance(adapter, IterableDataAdapter)
    it = adapter.batches(0)
    first = next(it)
    assert first.size == 50 and first.x["user"].dtype == torch.int64
    adapter.close()  # mid-pass: the thread ends, nothing hangs
    assert sum(b.size for b in adapter.batches(0)) == len(y)


class _FakeTTY:
    """A stream that says it is a terminal, so verbose=1 draws the progress bar."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass

    def isatty(self):
        return True

    def getvalue(self):
        return "".join(self.parts)


def test_the_progress_bar_counts_steps_of_an_iterable_of_unknown_length(data, monkeypatch):
    # a generator without steps_per_epoch has no length: the bar shows a count with no made-up
    # total ("n/Unknown", as Keras), no ETA; the last draw of the epoch shows the steps it had
    import sys
    x, y, features = data
    tty = _FakeTTY()
    monkeypatch.setattr(sys, "stdout", tty)
    model = _model(features)
    h = model.fit((b for b in batches(x, y, 50)), epochs=1, verbose=1)
    monkeypatch.undo()
    out = tty.getvalue()
    assert h.params["steps"] is None
    assert out.splitlines()[0] == ("Train on an unknown number of samples, validate on 0 "
                                   "samples, an unknown number of steps per epoch")
    drawn = [part.split(" ")[0] for part in out.split("\r")[1:]]
    assert drawn[0] == "1/Unknown"                     # the first step always draws
    assert all(d.endswith("/Unknown") for d in drawn[:-1]) and "ETA" not in out
    assert drawn[-1] == "8/8" and "\r8/8 [==============================]" in out
    assert "/1 " not in out and "/None" not in out


def test_the_progress_bar_of_unknown_length_redraws_at_most_once_per_interval():
    from ctrkit.callbacks import ProgbarLogger
    bar = ProgbarLogger(verbose=1, stream=_FakeTTY(), interval=3600)
    bar.set_params({"epochs": 1, "steps": None})
    bar.on_epoch_begin(0, {})
    for step in range(100):                            # no last step known: only the first draws
        bar.on_train_batch_end(step, {"loss": 0.5})
    assert bar.stream.getvalue().count("\r") == 1
    assert bar.stream.getvalue().startswith("Epoch 1/1\n\r1/Unknown ")
    assert bar.stream.getvalue().rstrip().endswith("steps/s - loss: 0.5000")
    bar.on_epoch_end(0, {"loss": 0.25})
    assert "\r100/100 [==============================] " in bar.stream.getvalue()
    assert bar.stream.getvalue().endswith("- loss: 0.2500\n")


@pytest.mark.parametrize("weighted", [False, True])
def test_mean_metrics_stream_without_a_per_row_store_and_equal_the_exact_ones(data, weighted):
    # logloss/binary_crossentropy/mse/mae/accuracy have bounded-memory accumulators: with
    # approx_auc, a streamed pass keeps no per-row predictions, and the means equal the
    # epoch-end metrics over the same rows (up to the order of the float64 sums).
    from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, mean_squared_error

    from ctrkit.metrics.prediction_store import PredictionStore, StreamingMetrics
    from ctrkit.training.trainer import Trainer
    x, y, features = data
    # float32 weights: ctrkit keeps weights as float32, so sklearn gets the same numbers
    w = np.random.default_rng(2).uniform(0.5, 2, len(y)).astype(np.float32) if weighted else None
    names = ["logloss", "binary_crossentropy", "mse", "mae", "accuracy", "approx_auc"]
    model = small_din(features)
    model.compile("adam", metrics=names, lr=0.01)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    made = []
    original = Trainer.new_store

    def spy(self, source, capacity):
        store = original(self, source, capacity)
        made.append(type(store))
        return store
    Trainer.new_store = spy
    try:
        streamed = model.evaluate(batches(x, y, 64, w))
        in_memory = model.evaluate(x, y, sample_weight=w, batch_size=64)
    finally:
        Trainer.new_store = original
    assert made == [StreamingMetrics, PredictionStore]
    p = model.predict(x, batch_size=64).ravel()
    expected = {"logloss": log_loss(y, p, sample_weight=w),
                "mse": mean_squared_error(y, p, sample_weight=w),
                "mae": mean_absolute_error(y, p, sample_weight=w),
                "accuracy": accuracy_score(y, p >= 0.5, sample_weight=w)}
    expected["binary_crossentropy"] = expected["logloss"]
    for k, v in expected.items():
        assert streamed[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k
        assert in_memory[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k
    assert streamed["approx_auc"] == pytest.approx(in_memory["approx_auc"], abs=1e-12)
