# Helpers of the Keras 3 callback test ports (tests/compat/test_keras_*.py).
# `get_test_data` is ported from Keras 3's keras/src/testing/test_utils.py
# (https://github.com/keras-team/keras, Apache-2.0), unchanged. `Sequential` and
# `to_categorical` are the stand-ins for a Keras Sequential of Dense layers and for
# keras.utils.to_categorical: a ctrkit model takes a dict keyed by feature name and has one
# output, so a Keras Dense stack on `x` of width d is a one-feature regression `base` model
# (docs/porting.md#from-keras), and the one-hot target of a 2-class problem is its one
# column of positives.
import numpy as np

import ctrkit
from ctrkit import DenseFeat


def Sequential(input_dim=1, dnn_hidden_units=(1,), **kw):
    """A one-input regression network, the stand-in for Keras's Dense stacks."""
    return ctrkit.build("base", [DenseFeat("x", input_dim)], task="regression",
                        dnn_hidden_units=dnn_hidden_units, **kw)


def to_categorical(y):
    """keras.utils.to_categorical for 2 classes, as ctrkit's single output sees it: the
    probability of class 1, one column (float)."""
    y = np.asarray(y)
    assert set(np.unique(y)) <= {0, 1}, "the ports use 2-class data only"
    return y.astype(np.float64).reshape(-1, 1)


def get_test_data(
    train_samples, test_samples, input_shape, num_classes, random_seed=None
):
    """Generates balanced, stratified synthetic test data to train a model on.

    Returns:
        A tuple of Numpy arrays: `(x_train, y_train), (x_test, y_test)`.
    """
    np.random.seed(random_seed)

    # Total samples
    total_samples = train_samples + test_samples

    # Ensure that we generate a balanced dataset
    samples_per_class = total_samples // num_classes
    y = np.array(
        [i for i in range(num_classes) for _ in range(samples_per_class)],
        dtype=np.int32,
    )

    # Generate extra samples in a deterministic manner
    extra_samples = total_samples - len(y)
    y_extra = np.array(
        [i % num_classes for i in range(extra_samples)], dtype=np.int64
    )
    y = np.concatenate([y, y_extra])

    # Generate data
    templates = 2 * num_classes * np.random.random((num_classes,) + input_shape)
    x = np.zeros((total_samples,) + input_shape, dtype=np.float32)
    for i in range(total_samples):
        x[i] = templates[y[i]] + np.random.normal(
            loc=0, scale=1.0, size=input_shape
        )

    # Shuffle the entire dataset to ensure randomness based on seed
    indices = np.arange(total_samples)
    np.random.shuffle(indices)
    x, y = x[indices], y[indices]

    # Stratified Shuffle Split
    x_train, y_train, x_test, y_test = [], [], [], []
    for cls in range(num_classes):
        cls_indices = np.where(y == cls)[0]
        np.random.shuffle(cls_indices)
        train_count = int(train_samples / num_classes)

        x_train.extend(x[cls_indices[:train_count]])
        y_train.extend(y[cls_indices[:train_count]])

        x_test.extend(x[cls_indices[train_count:]])
        y_test.extend(y[cls_indices[train_count:]])

    # Convert to numpy arrays
    x_train, y_train = np.array(x_train), np.array(y_train)
    x_test, y_test = np.array(x_test), np.array(y_test)

    # Shuffle training and test sets after stratified split
    train_indices = np.arange(len(x_train))
    test_indices = np.arange(len(x_test))
    np.random.shuffle(train_indices)
    np.random.shuffle(test_indices)

    x_train, y_train = x_train[train_indices], y_train[train_indices]
    x_test, y_test = x_test[test_indices], y_test[test_indices]

    return (x_train, y_train), (x_test, y_test)


def learning_rate(model):
    """ctrkit's `model.optimizer.learning_rate.value`: the rate of the optimizer `compile`
    built (its first parameter group; the lr callbacks set every group)."""
    return model.trainer.optimizer.param_groups[0]["lr"]


def get_weights(model):
    """keras Model.get_weights(): every weight (and buffer) of the model, as numpy arrays."""
    return [v.detach().cpu().numpy() for v in model.state_dict().values()]
