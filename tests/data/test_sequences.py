"""Behaviour sequences from event logs: no leakage, order, truncation, split, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit import VarLenSparseFeat
from ctrkit.data import build_behavior_sequences, time_split
from ctrkit.errors import InputError, InputTypeError


def reference_history(log, maxlen, positive_only):
    """Per-row loop: same user, strictly earlier time, ordered by (time, item), last maxlen."""
    n = len(log["user"])
    rows = []
    for r in range(n):
        prev = [e for e in range(n) if log["user"][e] == log["user"][r]
                and log["time"][e] < log["time"][r]
                and (not positive_only or log["label"][e] == 1)]
        prev.sort(key=lambda e: (log["time"][e], log["item"][e]))
        rows.append(prev[-maxlen:])
    return rows


@st.composite
def event_logs(draw):
    n = draw(st.integers(1, 40))
    ints = lambda lo, hi: st.lists(st.integers(lo, hi), min_size=n, max_size=n)  # noqa: E731
    return {"user": np.array(draw(ints(0, 3))), "item": np.array(draw(ints(1, 6))),
            "time": np.array(draw(ints(0, 8))), "label": np.array(draw(ints(0, 1))),
            "genre": np.array(draw(ints(0, 2)))}


@settings(max_examples=30, deadline=None)
@given(log=event_logs(), maxlen=st.integers(1, 5), positive_only=st.booleans())
def test_histories_match_the_reference_and_never_see_the_future(log, maxlen, positive_only):
    x, y, features = build_behavior_sequences(log, attributes=("genre",), maxlen=maxlen,
                                              positive_only=positive_only, embedding_dim=4)
    ref = reference_history(log, maxlen, positive_only)
    # item ids keep the raw order (known values -> 2.., sorted), genre likewise
    item_id = {v: i + 2 for i, v in enumerate(sorted(set(log["item"].tolist())))}
    genre_id = {v: i + 2 for i, v in enumerate(sorted(set(log["genre"].tolist())))}
    for r, events in enumerate(ref):
        k = len(events)
        assert x["seq_length"][r] == k
        assert x["hist_item"][r].tolist() == [item_id[log["item"][e]] for e in events] + [0] * (maxlen - k)
        assert x["hist_genre"][r].tolist() == [genre_id[log["genre"][e]] for e in events] + [0] * (maxlen - k)
    np.testing.assert_array_equal(y, log["label"].astype(np.float32))
    assert x["hist_item"].dtype == np.int64 and x["hist_item"].shape == (len(y), maxlen)


@settings(max_examples=30, deadline=None)
@given(log=event_logs(), maxlen=st.integers(1, 6))
def test_no_event_at_or_after_the_row_time_enters_its_history(log, maxlen):
    # unique items so each history id identifies its event
    n = len(log["user"])
    log = dict(log, item=np.random.default_rng(n).permutation(n) + 100)
    x, _, _ = build_behavior_sequences(log, maxlen=maxlen, positive_only=False)
    event_of = {i + 2: e for i, e in enumerate(np.argsort(log["item"]))}
    for r in range(n):
        hist = x["hist_item"][r][: x["seq_length"][r]]
        events = [event_of[h] for h in hist]
        times = [log["time"][e] for e in events]
        assert all(log["user"][e] == log["user"][r] for e in events)
        assert all(t < log["time"][r] for t in times)  # strictly earlier: ties excluded
        assert times == sorted(times)  # oldest first


def test_pandas_frame_datetimes_and_string_ids_work_and_din_pairs_histories():
    pd = pytest.importorskip("pandas")
    log = pd.DataFrame({"user": ["a", "a", "a", "b", "b"], "item": ["x", "y", "z", "x", "y"],
                        "time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02",
                                                "2024-01-01", "2024-01-05"]),
                        "label": [1, 1, 0, 0, 1], "cat": ["c1", "c2", "c1", "c1", "c2"]})
    x, y, features = build_behavior_sequences(log, attributes=("cat",), maxlen=3,
                                              positive_only=True, embedding_dim=4)
    # row 2 (a, z, day 2) sees only row 0: row 1 shares its timestamp
    assert x["seq_length"].tolist() == [0, 1, 1, 0, 0]
    assert x["hist_item"][2].tolist() == [2, 0, 0]
    seqs = [f.name for f in features if isinstance(f, VarLenSparseFeat)]
    assert seqs == ["hist_item", "hist_cat"]
    model = ctrkit.build("din", features)
    assert model.history_feature_list == ["cat", "item"]
    model.compile("adam", "binary_crossentropy")
    assert model.predict(x).shape == (5, 1)


def test_given_encoders_are_used_and_new_ones_are_returned():
    train = {"user": [1, 1], "item": [10, 11], "time": [1, 2], "label": [1, 1]}
    encoders = {}
    build_behavior_sequences(train, encoders=encoders)
    assert set(encoders) == {"user", "item"}
    test = {"user": [1, 1], "item": [11, 99], "time": [3, 4], "label": [0, 1]}
    x, _, features = build_behavior_sequences(test, encoders=encoders, maxlen=2)
    assert x["item"].tolist() == [3, 1]  # 99 unseen in training -> OOV
    assert x["hist_item"].tolist() == [[0, 0], [3, 0]]
    assert {f.name: f.vocabulary_size for f in features}["item"] == 4


def test_time_split_takes_each_users_last_k_events():
    log = {"user": np.array([1, 2, 1, 1, 2, 1, 3]), "time": np.array([5, 1, 1, 3, 2, 3, 9]),
           "item": np.array([0, 0, 4, 9, 0, 2, 0])}
    train_idx, test_idx = time_split(log, last_k=2, tiebreak="item", return_index=True)
    # user 1 order: row2 (t1), row5 (t3, item 2), row3 (t3, item 9), row0 (t5)
    assert test_idx.tolist() == [0, 1, 3, 4, 6]
    assert train_idx.tolist() == [2, 5]
    train, test = time_split(log, last_k=2, tiebreak="item")
    assert train["time"].tolist() == [1, 3] and len(test["user"]) == 5


@settings(max_examples=25, deadline=None)
@given(log=event_logs(), k=st.integers(1, 4))
def test_time_split_is_a_partition_and_test_is_never_before_train(log, k):
    train_idx, test_idx = time_split(log, last_k=k, tiebreak="item", return_index=True)
    assert sorted(np.concatenate([train_idx, test_idx]).tolist()) == list(range(len(log["user"])))
    for u in set(log["user"].tolist()):
        tr = [i for i in train_idx if log["user"][i] == u]
        te = [i for i in test_idx if log["user"][i] == u]
        assert len(te) == min(k, len(tr) + len(te))
        key = lambda i: (log["time"][i], log["item"][i], i)  # noqa: E731
        if tr:
            assert max(map(key, tr)) < min(map(key, te))


def test_missing_column_is_named():
    with pytest.raises(InputError, match=r"no column\(s\) \['label'\]"):
        build_behavior_sequences({"user": [1], "item": [1], "time": [1]})
    with pytest.raises(InputError, match=r"\['genre'\]"):
        build_behavior_sequences({"user": [1], "item": [1], "time": [1], "label": [1]},
                                 attributes=("genre",))


def test_unsortable_times_are_rejected():
    base = {"user": [1, 1], "item": [1, 2], "label": [0, 1]}
    with pytest.raises(InputTypeError, match="Time column 'time'.*does not sort as time"):
        build_behavior_sequences(dict(base, time=np.array([{"a": 1}, None], dtype=object)))
    with pytest.raises(InputError, match="unsortable value nan at row 1"):
        build_behavior_sequences(dict(base, time=[1.0, float("nan")]))
    with pytest.raises(InputTypeError, match="Time column 'time'"):
        time_split(dict(base, time=np.array(["x", "y"], dtype=object)), last_k=1)


def test_labels_must_be_zero_or_one():
    log = {"user": [1, 1], "item": [1, 2], "time": [1, 2], "label": [0, 4]}
    with pytest.raises(InputError, match="'label' has the value 4 at row 1; labels must be 0 or 1"):
        build_behavior_sequences(log)
