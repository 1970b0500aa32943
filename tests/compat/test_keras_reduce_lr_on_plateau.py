# Ported from Keras 3's keras/src/callbacks/reduce_lr_on_plateau_test.py
# (https://github.com/keras-team/keras, Apache-2.0). Changed: the imports; the model
# constructors (a Keras Sequential [Dense(5), Dense(2)] -> keras_utils.Sequential(3, (5,)), a
# one-output regression model; Adam(0.1) -> compile("adam", learning_rate=0.1)); the one-hot
# targets -> one column and `x` -> {"x": x} (docs/porting.md#from-keras);
# `model.optimizer.learning_rate.value` -> keras_utils.learning_rate(model), the rate of the
# torch optimizer `compile` built, and Keras's float32 equality with it -> pytest.approx
# (0.1 * 0.1 is 0.010000000000000002 in float64); Keras's logged message (io_utils.print_msg,
# caught with assertLogs) -> ctrkit's line on stdout (capsys); unittest's asserts -> assert;
# setUp -> a fixture; the class is named Test* for pytest. Every assertion is kept; one test is
# an expected difference (marked).
import pytest

from ctrkit import callbacks
from ctrkit.errors import ConfigError
from keras_utils import Sequential, get_test_data, learning_rate, to_categorical


class TestReduceLROnPlateau:
    @pytest.fixture(autouse=True)
    def setUp(self):
        (x_train, y_train), (x_test, y_test) = get_test_data(
            train_samples=10,
            test_samples=10,
            input_shape=(3,),
            num_classes=2,
        )
        y_test = to_categorical(y_test)
        y_train = to_categorical(y_train)

        model = Sequential(3, (5,))

        model.compile(
            loss="mse",
            optimizer="adam",
            learning_rate=0.1,
        )

        self.model = model
        self.x_train = {"x": x_train}
        self.x_test = {"x": x_test}
        self.y_train = y_train
        self.y_test = y_test

    def test_reduces_lr_with_model_fit(self):
        reduce_lr = callbacks.ReduceLROnPlateau(
            patience=1, factor=0.1, monitor="val_loss", min_delta=100
        )

        self.model.fit(
            self.x_train,
            self.y_train,
            validation_data=(self.x_test, self.y_test),
            callbacks=[reduce_lr],
            epochs=2,
        )

        assert learning_rate(self.model) == pytest.approx(0.01)

    @pytest.mark.expected_difference("learning-rate-schedules")
    def test_throws_when_optimizer_has_schedule(self):
        reduce_lr = callbacks.ReduceLROnPlateau(
            patience=1, factor=0.1, monitor="val_loss", min_delta=100
        )

        # Keras: Adam(PolynomialDecay(initial_learning_rate=0.1, decay_steps=10)), and fit
        # raises TypeError("This optimizer was created with a `LearningRateSchedule`...").
        # ctrkit's compile takes a number; a schedule is a callback, so the conflict cannot
        # arise: compile refuses the schedule (docs/porting.md#learning-rate-schedules).
        with pytest.raises(ConfigError, match="must be a number > 0"):
            self.model.compile(
                loss="mse",
                optimizer="adam",
                learning_rate=lambda step: 0.1 * (1 - min(step, 10) / 10),
            )
        self.model.fit(
            self.x_train,
            self.y_train,
            validation_data=(self.x_test, self.y_test),
            callbacks=[reduce_lr],
            epochs=2,
        )
        # ctrkit port: added; the refused compile left the model's optimizer (Adam, 0.1) as it
        # was, and the callback reduced its rate once
        assert learning_rate(self.model) == pytest.approx(0.01)

    def test_verbose_logging(self, capsys):
        reduce_lr = callbacks.ReduceLROnPlateau(
            patience=1, factor=0.1, monitor="val_loss", min_delta=100, verbose=1
        )

        self.model.fit(
            self.x_train,
            self.y_train,
            validation_data=(self.x_test, self.y_test),
            callbacks=[reduce_lr],
            epochs=2,
        )
        expected_log = "ReduceLROnPlateau reducing learning rate to 0.01"
        assert any(expected_log in log for log in capsys.readouterr().out.splitlines())

    def test_honors_min_lr(self):
        reduce_lr = callbacks.ReduceLROnPlateau(
            patience=1,
            factor=0.1,
            monitor="val_loss",
            min_delta=10,
            min_lr=0.005,
        )

        self.model.fit(
            self.x_train,
            self.y_train,
            validation_data=(self.x_test, self.y_test),
            callbacks=[reduce_lr],
            epochs=4,
        )

        assert learning_rate(self.model) == pytest.approx(0.005)

    def test_cooldown(self):
        reduce_lr = callbacks.ReduceLROnPlateau(
            patience=1,
            factor=0.1,
            monitor="val_loss",
            min_delta=100,
            cooldown=2,
        )

        self.model.fit(
            self.x_train,
            self.y_train,
            validation_data=(self.x_test, self.y_test),
            callbacks=[reduce_lr],
            epochs=4,
        )

        # With a cooldown of 2 epochs, we should only reduce the LR every other
        # epoch, so after 4 epochs we will have reduced 2 times.
        assert learning_rate(self.model) == pytest.approx(0.001)

    def test_state_reset_across_fit_calls(self):
        # `ReduceLROnPlateau` is reused across `model.fit()` calls, so
        # `on_train_begin` -> `_reset` must clear all per-run state.
        reduce_lr = callbacks.ReduceLROnPlateau(
            patience=1, factor=0.1, monitor="loss", min_delta=0, cooldown=2
        )
        reduce_lr.set_model(self.model)
        reduce_lr.on_train_begin()
        # Drive some state from a first run.
        reduce_lr.best = 0.5
        reduce_lr.wait = 3
        reduce_lr.cooldown_counter = 2
        # New `model.fit()` -> `on_train_begin` should clear all per-run
        # state.
        reduce_lr.on_train_begin()
        assert reduce_lr.best is None
        assert reduce_lr.wait == 0
        assert reduce_lr.cooldown_counter == 0
