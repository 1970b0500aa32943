"""One model used from several threads (a threaded server): inference passes share eval mode,
fit is exclusive, and nothing silently runs in the wrong mode (ctrkit/training/modes.py)."""
import copy
import pickle
import threading

import numpy as np
import pytest

import ctrkit
from ctrkit.callbacks import Callback
from ctrkit.datasets import make_synthetic
from ctrkit.errors import ConfigError


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_rows=600, maxlen=6, embedding_dim=4, seed=3)


def din(features):
    # dropout in the MLP: a batch predicted in train mode gives different numbers
    model = ctrkit.build("din", features, seed=0, dnn_dropout=0.5)
    model.compile("adam")
    return model


def test_concurrent_predicts_equal_the_single_thread_result_and_restore_the_mode(data):
    x, y, features = data
    model = din(features)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert model.training  # fit leaves train mode; every predict below starts from it
    expected = model.predict(x, batch_size=16)
    results, errors = [], []

    def work():
        try:
            for _ in range(15):
                results.append(model.predict(x, batch_size=16))
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 60
    for r in results:
        np.testing.assert_array_equal(r, expected)
    assert model.training  # the last pass to leave restored the mode the model had


def test_predict_from_another_thread_while_fit_runs_is_refused(data):
    x, y, features = data
    model = din(features)
    seen = []

    class PredictElsewhere(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1:
                def other():
                    try:
                        model.predict(x)
                    except ConfigError as e:
                        seen.append(str(e))
                t = threading.Thread(target=other)
                t.start()
                t.join()
                assert self.model.training  # the refused call changed nothing

    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[PredictElsewhere()])
    assert len(seen) == 1
    assert "predict was called from another thread while fit runs on this model" in seen[0]
    assert "copy.deepcopy(model)" in seen[0]
    model.predict(x)  # after fit, from any thread
    t = threading.Thread(target=model.predict, args=(x,))
    t.start()
    t.join()


def test_fit_from_another_thread_while_predict_or_fit_runs_is_refused(data):
    x, y, features = data
    model = din(features)
    seen = []

    def fit_elsewhere():
        def other():
            try:
                model.fit(x, y, batch_size=64, epochs=1, verbose=0)
            except ConfigError as e:
                seen.append(str(e))
        t = threading.Thread(target=other)
        t.start()
        t.join()

    class DuringPredict(Callback):
        def on_predict_batch_begin(self, batch, logs=None):
            if batch == 0:
                fit_elsewhere()

    class DuringFit(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                fit_elsewhere()

    before = copy.deepcopy(model.state_dict())
    model.predict(x, callbacks=[DuringPredict()])
    assert "fit was called from another thread while predict (or evaluate, explain) runs" \
        in seen[0]
    for k, v in model.state_dict().items():  # nothing trained
        assert (v == before[k]).all(), k
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[DuringFit()])
    assert "fit was called from another thread while fit runs" in seen[1]
    assert len(seen) == 2


def test_inference_inside_fits_own_thread_nests_and_fit_keeps_training(data):
    x, y, features = data
    model = din(features)
    modes_seen = []

    class PredictHere(Callback):
        def on_train_batch_end(self, batch, logs=None):
            p = self.model.predict({k: v[:32] for k, v in x.items()})
            modes_seen.append((p.shape, self.model.training))

    model.fit(x, y, batch_size=200, epochs=1, verbose=0, validation_split=0.2,
              callbacks=[PredictHere()])
    assert modes_seen and all(m == ((32, 1), True) for m in modes_seen)
    assert model.explain(x, batch_size=64).shape[0] == len(y)
    assert model.training


def test_models_stay_picklable_and_copyable_after_threaded_use(data):
    x, y, features = data
    model = din(features)
    t = threading.Thread(target=model.predict, args=(x,))
    t.start()
    t.join()
    clone = copy.deepcopy(model)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def test_din_explain_takes_the_thread_guard_predict_takes(data):
    """Issue 28: DIN's explain goes through BaseModel.explain (its attention_weights hook), so
    it is refused while another thread fits, instead of flipping the model to eval mode."""
    x, y, features = data
    model = din(features)
    started, release = threading.Event(), threading.Event()

    class Hold(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                started.set()
                release.wait(30)

    t = threading.Thread(target=model.fit, args=(x, y),
                         kwargs=dict(batch_size=64, epochs=1, verbose=0, callbacks=[Hold()]))
    t.start()
    try:
        assert started.wait(30)
        with pytest.raises(ConfigError, match=r"^explain was called from another thread while "
                                              r"fit runs on this model"):
            model.explain(x)
        assert model.training  # the fitting thread's model was left in train mode
    finally:
        release.set()
        t.join()
