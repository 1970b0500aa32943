"""The ragged-sequence policy: Keras's pad_sequences, and the model-input layout."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrkit.data import build_behavior_sequences, pad_sequences, ragged_to_padded, to_ragged
from ctrkit.errors import ConfigError, InputError, InputTypeError

pd = pytest.importorskip("pandas")


def keras_reference(sequences, maxlen=None, dtype="int64", padding="pre", truncating="pre",
                    value=0):
    """The per-row definition of keras.utils.pad_sequences (written from its documentation)."""
    lengths = [len(s) for s in sequences]
    width = max(lengths, default=0) if maxlen is None else maxlen
    out = np.full((len(sequences), width), value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s) or width == 0:
            continue
        trunc = list(s[-width:]) if truncating == "pre" else list(s[:width])
        if padding == "post":
            out[i, :len(trunc)] = trunc
        else:
            out[i, width - len(trunc):] = trunc
    return out


def test_keras_docstring_examples():
    # the examples of keras.utils.pad_sequences' docstring (Keras 3), with ctrkit's int64
    seq = [[1], [2, 3], [4, 5, 6]]
    assert pad_sequences(seq).tolist() == [[0, 0, 1], [0, 2, 3], [4, 5, 6]]
    assert pad_sequences(seq, value=-1).tolist() == [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
    assert pad_sequences(seq, padding="post").tolist() == [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    assert pad_sequences(seq, maxlen=2).tolist() == [[0, 1], [2, 3], [5, 6]]
    assert pad_sequences(seq, maxlen=2, truncating="post").tolist() == [[0, 1], [2, 3], [4, 5]]
    assert pad_sequences(seq).dtype == np.int64


def test_pad_sequences_dtype_value_and_sample_shape():
    out = pad_sequences([[0.5, 1.5], [2.5]], dtype="float32", value=-1.0, padding="post")
    assert out.dtype == np.float32 and out.tolist() == [[0.5, 1.5], [2.5, -1.0]]
    out = pad_sequences([[[1, 2], [3, 4]], [[5, 6]]], padding="post")
    assert out.shape == (2, 2, 2) and out[1].tolist() == [[5, 6], [0, 0]]
    assert pad_sequences([["a", "b"], ["c"]], dtype="<U1", value="").tolist() == [
        ["a", "b"], ["", "c"]]
    assert pad_sequences([[], []]).shape == (2, 0)
    assert pad_sequences([]).shape == (0, 0)


def test_pad_sequences_refuses_bad_arguments():
    with pytest.raises(ConfigError, match="padding must be 'pre' or 'post'"):
        pad_sequences([[1]], padding="left")
    with pytest.raises(ConfigError, match="truncating"):
        pad_sequences([[1]], truncating="middle")
    with pytest.raises(ConfigError, match="not compatible with value"):
        pad_sequences([["a"]], dtype="<U1")
    with pytest.raises(InputError, match="list of iterables"):
        pad_sequences([[1], 5])
    with pytest.raises(InputError, match="different from expected shape"):
        pad_sequences([[[1, 2]], [[1, 2, 3]]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 50), max_size=7), max_size=6),
       st.one_of(st.none(), st.integers(0, 8)), st.sampled_from(["pre", "post"]),
       st.sampled_from(["pre", "post"]), st.integers(-3, 3))
def test_pad_sequences_matches_the_keras_definition(seqs, maxlen, padding, truncating, value):
    got = pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating, value=value)
    want = keras_reference(seqs, maxlen, padding=padding, truncating=truncating, value=value)
    np.testing.assert_array_equal(got, want)


def test_to_ragged_accepts_lists_object_arrays_series_and_2d_arrays():
    rows = [[3, 4, 5], [], [6]]
    for column in (rows, np.array([np.array(r, dtype=np.int64) for r in rows], dtype=object),
                   pd.Series(rows), pd.Series([np.array(r) for r in rows]), tuple(rows)):
        v, o = to_ragged(column)
        assert v.tolist() == [3, 4, 5, 6] and o.tolist() == [0, 3, 3, 4]
    v, o = to_ragged(np.array([[1, 2], [3, 4]]))
    assert v.tolist() == [1, 2, 3, 4] and o.tolist() == [0, 2, 4]
    v, o = to_ragged([["a", "b"], ["c"]])
    assert v.tolist() == ["a", "b", "c"] and o.tolist() == [0, 2, 3]
    v, o = to_ragged([[], []])
    assert v.dtype == np.int64 and v.size == 0 and o.tolist() == [0, 0, 0]


def test_to_ragged_refuses_missing_and_scalar_rows():
    with pytest.raises(InputError, match=r"missing row .* at row 1; pass an empty list"):
        to_ragged(pd.Series([[1], None, [2]]))
    with pytest.raises(InputError, match="missing row"):
        to_ragged([[1], float("nan")])
    with pytest.raises(InputTypeError, match=r"value 7 at row 0.*must be a list"):
        to_ragged([7, [1]])
    with pytest.raises(InputTypeError, match="'1 2' at row 1"):
        to_ragged([[1], "1 2"])


def reference_policy(rows, maxlen):
    ids = np.zeros((len(rows), maxlen), dtype=np.int64)
    lengths = np.zeros(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        kept = r[len(r) - min(len(r), maxlen):]
        ids[i, :len(kept)] = kept
        lengths[i] = len(kept)
    return ids, lengths


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 10 ** 12), max_size=9), max_size=8), st.integers(0, 6),
       st.integers(0, 3))
def test_ragged_to_padded_keeps_the_most_recent_left_aligned(rows, maxlen, lead):
    v, o = to_ragged(rows)
    # an Arrow slice: offsets need not start at 0
    v = np.concatenate([np.full(lead, 99, dtype=np.int64), v.astype(np.int64)])
    ids, lengths = ragged_to_padded(v, o + lead, maxlen)
    want_ids, want_len = reference_policy(rows, maxlen)
    assert ids.dtype == np.int64 and lengths.dtype == np.int64
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(lengths, want_len)
    # the same layout as Keras with padding='post', truncating='pre'
    np.testing.assert_array_equal(ids, pad_sequences(rows, maxlen, padding="post",
                                                     truncating="pre").reshape(ids.shape))


def test_ragged_to_padded_agrees_with_build_behavior_sequences():
    rng = np.random.default_rng(0)
    n = 200
    log = {"user": rng.integers(0, 6, n), "item": rng.integers(0, 30, n),
           "time": rng.permutation(n), "label": rng.integers(0, 2, n)}
    x, _, _ = build_behavior_sequences(log, maxlen=4)
    # each row's full chronological history, as a user would hold it in a list column
    order = np.lexsort((log["time"], log["user"]))
    enc_item = {r: x["item"][r] for r in range(n)}
    rows = []
    for r in range(n):
        same = [q for q in order if log["user"][q] == log["user"][r]
                and log["time"][q] < log["time"][r]]
        rows.append([enc_item[q] for q in same])
    ids, lengths = ragged_to_padded(*to_ragged(rows), maxlen=4)
    np.testing.assert_array_equal(ids, x["hist_item"])
    np.testing.assert_array_equal(lengths, x["seq_length"])


def test_ragged_to_padded_refuses_bad_input():
    with pytest.raises(InputTypeError, match="encode raw values first"):
        ragged_to_padded(np.array(["a", "b"]), [0, 2], 2)
    with pytest.raises(InputError, match="non-decreasing"):
        ragged_to_padded([1, 2, 3], [0, 2, 1], 2)
    with pytest.raises(InputError, match="non-decreasing"):
        ragged_to_padded([1, 2, 3], [0, 4], 2)
    with pytest.raises(ConfigError, match="maxlen"):
        ragged_to_padded([1], [0, 1], -1)
