# Ported from Keras 3's keras/src/callbacks/csv_logger_test.py
# (https://github.com/keras-team/keras, Apache-2.0). Changed: the imports; the model
# constructors (a Keras Sequential [Dense(2, relu), Dense(1)] -> keras_utils.Sequential(
# INPUT_DIM, (2,)); five Dense(2, relu) layers with a constant 1e5 kernel, then Dense(2) ->
# the diverging model of test_keras_terminate_on_nan.py, N(0, 1e5) weights, 8 wide); the
# one-hot targets -> one column and `x` -> {"x": x} (docs/porting.md#from-keras); unittest's
# asserts -> assert; tempfile.TemporaryDirectory() -> pytest's tmp_path (an unclosed
# TemporaryDirectory warns, and the suite makes warnings errors); the class is named Test*
# for pytest. ctrkit's graceful stop warns
# (RuntimeWarning), which the suite turns into errors, hence the filterwarnings mark. Every
# assertion is kept.
import csv
import os
import re

import numpy as np
import pytest

from ctrkit import callbacks
from keras_utils import Sequential, to_categorical

TRAIN_SAMPLES = 10
TEST_SAMPLES = 10
INPUT_DIM = 3
BATCH_SIZE = 4


class TestCSVLogger:
    def test_CSVLogger(self, tmp_path):
        OUTPUT_DIM = 1
        np.random.seed(1337)
        filepath = os.path.join(tmp_path, "log.tsv")

        sep = "\t"
        x_train = np.random.random((TRAIN_SAMPLES, INPUT_DIM))
        y_train = np.random.random((TRAIN_SAMPLES, OUTPUT_DIM))
        x_test = np.random.random((TEST_SAMPLES, INPUT_DIM))
        y_test = np.random.random((TEST_SAMPLES, OUTPUT_DIM))
        x_train, x_test = {"x": x_train}, {"x": x_test}

        def make_model():
            np.random.seed(1337)
            model = Sequential(INPUT_DIM, (2,))
            model.compile(
                loss="mse",
                optimizer="sgd",
                metrics=["mse"],
            )
            return model

        # case 1, create new file with defined separator
        model = make_model()
        cbks = [callbacks.CSVLogger(filepath, separator=sep)]
        model.fit(
            x_train,
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=(x_test, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )

        assert os.path.exists(filepath)
        with open(filepath) as csvfile:
            dialect = csv.Sniffer().sniff(csvfile.read())
        assert dialect.delimiter == sep
        del model
        del cbks

        # case 2, append data to existing file, skip header
        model = make_model()
        cbks = [callbacks.CSVLogger(filepath, separator=sep, append=True)]
        model.fit(
            x_train,
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=(x_test, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )

        # case 3, reuse of CSVLogger object
        model.fit(
            x_train,
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=(x_test, y_test),
            callbacks=cbks,
            epochs=2,
            verbose=0,
        )

        with open(filepath) as csvfile:
            list_lines = csvfile.readlines()
            for line in list_lines:
                assert line.count(sep) == 4
            assert len(list_lines) == 5
            output = " ".join(list_lines)
            assert len(re.findall("epoch", output)) == 1

        os.remove(filepath)

        # case 3, Verify Val. loss also registered when Validation Freq > 1
        model = make_model()
        cbks = [callbacks.CSVLogger(filepath, separator=sep)]
        hist = model.fit(
            x_train,
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=(x_test, y_test),
            validation_freq=3,
            callbacks=cbks,
            epochs=5,
            verbose=0,
        )
        assert os.path.exists(filepath)
        # Verify that validation loss is registered at val. freq
        with open(filepath) as csvfile:
            rows = csv.DictReader(csvfile, delimiter=sep)
            for idx, row in enumerate(rows, 1):
                assert "val_loss" in row
                if idx == 3:
                    assert row["val_loss"] == str(hist.history["val_loss"][0])
                else:
                    assert row["val_loss"] == "NA"

    @pytest.mark.filterwarnings("ignore:TerminateOnNaN:RuntimeWarning")
    def test_stop_training_csv(self, tmp_path):
        # Test that using the CSVLogger callback with the TerminateOnNaN
        # callback does not result in invalid CSVs.
        csv_logfile = os.path.join(tmp_path, "csv_logger.csv")
        NUM_CLASSES = 2
        np.random.seed(1337)
        x_train = np.random.random((TRAIN_SAMPLES, INPUT_DIM))
        y_train = np.random.choice(np.arange(NUM_CLASSES), size=TRAIN_SAMPLES)
        x_test = np.random.random((TEST_SAMPLES, INPUT_DIM))
        y_test = np.random.choice(np.arange(NUM_CLASSES), size=TEST_SAMPLES)

        y_test = to_categorical(y_test)
        y_train = to_categorical(y_train)
        # Keras: 5 Dense(2, relu) layers with a constant 1e5 kernel initializer, then Dense(2)
        model = Sequential(INPUT_DIM, (8, 8, 8, 8, 8), init="deepctr", init_std=1e5)
        model.compile(loss="mean_squared_error", optimizer="sgd")

        history = model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=[
                callbacks.TerminateOnNaN(),
                callbacks.CSVLogger(csv_logfile),
            ],
            epochs=20,
        )
        loss = history.history["loss"]
        assert len(loss) == 1
        assert np.isnan(loss[0]) or np.isinf(loss[0])

        values = []
        with open(csv_logfile) as f:
            # On Windows, due to \r\n line ends, we may end up reading empty
            # lines after each line. Skip empty lines.
            values = [x for x in csv.reader(f) if x]
        assert "nan" in values[-1], "NaN not logged in CSV Logger."
