"""Bad input gets a clear error naming the thing, the row and the fix (issue 25)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ctrkit
from ctrkit import DenseFeat, SparseFeat, VarLenSparseFeat, get_feature_names
from ctrkit.errors import InputError, InputTypeError


def small(n=8, seed=0):
    rng = np.random.default_rng(seed)
    features = [SparseFeat("user", 5, 4), SparseFeat("item", 6, 4), DenseFeat("price", 1),
                VarLenSparseFeat(SparseFeat("hist_item", 6, 4), maxlen=3, length_name="len")]
    x = {"user": rng.integers(0, 5, n), "item": rng.integers(1, 6, n),
         "price": rng.random(n), "hist_item": rng.integers(1, 6, (n, 3)),
         "len": rng.integers(1, 4, n)}
    return ctrkit.build("din", features, dnn_hidden_units=(4,)), x, features


@pytest.mark.parametrize("labels, fix", [
    (["0", "1"], r"y.astype\(int\)"),
    (["no", "yes"], r"\(y == 'yes'\).astype\(int\)"),
    (["False", "True"], r"\(y == 'True'\).astype\(int\)"),
])
def test_string_labels_are_refused_with_the_explicit_conversion(labels, fix):
    model, x, _ = small()
    model.compile("adam")
    y = np.array([labels[i % 2] for i in range(8)], dtype=object)
    with pytest.raises(InputTypeError, match=r"y must be numeric.*row 0: '" + labels[0] +
                       r"'.*does not guess.*" + fix):
        model.fit(x, y, epochs=1, verbose=0)
    # the suggested fix works and gives the same model as numeric labels
    model.fit(x, (y == labels[1]).astype(int), epochs=1, verbose=0)


@pytest.mark.parametrize("as_frame", [False, True])
def test_misspelt_feature_name_suggests_the_closest_column(as_frame):
    model, x, _ = small()
    x = {("itme" if k == "item" else k): v for k, v in x.items() if k != "hist_item"}
    x["hist_item"] = small()[1]["hist_item"]
    if as_frame:
        x = pd.DataFrame({k: list(v) if np.ndim(v) == 2 else v for k, v in x.items()})
    with pytest.raises(InputError, match=r"missing feature\(s\) \['item'\].*Did you mean 'itme' "
                                         r"for 'item'\? Rename that column to 'item'"):
        model.predict(x)


def test_list_input_in_deepctr_order_works_and_a_wrong_order_is_named():
    model, x, features = small()
    names = get_feature_names(features)
    ordered = [x[n] for n in names]
    np.testing.assert_array_equal(model.predict(ordered), model.predict(x))
    swapped = list(ordered)
    i, j = names.index("item"), names.index("hist_item")
    swapped[i], swapped[j] = swapped[j], swapped[i]
    with pytest.raises(InputError, match=rf"must follow get_feature_names\(features\) order "
                                         rf".*x\[{i}\] has shape \(8, 3\), but 'item' expects "
                                         rf"one id per row.*reorder it"):
        model.predict(swapped)
    floats = list(ordered)
    k, d = names.index("user"), names.index("price")
    floats[k], floats[d] = floats[d], floats[k]
    with pytest.raises(InputError, match=rf"x\[{k}\] has non-integer floats.*'user' expects "
                                         rf"integer ids"):
        model.predict(floats)
