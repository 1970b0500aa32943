"""A practitioner's ordinary data: DataFrames, empty inputs, NaN ids, ragged histories (issue 13)."""
import warnings

import numpy as np
import pytest

import ctrkit

pd = pytest.importorskip("pandas")


def tutorial_frame(tutorial):
    """The DIN tutorial data as a DataFrame: a column per feature, histories as list cells."""
    x, y, _, _ = tutorial
    return pd.DataFrame({k: list(v) if np.ndim(v) == 2 else v for k, v in x.items()}), y


def test_dataframe_in_fit_evaluate_predict_without_any_warning(tutorial):
    x, y, features, _ = tutorial
    df, _ = tutorial_frame(tutorial)
    model = ctrkit.build("din", features)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warned "The given NumPy array is not writable"
        model.fit(df, pd.Series(y), batch_size=2, epochs=1, verbose=0,
                  validation_data=(df, pd.Series(y)))
        got = model.predict(df)
        logs = model.evaluate(df, pd.Series(y))
    np.testing.assert_array_equal(got, model.predict(x))
    assert logs == model.evaluate(x, y)
