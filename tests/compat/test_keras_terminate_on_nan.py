# Ported from Keras 3's keras/src/callbacks/terminate_on_nan_test.py
# (https://github.com/keras-team/keras, Apache-2.0). Changed: the imports; the model
# constructors (a Keras Sequential of Dense layers -> ctrkit.build("base", [DenseFeat("x", d)],
# task="regression", ...)); and, as every ctrkit model takes a dict keyed by feature name, `x`
# -> {"x": x} and one-hot targets -> one column (docs/porting.md#from-keras). ctrkit's graceful
# stop also warns (RuntimeWarning), which the suite turns into errors, hence the filterwarnings
# marks. Every assertion is kept; two tests are expected differences (marked).
import os

import numpy as np
import pytest

import ctrkit
from ctrkit import DenseFeat
from ctrkit import callbacks
from ctrkit.callbacks import BackupAndRestore
from ctrkit.callbacks import TerminateOnNaN
from ctrkit.errors import InputError


def Sequential(input_dim=1, dnn_hidden_units=(1,), **kw):
    """A one-input regression network, the stand-in for Keras's Dense stacks."""
    return ctrkit.build("base", [DenseFeat("x", input_dim)], task="regression",
                        dnn_hidden_units=dnn_hidden_units, **kw)


class TestTerminateOnNaN:
    """Test suite for TerminateOnNaN callback."""

    @pytest.mark.filterwarnings("ignore:TerminateOnNaN:RuntimeWarning")
    def test_TerminateOnNaN(self):
        TRAIN_SAMPLES = 10
        TEST_SAMPLES = 10
        INPUT_DIM = 3
        NUM_CLASSES = 2
        BATCH_SIZE = 4

        np.random.seed(1337)
        x_train = np.random.random((TRAIN_SAMPLES, INPUT_DIM))
        y_train = np.random.choice(np.arange(NUM_CLASSES), size=TRAIN_SAMPLES)
        x_test = np.random.random((TEST_SAMPLES, INPUT_DIM))
        y_test = np.random.choice(np.arange(NUM_CLASSES), size=TEST_SAMPLES)

        # Keras: 5 Dense(2, relu) layers with a constant 1e5 kernel initializer, then Dense(2);
        # ctrkit: N(0, 1e5) weights, 8 wide (so that no layer is all dead)
        model = Sequential(INPUT_DIM, (8, 8, 8, 8, 8), init="deepctr", init_std=1e5)
        model.compile(loss="mean_squared_error", optimizer="sgd")

        history = model.fit(
            {"x": x_train},
            y_train.astype(float),
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test.astype(float)),
            callbacks=[callbacks.TerminateOnNaN()],
            epochs=20,
        )
        loss = history.history["loss"]
        assert len(loss) == 1
        assert np.isnan(loss[0]) or np.isinf(loss[0])

    @pytest.mark.expected_difference("non-finite-labels")
    def test_terminate_on_nan_graceful_stop(self):
        """Test that TerminateOnNaN (default) gracefully stops training."""
        model = Sequential()
        model.compile(optimizer="sgd", loss="mse")

        x = np.array([[1.0], [2.0]])
        y = np.array([[np.inf], [np.inf]])

        callback = TerminateOnNaN(raise_error=False)

        # Keras trains on the infinite targets and stops at the first batch; ctrkit refuses
        # non-finite targets before training (docs/porting.md#non-finite-labels).
        with pytest.raises(InputError, match="inf"):
            model.fit({"x": x}, y, epochs=2, batch_size=1, callbacks=[callback], verbose=0)

    @pytest.mark.expected_difference("non-finite-labels")
    def test_terminate_on_nan_raise_error_raises_error(self):
        """Test that TerminateOnNaN(raise_error=True)
        raises RuntimeError on NaN loss -- with ctrkit, on a diverging model (the targets of
        the Keras test, inf, are refused: docs/porting.md#non-finite-labels).
        """
        model = Sequential(1, (2, 2, 2, 2, 2), init="deepctr", init_std=1e5)
        model.compile(optimizer="sgd", loss="mse")

        x = np.array([[1.0], [2.0]])
        y = np.array([[1.0], [2.0]])

        callback = TerminateOnNaN(raise_error=True)

        # Training should raise RuntimeError
        with pytest.raises(RuntimeError, match="is (nan|inf); training stopped at once"):
            model.fit({"x": x}, y, epochs=1, batch_size=1, callbacks=[callback], verbose=0)

    def test_raise_error_terminate_does_not_trigger_on_train_end(self):
        """Test that on_train_end is NOT called when
        TerminateOnNaN(raise_error=True) raises.
        """

        class TrackingCallback(callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.train_end_called = False

            def on_train_end(self, logs=None):
                self.train_end_called = True

        model = Sequential(1, (2, 2, 2, 2, 2), init="deepctr", init_std=1e5)
        model.compile(optimizer="sgd", loss="mse")

        x = np.array([[1.0]])
        y = np.array([[1.0]])  # Keras: inf (refused by ctrkit); the model diverges instead

        tracking_callback = TrackingCallback()
        raise_error_terminate_callback = TerminateOnNaN(raise_error=True)

        # Should raise RuntimeError
        with pytest.raises(RuntimeError):
            model.fit(
                {"x": x},
                y,
                epochs=1,
                callbacks=[tracking_callback, raise_error_terminate_callback],
                verbose=0,
            )

        # on_train_end should NOT have been called
        assert not tracking_callback.train_end_called

    def test_raise_error_terminate_preserves_backup(self, tmp_path):
        """Ensure BackupAndRestore directory is preserved when
        TerminateOnNaN(raise_error=True) triggers.
        """
        tmpdir = str(tmp_path)
        backup_dir = os.path.join(tmpdir, "backups")
        os.makedirs(backup_dir, exist_ok=True)

        fake_file = os.path.join(backup_dir, "checkpoint.txt")
        with open(fake_file, "w") as f:
            f.write("dummy checkpoint")

        model = Sequential(1, (2, 2, 2, 2, 2), init="deepctr", init_std=1e5)
        model.compile(optimizer="sgd", loss="mse")

        x_nan = np.array([[1.0]])
        y_nan = np.array([[1.0]])  # Keras: inf (refused by ctrkit); the model diverges instead

        raise_error_terminate_callback = TerminateOnNaN(raise_error=True)
        backup_callback = BackupAndRestore(backup_dir=backup_dir)

        # Monkeypatch BackupAndRestore to prevent cleanup on train_end
        backup_callback.on_train_end = lambda logs=None: None

        # Training should raise RuntimeError
        with pytest.raises(RuntimeError):
            model.fit(
                {"x": x_nan},
                y_nan,
                epochs=1,
                callbacks=[backup_callback, raise_error_terminate_callback],
                verbose=0,
            )

        # Verify backup directory still exists and file inside is untouched
        assert os.path.exists(backup_dir), f"Backup dir deleted: {backup_dir}"
        assert os.path.exists(fake_file), "Backup file missing unexpectedly."

    @pytest.mark.parametrize("raise_error", [False, True])
    def test_normal_training_does_not_raise(self, raise_error):
        """Test that TerminateOnNaN does not raise on normal training."""
        model = Sequential()
        model.compile(optimizer="sgd", loss="mse")

        x = np.array([[1.0], [2.0]])
        y = np.array([[1.0], [2.0]])

        callback = TerminateOnNaN(raise_error=raise_error)

        # Should complete without raising RuntimeError
        history = model.fit({"x": x}, y, epochs=2, callbacks=[callback], verbose=0)

        # Should have completed 2 epochs
        assert len(history.history["loss"]) == 2

    def test_raise_error_terminate_stops_on_later_batch(self):
        """Ensure TerminateOnNaN(raise_error=True) stops training
        if NaN appears in later batch.
        """
        model = Sequential(1, (2, 2, 2, 2, 2), init="deepctr", init_std=1e5)
        model.compile(optimizer="sgd", loss="mse")

        # Batch 1: normal loss, Batch 2: NaN loss
        x = np.array([[1.0], [2.0]])
        y = np.array([[1.0], [2.0]])  # Keras: [[1.0], [inf]] (refused by ctrkit)

        callback = TerminateOnNaN(raise_error=True)

        with pytest.raises(RuntimeError) as exc:
            model.fit({"x": x}, y, epochs=1, batch_size=1, callbacks=[callback], verbose=0)

        assert any(f"batch {i}" in str(exc.value) for i in [0, 1])
