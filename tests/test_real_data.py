"""A practitioner's ordinary data: DataFrames, empty inputs, NaN ids, ragged histories."""
import warnings

import numpy as np
import pytest

import ctrkit
from ctrkit.errors import InputError

# float results compared within a tolerance or run to run: CI reruns them under
# ATEN_CPU_CAPABILITY=avx2 and =default (see .ci/run)
pytestmark = pytest.mark.numeric

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


# ----------------------------------------------------------------------------- ragged histories
def ragged_of(x, name):
    """Each row's valid history as an unpadded list (what a client sends)."""
    return [list(r[:n]) for r, n in zip(x[name], x["seq_length"])]


def test_ragged_histories_give_the_padded_predictions(tutorial):
    """Seen: lists of different lengths raised numpy's 'setting an array element ...'."""
    x, y, features, _ = tutorial
    model = ctrkit.build("din", features)
    expected = model.predict(x)
    ragged = {k: v for k, v in x.items() if k != "seq_length"}  # the length is derived
    for name in ("hist_item", "hist_item_gender"):
        ragged[name] = ragged_of(x, name)
    np.testing.assert_array_equal(model.predict(ragged), expected)
    # numpy object arrays, a DataFrame column of lists and one of arrays
    obj = dict(ragged, hist_item=np.array([np.array(r) for r in ragged["hist_item"]] + [None],
                                          dtype=object)[:-1])
    np.testing.assert_array_equal(model.predict(obj), expected)
    df = pd.DataFrame(ragged)
    np.testing.assert_array_equal(model.predict(df), expected)
    df["hist_item"] = [np.array(r, dtype=np.int64) for r in ragged["hist_item"]]
    np.testing.assert_array_equal(model.predict(df), expected)
    # a given length column must agree with the lists
    np.testing.assert_array_equal(model.predict(dict(ragged, seq_length=x["seq_length"])),
                                  expected)
    with pytest.raises(InputError, match=r"Length feature 'seq_length' says 1 at row 0, "
                                         r"but the list of 'hist_item' there has 3 "
                                         r"entries"):
        model.predict(dict(ragged, seq_length=np.array([1, 2, 2])))
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    assert model.evaluate(ragged, y) == model.evaluate(x, y)
    np.testing.assert_array_equal(model.explain(ragged), model.explain(x))


def test_ragged_rows_longer_than_maxlen_keep_the_most_recent(tutorial):
    x, _, features, _ = tutorial
    model = ctrkit.build("din", features)
    # maxlen is 4: an older behaviour in front is dropped, as build_behavior_sequences does
    longer = {k: v for k, v in x.items() if k != "seq_length"}
    longer["hist_item"] = [[3, 3, 1, 2, 3], [1, 2], [3, 1, 2]]
    longer["hist_item_gender"] = [[2, 2, 1, 2, 1], [1, 2], [2, 1, 2]]
    padded = dict(x, hist_item=np.array([[3, 1, 2, 3], [1, 2, 0, 0], [3, 1, 2, 0]]),
                  hist_item_gender=np.array([[2, 1, 2, 1], [1, 2, 0, 0], [2, 1, 2, 0]]),
                  seq_length=np.array([4, 2, 3]))
    np.testing.assert_array_equal(model.predict(longer), model.predict(padded))


def test_ragged_input_refusals(tutorial):
    x, _, features, _ = tutorial
    model = ctrkit.build("din", features)
    ragged = {k: v for k, v in x.items() if k != "seq_length"}
    ragged["hist_item"] = ragged_of(x, "hist_item")
    ragged["hist_item_gender"] = ragged_of(x, "hist_item_gender")
    bad = dict(ragged, hist_item_gender=[[1, 2, 1], [1], [2, 1]])
    with pytest.raises(InputError, match=r"'hist_item' and 'hist_item_gender' share the "
                                         r"length column 'seq_length' but their lists at "
                                         r"row 1 keep 3 and 1 entries"):
        model.predict(bad)
    with pytest.raises(InputError, match=r"'hist_item' holds the padding id 0 at row 0, "
                                         r"position 3 of its lists"):
        model.predict(dict(ragged, hist_item=[[1, 2, 3, 0], [1, 2], [1, 2, 3]],
                           hist_item_gender=[[1, 2, 1, 2], [1, 2], [1, 2, 1]]))
    with pytest.raises(InputError, match=r"missing row \(None/NaN\) at row 2"):
        model.predict(dict(ragged, hist_item=pd.Series([[1], [2], None])))
    with pytest.raises(InputError, match=r"'seq_length' is the length column of 'hist_item' and "
                                         r"'hist_item_gender': pass it, or pass 'hist_item' and "
                                         r"'hist_item_gender' as unpadded lists"):
        model.predict({k: v for k, v in x.items() if k != "seq_length"})
    with pytest.raises(InputError, match=r"Feature 'hist_item' has id 9 at row 1, "
                                         r"position 0"):
        model.predict(dict(ragged, hist_item=[[1, 2, 3], [9, 2], [1, 2, 3]]))


