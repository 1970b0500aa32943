# Ported from Keras 3's keras/src/callbacks/model_checkpoint_test.py
# (https://github.com/keras-team/keras, Apache-2.0). Changed: the imports; the models (a
# Keras Sequential or functional model [Dense(5, relu), Dense(3, softmax)] with
# categorical_crossentropy -> ctrkit.build("base", [DenseFeat("x", 3)],
# dnn_hidden_units=(5,)), a binary model with binary_crossentropy: ctrkit models have one
# output, so the data has 2 classes (NUM_CLASSES = 2, Keras: 3), the one-hot targets become
# one column and `x` -> {"x": x} (docs/porting.md#from-keras)); the metric objects
# metrics.Accuracy("acc") and metrics.AUC() -> the names "acc" and "auc";
# saving.load_model -> ctrkit.load, model.get_weights() -> keras_utils.get_weights(model) (the
# state dict as numpy), model.load_weights(path) -> model.load_state_dict(torch.load(path,
# weights_only=True)); self.get_temp_dir() -> pytest's tmp_path; unittest's asserts ->
# assert; the class is named Test* for pytest. The h5py skips are dropped (ctrkit writes no
# HDF5), and so is the JAX-on-GPU skip. Every assertion is kept; one test is an expected
# difference (marked, two cases of it).
import os
import warnings

import numpy as np
import pytest
import torch

import ctrkit
from ctrkit import DenseFeat
from ctrkit import callbacks
from ctrkit.errors import CallbackError
from keras_utils import get_test_data, get_weights, to_categorical

TRAIN_SAMPLES = 30
TEST_SAMPLES = 30
NUM_CLASSES = 2  # Keras: 3 (ctrkit models have one output)
INPUT_DIM = 3
NUM_HIDDEN = 5
BATCH_SIZE = 5


