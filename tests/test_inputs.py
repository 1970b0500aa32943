"""Bad input: each error names the feature/argument, the value and the fix; nothing is trained."""
import numpy as np
import pytest
import torch

import ctrkit
from ctrkit.errors import InputError, InputTypeError, NotCompiledError, UnknownNameError
from ctrkit.inputs import hash_values, prepare_inputs


@pytest.fixture
def compiled(tutorial):
    x, y, feats, hist = tutorial
    model = ctrkit.build("din", feats, history_feature_list=hist)
    model.compile("adagrad", "binary_crossentropy", metrics=["auc"])
    return model, x, y


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _bad(x, key, value):
    x = dict(x)
    x[key] = value
    return x


CASES = [
    ("missing", lambda x: {k: v for k, v in x.items() if k != "gender"},
     InputError, r"x is missing feature\(s\) \['gender'\]"),
    ("rows", lambda x: _bad(x, "user", np.array([0, 1])), InputError,
     "feature 'user' has 2 rows but the other inputs have 3"),
    ("id range", lambda x: _bad(x, "hist_item", np.array([[1, 2, 3, 0], [3, 2, 7, 0], [1, 2, 0, 0]])),
     InputError, r"Feature 'hist_item' has id 7 at row 1, position 2, but its vocabulary_size is 4 \(valid ids 0..3\)"),
    ("negative id", lambda x: _bad(x, "user", np.array([0, -1, 2])), InputError,
     "Feature 'user' has id -1 at row 1"),
    ("float ids", lambda x: _bad(x, "item", np.array([1.0, 2.5, 3.0])), InputTypeError,
     r"Feature 'item' must hold integer ids, but has the non-integer value 2.5 at row 1 "
     r"\(dtype float64\).*use_hash=True"),
    ("nan id", lambda x: _bad(x, "item", np.array([1.0, np.nan, 3.0])), InputError,
     r"Feature 'item' has NaN \(a missing value\) at row 1; ids must be integers. Fill"),
    ("inf id", lambda x: _bad(x, "hist_item", np.array([[1, 2, 3, 0], [3, np.inf, 1, 0],
                                                         [1, 2, 0, 0]])), InputError,
     r"Feature 'hist_item' has inf \(infinite\) at row 1, position 1"),
    ("rounded float id", lambda x: _bad(x, "item", np.array([1.0, 2.0 ** 53 + 2, 3.0])),
     InputTypeError, r"Feature 'item' holds ids as float64 and has the id 9007199254740994 at "
     r"row 1, above 9007199254740992.*rounded.*astype\('int64'\)"),
    ("string ids", lambda x: _bad(x, "item", np.array(["a", "b", "c"])), InputTypeError,
     "Feature 'item' must hold integer ids"),
    ("width", lambda x: _bad(x, "hist_item", np.zeros((3, 5), dtype=np.int64)), InputError,
     r"Sequence feature 'hist_item' has shape \(3, 5\) but needs \(rows, "
     r"maxlen=4\).*unpadded list.*pad_sequences"),
    ("length high", lambda x: _bad(x, "seq_length", np.array([3, 5, 2])), InputError,
     "Length feature 'seq_length' has value 5 at row 1, but it must lie in 0..4"),
    ("length low", lambda x: _bad(x, "seq_length", np.array([3, -1, 2])), InputError,
     "Length feature 'seq_length' has value -1 at row 1"),
    ("nan dense", lambda x: _bad(x, "score", np.array([0.1, np.nan, 0.3])), InputError,
     "'score' has a non-finite value nan at row 1"),
    ("inf dense", lambda x: _bad(x, "score", np.array([0.1, 0.2, np.inf])), InputError,
     "'score' has a non-finite value inf at row 2"),
]


@pytest.mark.parametrize("case, mutate, exc, match", CASES, ids=[c[0] for c in CASES])
def test_bad_x_raises_and_trains_nothing(compiled, case, mutate, exc, match):
    model, x, y = compiled
    before = _weights(model)
    with pytest.raises(exc, match=match):
        model.fit(mutate(x), y, verbose=0)
    after = _weights(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(exc, match=match):
        model.predict(mutate(x))


@pytest.mark.parametrize("y, match", [
    (np.array([1, 0]), "y has 2 labels but x has 3 rows"),
    (np.array([1, 0, 2]), r"y has label 2.0 at row 2, but task='binary' needs labels in \{0, 1\}"),
    (np.array([1, np.nan, 0]), "'y' has a non-finite value nan at row 1"),
])
def test_bad_labels(compiled, y, match):
    model, x, _ = compiled
    before = _weights(model)
    with pytest.raises(InputError, match=match):
        model.fit(x, y, verbose=0)
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())


@pytest.mark.parametrize("kwargs, match", [
    ({"optimizer": "adamm"}, "Unknown optimizer 'adamm'. Did you mean 'adam'?"),
    ({"loss": "binary_crossentropyy"}, "Unknown loss 'binary_crossentropyy'. Did you mean 'binary_crossentropy'?"),
    ({"metrics": ["acu"]}, "Unknown metric 'acu'. Did you mean 'auc'?"),
])
def test_unknown_names_in_compile(tutorial, kwargs, match):
    _, _, feats, _ = tutorial
    model = ctrkit.build("din", feats)
    with pytest.raises(UnknownNameError, match=match):
        model.compile(**kwargs)


def test_unknown_activation_and_fit_before_compile(tutorial):
    x, y, feats, _ = tutorial
    with pytest.raises(UnknownNameError, match="Unknown activation 'dicee'. Did you mean 'dice'?"):
        ctrkit.build("din", feats, att_activation="dicee")
    model = ctrkit.build("din", feats)
    with pytest.raises(NotCompiledError, match=r"call model.compile\(optimizer, loss, metrics\)"):
        model.fit(x, y)
    with pytest.raises(NotCompiledError):
        model.evaluate(x, y)


def test_ids_stay_int64_above_2_pow_24():
    big = 2 ** 24 + 1
    feats = [ctrkit.SparseFeat("item", big + 2, embedding_dim=2)]
    cols = prepare_inputs(feats, {"item": np.array([big, big + 1], dtype=np.int64)})
    assert cols["item"].dtype == torch.int64
    assert cols["item"].tolist() == [big, big + 1]  # float32 would collapse both to 2**24


def test_list_input_and_extra_keys(tutorial):
    x, y, feats, _ = tutorial
    names = ctrkit.get_feature_names(feats)
    a = prepare_inputs(feats, [x[n] for n in names])
    b = prepare_inputs(feats, {**x, "unused": np.arange(3)})
    assert set(b.tensors) == set(names)
    assert all(torch.equal(a[n], b[n]) for n in names)
    assert a["score"].dtype == torch.float32 and a["score"].shape == (3, 1)


def test_hash_values_is_stable_and_keeps_zero_for_padding():
    v = hash_values(np.array([0, 5, 5, 123456789012]), 10)
    assert v[0] == 0 and v[1] == v[2] and ((v[1:] >= 1) & (v[1:] < 10)).all()
    s = hash_values(np.array(["a", "b", "a", ""]), 7)
    assert s[0] == s[2] and s[3] == 0 and ((s[:3] >= 1) & (s[:3] < 7)).all()
    assert (hash_values(np.array(["a", "b"]), 7) == s[:2]).all()
