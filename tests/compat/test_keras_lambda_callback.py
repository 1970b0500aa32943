# Ported from Keras 3's keras/src/callbacks/lambda_callback_test.py
# (https://github.com/keras-team/keras, Apache-2.0). Changed: the imports (absl's logging ->
# the standard library's, which absl's routes to; unittest's assertLogs/assertTrue/
# assertIsInstance -> pytest's caplog and assert); the model constructors (a Keras Sequential
# [Input(2), Dense(1)] -> keras_utils.Sequential(2, (1,)) with SGD and MSE given by name); `x` ->
# {"x": x} (docs/porting.md#from-keras); the class is named Test* for pytest. Every assertion
# is kept; one test is an expected difference (marked).
import logging

import numpy as np
import pytest

from ctrkit import callbacks
from ctrkit.errors import CallbackError
from keras_utils import Sequential


class TestLambdaCallback:
    def test_lambda_callback(self, caplog):
        """Test standard LambdaCallback functionalities with training."""
        batch_size = 4
        model = Sequential(2, (1,))
        model.compile(optimizer="sgd", loss="mean_squared_error")
        x = np.random.randn(16, 2)
        y = np.random.randn(16, 1)
        lambda_log_callback = callbacks.LambdaCallback(
            on_train_begin=lambda logs: logging.warning("on_train_begin"),
            on_epoch_begin=lambda epoch, logs: logging.warning(
                "on_epoch_begin"
            ),
            on_epoch_end=lambda epoch, logs: logging.warning("on_epoch_end"),
            on_train_end=lambda logs: logging.warning("on_train_end"),
        )
        with caplog.at_level(logging.WARNING):
            model.fit(
                {"x": x},
                y,
                batch_size=batch_size,
                validation_split=0.2,
                callbacks=[lambda_log_callback],
                epochs=5,
                verbose=0,
            )
            logs = caplog.messages
            assert any("on_train_begin" in log for log in logs)
            assert any("on_epoch_begin" in log for log in logs)
            assert any("on_epoch_end" in log for log in logs)
            assert any("on_train_end" in log for log in logs)

    def test_lambda_callback_with_batches(self, caplog):
        """Test LambdaCallback's behavior with batch-level callbacks."""
        batch_size = 4
        model = Sequential(2, (1,))
        model.compile(optimizer="sgd", loss="mean_squared_error")
        x = np.random.randn(16, 2)
        y = np.random.randn(16, 1)
        lambda_log_callback = callbacks.LambdaCallback(
            on_train_batch_begin=lambda batch, logs: logging.warning(
                "on_train_batch_begin"
            ),
            on_train_batch_end=lambda batch, logs: logging.warning(
                "on_train_batch_end"
            ),
        )
        with caplog.at_level(logging.WARNING):
            model.fit(
                {"x": x},
                y,
                batch_size=batch_size,
                validation_split=0.2,
                callbacks=[lambda_log_callback],
                epochs=5,
                verbose=0,
            )
            logs = caplog.messages
            assert any("on_train_batch_begin" in log for log in logs)
            assert any("on_train_batch_end" in log for log in logs)

    def test_lambda_callback_with_kwargs(self, caplog):
        """Test LambdaCallback's behavior with custom defined callback."""
        batch_size = 4
        model = Sequential(2, (1,))
        model.compile(optimizer="sgd", loss="mean_squared_error")
        x = np.random.randn(16, 2)
        y = np.random.randn(16, 1)
        model.fit(
            {"x": x}, y, batch_size=batch_size, epochs=1, verbose=0
        )  # Train briefly for evaluation to work.

        def custom_on_test_begin(logs):
            logging.warning("custom_on_test_begin_executed")

        lambda_log_callback = callbacks.LambdaCallback(
            on_test_begin=custom_on_test_begin
        )
        with caplog.at_level(logging.WARNING):
            model.evaluate(
                {"x": x},
                y,
                batch_size=batch_size,
                callbacks=[lambda_log_callback],
                verbose=0,
            )
            assert any(
                "custom_on_test_begin_executed" in log
                for log in caplog.messages
            )

    def test_lambda_callback_no_args(self):
        """Test initializing LambdaCallback without any arguments."""
        lambda_callback = callbacks.LambdaCallback()
        assert isinstance(lambda_callback, callbacks.LambdaCallback)

    @pytest.mark.expected_difference("lambdacallback-unknown-hooks")
    def test_lambda_callback_with_additional_kwargs(self):
        """Test initializing LambdaCallback with non-predefined kwargs."""

        def custom_callback(logs):
            pass

        # Keras sets any keyword as an attribute; ctrkit refuses a name that is not a hook
        # (a misspelt hook would never be called): docs/porting.md#lambdacallback-unknown-hooks
        with pytest.raises(CallbackError, match="unknown hook 'custom_method'"):
            callbacks.LambdaCallback(custom_method=custom_callback)

    def test_lambda_callback_during_prediction(self, caplog):
        """Test LambdaCallback's functionality during model prediction."""
        batch_size = 4
        model = Sequential(2, (1,))
        model.compile(optimizer="sgd", loss="mean_squared_error")
        x = np.random.randn(16, 2)

        def custom_on_predict_begin(logs):
            logging.warning("on_predict_begin_executed")

        lambda_callback = callbacks.LambdaCallback(
            on_predict_begin=custom_on_predict_begin
        )
        with caplog.at_level(logging.WARNING):
            model.predict(
                {"x": x}, batch_size=batch_size, callbacks=[lambda_callback], verbose=0
            )
            assert any("on_predict_begin_executed" in log for log in caplog.messages)