class TestModelCheckpoint:
    @pytest.mark.expected_difference("monitor-missing-key")
    @pytest.mark.expected_difference("unknown-mode")
    def test_model_checkpoint_options(self, tmp_path):
        def get_model():
            model = ctrkit.build("base", [DenseFeat("x", INPUT_DIM)],
                                 dnn_hidden_units=(NUM_HIDDEN,))
            model.compile(
                loss="binary_crossentropy",
                optimizer="sgd",
                metrics=["acc"],
            )
            return model

        model = get_model()
        temp_dir = str(tmp_path)

        # Save model to a subdir inside the temp_dir so we can test
        # automatic directory creation.
        filepath = os.path.join(temp_dir, "subdir", "checkpoint.keras")
        (x_train, y_train), (x_test, y_test) = get_test_data(
            random_seed=42,
            train_samples=TRAIN_SAMPLES,
            test_samples=TEST_SAMPLES,
            input_shape=(INPUT_DIM,),
            num_classes=NUM_CLASSES,
        )
        y_test = to_categorical(y_test)
        y_train = to_categorical(y_train)

        # Case 1
        monitor = "val_loss"
        save_best_only = False
        mode = "auto"

        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                mode=mode,
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        assert os.path.exists(filepath)
        os.remove(filepath)

        # Case 2
        mode = "min"
        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                mode=mode,
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        assert os.path.exists(filepath)
        os.remove(filepath)

        # Case 3
        mode = "max"
        monitor = "val_acc"
        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                mode=mode,
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        assert os.path.exists(filepath)
        os.remove(filepath)

        # Case 4
        save_best_only = True
        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                mode=mode,
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        assert os.path.exists(filepath)
        os.remove(filepath)

        # Case 5: metric not available.
        cbks = [
            callbacks.ModelCheckpoint(
                filepath, monitor="unknown", save_best_only=True, mode="min"
            )
        ]
        # Keras warns and saves at every epoch, as if save_best_only were False; ctrkit raises
        # (docs/porting.md#monitor-missing-key), so nothing is written.
        with pytest.raises(CallbackError, match="monitors 'unknown'"):
            model.fit(
                {"x": x_train},
                y_train,
                batch_size=BATCH_SIZE,
                validation_data=({"x": x_test}, y_test),
                callbacks=cbks,
                epochs=1,
                verbose=0,
            )
        assert not os.path.exists(filepath)  # Keras: the file exists

        # Case 6
        # Keras warns and falls back to mode='auto'; ctrkit refuses the argument
        # (docs/porting.md#unknown-mode).
        with warnings.catch_warnings(record=True) as warning_logs:
            warnings.simplefilter("always")
            with pytest.raises(CallbackError) as error:
                callbacks.ModelCheckpoint(
                    filepath,
                    monitor=monitor,
                    save_best_only=save_best_only,
                    mode="unknown",
                )
            assert "ModelCheckpoint(mode='unknown') is not one of" in str(error.value)
            assert warning_logs == []

        # Case 8a: `ModelCheckpoint` with an integer `save_freq`
        temp_dir = str(tmp_path)
        filepath = os.path.join(temp_dir, "checkpoint.epoch{epoch:02d}.keras")
        save_best_only = False
        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                mode=mode,
                save_freq=15,
            )
        ]
        assert not os.path.exists(filepath.format(epoch=3))
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=6,  # 5 batches / epoch, so should backup every 3 epochs
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=10,
            verbose=0,
        )
        assert not os.path.exists(filepath.format(epoch=1))
        assert not os.path.exists(filepath.format(epoch=2))
        assert os.path.exists(filepath.format(epoch=3))
        assert not os.path.exists(filepath.format(epoch=4))
        assert not os.path.exists(filepath.format(epoch=5))
        assert os.path.exists(filepath.format(epoch=6))
        assert not os.path.exists(filepath.format(epoch=7))
        assert not os.path.exists(filepath.format(epoch=8))
        assert os.path.exists(filepath.format(epoch=9))
        os.remove(filepath.format(epoch=3))
        os.remove(filepath.format(epoch=6))
        os.remove(filepath.format(epoch=9))

        # Case 8b: `ModelCheckpoint` with int `save_freq` & `save_weights_only`
        temp_dir = str(tmp_path)
        filepath = os.path.join(
            temp_dir, "checkpoint.epoch{epoch:02d}.weights.h5"
        )
        cbks = [
            callbacks.ModelCheckpoint(
                filepath, monitor=monitor, save_freq=15, save_weights_only=True
            )
        ]
        assert not os.path.exists(filepath.format(epoch=3))
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=6,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=10,
            verbose=0,
        )
        assert not os.path.exists(filepath.format(epoch=1))
        assert not os.path.exists(filepath.format(epoch=2))
        assert os.path.exists(filepath.format(epoch=3))
        assert not os.path.exists(filepath.format(epoch=4))
        assert not os.path.exists(filepath.format(epoch=5))
        assert os.path.exists(filepath.format(epoch=6))
        assert not os.path.exists(filepath.format(epoch=7))
        assert not os.path.exists(filepath.format(epoch=8))
        assert os.path.exists(filepath.format(epoch=9))

        # Case 9: `ModelCheckpoint` with valid and invalid save_freq argument.
        with pytest.raises(ValueError, match="Unrecognized save_freq"):
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                save_weights_only=True,
                mode=mode,
                save_freq="invalid_save_freq",
            )
        # The following should not raise ValueError.
        callbacks.ModelCheckpoint(
            filepath,
            monitor=monitor,
            save_best_only=save_best_only,
            save_weights_only=True,
            mode=mode,
            save_freq="epoch",
        )
        callbacks.ModelCheckpoint(
            filepath,
            monitor=monitor,
            save_best_only=save_best_only,
            save_weights_only=True,
            mode=mode,
            save_freq=3,
        )

        # Case 10a: `ModelCheckpoint` save with batch in filename.
        temp_dir = str(tmp_path)
        filepath = os.path.join(
            temp_dir, "checkpoint.epoch{epoch:02d}batch{batch:02d}.keras"
        )
        cbks = [
            callbacks.ModelCheckpoint(filepath, monitor=monitor, save_freq=1)
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=15,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=5,
            verbose=1,
        )
        assert os.path.exists(filepath.format(epoch=1, batch=1))
        assert os.path.exists(filepath.format(epoch=1, batch=2))
        assert os.path.exists(filepath.format(epoch=2, batch=1))
        assert os.path.exists(filepath.format(epoch=2, batch=2))
        assert os.path.exists(filepath.format(epoch=3, batch=1))
        assert os.path.exists(filepath.format(epoch=3, batch=2))
        assert os.path.exists(filepath.format(epoch=4, batch=1))
        assert os.path.exists(filepath.format(epoch=4, batch=2))
        assert os.path.exists(filepath.format(epoch=5, batch=1))
        assert os.path.exists(filepath.format(epoch=5, batch=2))

        # Case 10b: `ModelCheckpoint` save weights with batch in filename.
        temp_dir = str(tmp_path)
        filepath = os.path.join(
            temp_dir, "checkpoint.epoch{epoch:02d}batch{batch:02d}.weights.h5"
        )
        cbks = [
            callbacks.ModelCheckpoint(
                filepath, monitor=monitor, save_freq=1, save_weights_only=True
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=15,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=5,
            verbose=1,
        )

        assert os.path.exists(filepath.format(epoch=1, batch=1))
        assert os.path.exists(filepath.format(epoch=1, batch=2))
        assert os.path.exists(filepath.format(epoch=2, batch=1))
        assert os.path.exists(filepath.format(epoch=2, batch=2))
        assert os.path.exists(filepath.format(epoch=3, batch=1))
        assert os.path.exists(filepath.format(epoch=3, batch=2))
        assert os.path.exists(filepath.format(epoch=4, batch=1))
        assert os.path.exists(filepath.format(epoch=4, batch=2))
        assert os.path.exists(filepath.format(epoch=5, batch=1))
        assert os.path.exists(filepath.format(epoch=5, batch=2))

        # Case 11: ModelCheckpoint saves model with initial_value_threshold
        # param
        mode = "max"
        monitor = "val_acc"
        initial_value_threshold = -0.01
        save_best_only = True
        filepath = os.path.join(temp_dir, "checkpoint.keras")
        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                initial_value_threshold=initial_value_threshold,
                mode=mode,
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        assert os.path.exists(filepath)
        os.remove(filepath)

        # Case 12: ModelCheckpoint saves model with initial_value_threshold
        # param
        mode = "auto"
        monitor = "val_loss"
        initial_value_threshold = None
        save_best_only = True
        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                initial_value_threshold=initial_value_threshold,
                mode=mode,
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        assert os.path.exists(filepath)
        os.remove(filepath)

        # Case 13: ModelCheckpoint doesn't save model if loss was minimum
        # earlier
        mode = "min"
        monitor = "val_loss"
        initial_value_threshold = 0
        save_best_only = True
        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                initial_value_threshold=initial_value_threshold,
                mode=mode,
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        assert not os.path.exists(filepath)

        # Case 14: ModelCheckpoint doesn't save model if loss was min earlier in
        # auto mode
        mode = "auto"
        monitor = "val_loss"
        initial_value_threshold = 0
        save_best_only = True
        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                initial_value_threshold=initial_value_threshold,
                mode=mode,
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        assert not os.path.exists(filepath)

        # Case 15: ModelCheckpoint doesn't save model if auc was max earlier in
        # auto mode
        mode = "auto"
        monitor = "val_auc"
        initial_value_threshold = 1
        save_best_only = True
        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                initial_value_threshold=initial_value_threshold,
                mode=mode,
            )
        ]
        model.compile(
            loss="binary_crossentropy",
            optimizer="sgd",
            metrics=["auc"],
        )
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        assert not os.path.exists(filepath)

    def test_model_checkpoint_loading(self, tmp_path):
        def get_model():
            functional_model = ctrkit.build("base", [DenseFeat("x", INPUT_DIM)],
                                            dnn_hidden_units=(NUM_HIDDEN,))
            functional_model.compile(
                loss="binary_crossentropy",
                optimizer="sgd",
                metrics=["acc"],
            )
            return functional_model

        (x_train, y_train), (x_test, y_test) = get_test_data(
            random_seed=42,
            train_samples=TRAIN_SAMPLES,
            test_samples=TEST_SAMPLES,
            input_shape=(INPUT_DIM,),
            num_classes=NUM_CLASSES,
        )
        y_test = to_categorical(y_test)
        y_train = to_categorical(y_train)

        # Model Checkpoint load model (default)
        model = get_model()
        temp_dir = str(tmp_path)
        filepath = os.path.join(temp_dir, "checkpoint.model.keras")
        mode = "auto"
        monitor = "val_loss"
        save_best_only = True

        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                mode=mode,
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        ref_weights = get_weights(model)
        assert os.path.exists(filepath)
        new_model = ctrkit.load(filepath)
        new_weights = get_weights(new_model)
        assert len(ref_weights) == len(new_weights)
        for ref_w, w in zip(ref_weights, new_weights):
            np.testing.assert_allclose(w, ref_w)

        # Model Checkpoint load model weights
        model = get_model()
        temp_dir = str(tmp_path)
        filepath = os.path.join(temp_dir, "checkpoint.weights.h5")
        mode = "auto"
        monitor = "val_loss"
        save_best_only = True

        cbks = [
            callbacks.ModelCheckpoint(
                filepath,
                monitor=monitor,
                save_best_only=save_best_only,
                save_weights_only=True,
                mode=mode,
            )
        ]
        model.fit(
            {"x": x_train},
            y_train,
            batch_size=BATCH_SIZE,
            validation_data=({"x": x_test}, y_test),
            callbacks=cbks,
            epochs=1,
            verbose=0,
        )
        ref_weights = get_weights(model)
        assert os.path.exists(filepath)
        new_model = get_model()
        new_model.load_state_dict(torch.load(filepath, weights_only=True))
        new_weights = get_weights(new_model)
        assert len(ref_weights) == len(new_weights)
        for ref_w, w in zip(ref_weights, new_weights):
            np.testing.assert_allclose(w, ref_w)
