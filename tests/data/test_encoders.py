"""CategoricalEncoder: padding/OOV layout, min_count, hashing, round trip, errors."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit import SparseFeat
from ctrkit.data import OOV_ID, PAD_ID, CategoricalEncoder
from ctrkit.errors import ConfigError, CtrkitError, InputTypeError, NotFittedError
from ctrkit.inputs import hash_values


def test_known_values_get_ids_from_2_in_sorted_order_and_unseen_get_oov():
    enc = CategoricalEncoder("city").fit(np.array(["rome", "paris", "rome", "berlin"]))
    assert enc.vocabulary_size == 3 + 2
    assert enc.transform(["berlin", "paris", "rome"]).tolist() == [2, 3, 4]
    out = enc.transform(np.array([["oslo", "rome"], ["paris", "zz"]]))
    assert out.dtype == np.int64 and out.shape == (2, 2)
    assert out.tolist() == [[OOV_ID, 4], [3, OOV_ID]]
    assert PAD_ID not in enc.transform(["rome", "oslo"])


def test_integer_ids_above_2_pow_24_stay_distinct():
    big = np.array([2 ** 40, 2 ** 40 + 1, 2 ** 24 + 1], dtype=np.int64)
    enc = CategoricalEncoder("item").fit(big)
    assert len(set(enc.transform(big).tolist())) == 3
    assert enc.transform(np.array([2 ** 40 + 2])).tolist() == [OOV_ID]


def test_min_count_sends_rare_values_to_oov():
    enc = CategoricalEncoder("tag", min_count=2).fit([5, 5, 7, 9, 9, 9])
    assert enc.vocabulary_size == 2 + 2
    assert enc.transform([5, 7, 9]).tolist() == [2, OOV_ID, 3]


def test_transform_before_fit_names_the_encoder():
    enc = CategoricalEncoder("genre")
    with pytest.raises(NotFittedError, match="'genre' is not fitted"):
        enc.transform([1, 2])
    with pytest.raises(NotFittedError):
        enc.vocabulary_size
    # also the scikit-learn NotFittedError users may already catch
    from sklearn.exceptions import NotFittedError as SkNotFitted
    assert issubclass(NotFittedError, SkNotFitted) and issubclass(NotFittedError, CtrkitError)


def test_wrong_kind_at_transform_is_a_clear_error():
    enc = CategoricalEncoder("user").fit([1, 2, 3])
    with pytest.raises(InputTypeError, match="'user' was fitted on integers"):
        enc.transform(["a"])


@pytest.mark.parametrize("kw", [{"min_count": 0}, {"num_buckets": 1}, {"min_count": 1.5}])
def test_bad_settings(kw):
    with pytest.raises(ConfigError):
        CategoricalEncoder("x", **kw)


@settings(max_examples=25, deadline=None)
@given(train=st.lists(st.one_of(st.integers(-5, 30)), min_size=1, max_size=40),
       new=st.lists(st.integers(-10, 40), max_size=20), min_count=st.integers(1, 3))
def test_round_trip_through_json_plain_data_gives_the_same_ids(train, new, min_count):
    enc = CategoricalEncoder("v", min_count=min_count).fit(train)
    d = json.loads(json.dumps(enc.to_dict()))  # plain data only
    back = CategoricalEncoder.from_dict(d)
    values = np.array(train + new, dtype=np.int64)
    np.testing.assert_array_equal(back.transform(values), enc.transform(values))
    assert back.vocabulary_size == enc.vocabulary_size
    ids = enc.transform(values)
    counts = {v: train.count(v) for v in set(train)}
    kept = np.array([counts.get(v, 0) >= min_count for v in values.tolist()])
    assert ((ids >= 2) == kept).all()  # exactly the frequent training values are known
    assert ((ids >= 1) & (ids < enc.vocabulary_size)).all()
    known = ids >= 2
    np.testing.assert_array_equal(enc.inverse_transform(ids[known]).astype(np.int64),
                                  values[known])


def test_string_round_trip():
    enc = CategoricalEncoder("s").fit(["b", "a", "c"])
    back = CategoricalEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert back.transform(["c", "a", "q"]).tolist() == enc.transform(["c", "a", "q"]).tolist()


def test_hashing_matches_use_hash_feature_and_needs_no_fit():
    enc = CategoricalEncoder("tag", num_buckets=50)
    vals = np.array(["x", "y", "zz", "x"])
    ids = enc.transform(vals)
    np.testing.assert_array_equal(ids, hash_values(vals, 50))
    assert ids[0] == ids[3] and ((ids >= 1) & (ids < 50)).all()
    assert enc.vocabulary_size == 50
    assert CategoricalEncoder.from_dict(enc.to_dict()).transform(vals).tolist() == ids.tolist()


def test_use_hash_feature_trains_on_raw_string_ids(small_synthetic):
    x, y, features = small_synthetic
    feats = [f for f in features if f.name != "user"] + [SparseFeat("user", 64, 4, use_hash=True)]
    x = dict(x, user=np.array([f"u{u}" for u in x["user"]]))
    model = ctrkit.build("din", feats, seed=0)
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, batch_size=256, epochs=1, verbose=0)
    pred = model.predict(x)
    assert pred.shape == (len(y), 1) and np.isfinite(pred).all()