# ----------------------------------------------------------------------------- empty and odd
@pytest.mark.parametrize("frame", [False, True])
def test_zero_rows_is_a_clear_error_everywhere(tutorial, frame):
    """Seen: fit on 0 rows succeeded, warning only that AUC is undefined."""
    x, y, features, _ = tutorial
    empty = {k: v[:0] for k, v in x.items()}
    if frame:
        empty = pd.DataFrame({k: list(v) for k, v in empty.items()})
    model = ctrkit.build("din", features)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    match = r"x has 0 rows \(feature '.*' is empty\); fit, evaluate, predict and explain need"
    with pytest.raises(InputError, match=match):
        model.fit(empty, y[:0], verbose=0)
    with pytest.raises(InputError, match=match):
        model.evaluate(empty, y[:0])
    with pytest.raises(InputError, match=match):
        model.predict(empty)
    with pytest.raises(InputError, match=match):
        model.explain(empty)
    with pytest.raises(InputError, match="In validation_data: " + match):
        model.fit(x, y, verbose=0, validation_data=(empty, y[:0]))
    assert all(v.equal(before[k]) for k, v in model.state_dict().items())


def test_nan_in_an_id_column_is_named_and_integral_floats_are_exact(tutorial):
    """Seen: NaN in an id column was reported as a 'float64' dtype problem."""
    x, _, features, _ = tutorial
    model = ctrkit.build("din", features)
    df = pd.DataFrame({k: list(v) if np.ndim(v) == 2 else v for k, v in x.items()})
    merged = df.assign(item=df["item"].astype("float64"))  # what a pandas merge leaves
    np.testing.assert_array_equal(model.predict(merged), model.predict(x))
    merged.loc[1, "item"] = np.nan
    with pytest.raises(InputError, match=r"Feature 'item' has NaN \(a missing value\) at "
                                         r"row 1; ids must be integers"):
        model.predict(merged)
    nullable = df.assign(user=pd.array([0, None, 2], dtype="Int64"))
    with pytest.raises(InputError, match=r"Feature 'user' has NaN \(a missing value\) at "
                                         r"row 1"):
        model.predict(nullable)


def test_lists_tensors_and_series_give_the_same_predictions_without_warnings(tutorial):
    import torch
    x, y, features, _ = tutorial
    model = ctrkit.build("din", features)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    expected = model.predict(x)
    variants = [{k: torch.as_tensor(v) for k, v in x.items()},
                {k: np.asarray(v).tolist() for k, v in x.items()},
                {k: pd.Series(list(v)) if np.ndim(v) == 2 else pd.Series(v) for k, v in x.items()}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for data in variants:
            np.testing.assert_array_equal(model.predict(data), expected)
            assert model.evaluate(data, torch.as_tensor(y)) == model.evaluate(x, y)
        model.fit(variants[0], torch.as_tensor(y), batch_size=2, verbose=0)


def test_validated_columns_are_reused_as_they_are(tutorial):
    x, y, features, _ = tutorial
    model = ctrkit.build("din", features)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    cols = model.input_columns(x)
    np.testing.assert_array_equal(model.predict(cols), model.predict(x))
    assert model.evaluate(cols, y) == model.evaluate(x, y)
    model.compile("adam", "binary_crossentropy", metrics=["gauc"], gauc_group="session")
    with_session = dict(x, session=np.array([0, 0, 1]))
    with pytest.raises(InputError, match=r"The validated Columns lack \['session'\]; build them "
                                         r"with model.input_columns\(x, extra=\['session'\]\)"):
        model.evaluate(model.input_columns(with_session), y)
    cols = model.input_columns(with_session, extra=["session"])
    assert model.evaluate(cols, y) == model.evaluate(with_session, y)
