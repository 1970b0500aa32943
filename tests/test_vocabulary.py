"""A vocabulary belongs to its embedding table; raw values versus ids is explicit (issue 13)."""
import numpy as np
import torch
import pytest

import ctrkit
from ctrkit.data import CategoricalEncoder, build_behavior_sequences
from ctrkit.errors import ConfigError, InputError, InputTypeError, SerializationError


def event_log(n=400, seed=0):
    """Raw ids that are not 0..V-1: items are strings, users large ints, categories ints."""
    rng = np.random.default_rng(seed)
    items = rng.integers(0, 40, n)
    return {"user": 10_000 + rng.integers(0, 30, n), "item": np.array([f"m{i}" for i in items]),
            "cate": items % 5 + 100, "time": rng.permutation(n), "label": rng.integers(0, 2, n)}


@pytest.fixture(scope="module")
def trained():
    log = event_log()
    encoders = {}
    x, y, features = build_behavior_sequences(log, attributes=("cate",), maxlen=5,
                                              embedding_dim=4, encoders=encoders)
    model = ctrkit.build("din", features, dnn_hidden_units=(8,), att_hidden_size=(8,))
    model.compile("adam", "binary_crossentropy", lr=0.05)
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    return model, log, x, y, encoders


def raw_histories(log, x, encoders, column):
    """Each row's history as an unpadded list of RAW values (what a client holds)."""
    hist, lengths = x["hist_" + column], x["seq_length"]
    enc = encoders[column]
    return [list(enc.inverse_transform(hist[r, :lengths[r]])) for r in range(len(lengths))]


def raw_inputs(log, x, encoders):
    return {"user": log["user"], "item": log["item"], "cate": log["cate"],
            "hist_item": raw_histories(log, x, encoders, "item"),
            "hist_cate": raw_histories(log, x, encoders, "cate")}


def test_encoders_of_the_candidate_also_encode_its_history(trained):
    """Seen: predict encoded `item` but fed `hist_item`'s raw values to the table (no error)."""
    model, log, x, _, encoders = trained
    expected = model.predict(x)  # ids, before any encoder is attached
    model.encoders = {"user": encoders["user"], "item": encoders["item"],
                      "cate": encoders["cate"]}  # what build_behavior_sequences returns
    try:
        raw = raw_inputs(log, x, encoders)
        np.testing.assert_array_equal(model.predict(raw), expected)
        # the same through a padded block of raw values with its length column
        padded = dict(raw, seq_length=x["seq_length"])
        for c in ("item", "cate"):
            block = encoders[c].inverse_transform(x["hist_" + c])
            padded["hist_" + c] = np.where(x["hist_" + c] > 0, block, log[c][0])
        np.testing.assert_array_equal(model.predict(padded), expected)
        vocabs = model.vocabularies()
        assert vocabs["hist_item"] is vocabs["item"] and vocabs["hist_item"].table == "item"
        assert vocabs["hist_item"].features == ("hist_item", "item")
    finally:
        model.encoders = {}


def test_ids_to_a_model_with_encoders_need_encoded_true(trained):
    """Seen: already-encoded ids fed to a model with encoders were silently re-encoded."""
    model, log, x, _, encoders = trained
    expected = model.predict(x)
    model.encoders = dict(encoders)
    try:
        with pytest.raises(InputError, match=r"Feature 'user': 100% of its 400 values are not in "
                                             r"the vocabulary of embedding table 'user'.*look like "
                                             r"already-encoded ids \(integers in 0..31\).*pass "
                                             r"encoded=True"):
            model.predict(x)
        np.testing.assert_array_equal(model.predict(x, encoded=True), expected)
        model.compile("adam", "binary_crossentropy", metrics=["auc"])
        assert model.evaluate(x, trained[3], encoded=True) == model.evaluate(
            raw_inputs(log, x, encoders), trained[3])
        np.testing.assert_array_equal(model.explain(x, encoded=True),
                                      model.explain(raw_inputs(log, x, encoders)))
        with pytest.raises(InputError, match="encoded=True: the columns are taken as ids"):
            model.predict(raw_inputs(log, x, encoders), encoded=True)
    finally:
        model.encoders = {}


def test_raw_values_the_vocabulary_never_saw_are_named(trained):
    model, log, x, _, encoders = trained
    model.encoders = dict(encoders)
    try:
        raw = raw_inputs(log, x, encoders)
        raw["item"] = np.array([s.upper() for s in raw["item"]])  # another spelling
        with pytest.raises(InputError, match=r"Feature 'item'.*look like raw values the "
                                             r"vocabulary has not seen.*fitted on values such as "
                                             r"'m0'.*max_oov_fraction"):
            model.predict(raw)
        model.max_oov_fraction = 1.0  # a deliberate batch of new values: allowed
        assert model.predict(raw).shape == (len(raw["item"]), 1)
        # a single cold-start row is never judged
        model.max_oov_fraction = 0.5
        one = {k: v[:1] for k, v in raw.items()}
        assert model.predict(one).shape == (1, 1)
    finally:
        model.encoders = {}
        model.max_oov_fraction = 0.5


def test_one_table_one_vocabulary(trained):
    model, log, x, _, encoders = trained
    other = CategoricalEncoder("item").fit(log["item"][:50])
    model.encoders = {"item": encoders["item"], "hist_item": other}
    try:
        with pytest.raises(ConfigError, match="'item' and 'hist_item' share embedding table "
                                              "'item' but carry different encoders"):
            model.predict(raw_inputs(log, x, encoders))
        with pytest.raises(SerializationError, match="share embedding table"):
            model.save("/nonexistent/never-written.ctrkit")
        model.encoders = {"itm": encoders["item"]}
        with pytest.raises(ConfigError, match="'itm', which is neither a sparse feature nor an "
                                              "embedding table"):
            model.predict(x)
        big = CategoricalEncoder("item").fit(np.arange(1000))
        model.encoders = {"item": big}
        with pytest.raises(ConfigError, match="vocabulary_size 1002 but embedding table 'item' "
                                              "has 42 rows"):
            model.predict(x)
        # keyed by the table name: every feature of the table uses it
        model.encoders = {"item": encoders["item"]}
        assert set(model.vocabularies()) == {"item", "hist_item"}
    finally:
        model.encoders = {}


def test_encoded_switch_is_checked(trained):
    model, _, x, _, _ = trained
    with pytest.raises(ConfigError, match="encoded=False .* carries no vocabulary"):
        model.predict(x, encoded=False)
    with pytest.raises(ConfigError, match="encoded must be None"):
        model.predict(x, encoded="yes")
    np.testing.assert_array_equal(model.predict(x, encoded=True), model.predict(x))


def test_vocabularies_survive_save_and_load(trained, tmp_path):
    model, log, x, _, encoders = trained
    expected = model.predict(x)
    model.encoders = {"user": encoders["user"], "item": encoders["item"],
                      "cate": encoders["cate"]}
    model.max_oov_fraction = 0.3
    try:
        path = model.save(tmp_path / "m.ctrkit")
    finally:
        model.encoders = {}
        model.max_oov_fraction = 0.5
    loaded = ctrkit.load(path)
    assert loaded.max_oov_fraction == 0.3
    np.testing.assert_array_equal(loaded.predict(raw_inputs(log, x, encoders)), expected)
    np.testing.assert_array_equal(loaded.predict(x, encoded=True), expected)


def test_input_columns_feed_an_exported_model_what_predict_sees(trained, tmp_path):
    import torch

    from ctrkit import get_feature_names
    model, log, x, _, encoders = trained
    model.encoders = dict(encoders)
    try:
        raw = raw_inputs(log, x, encoders)  # raw values, unpadded histories
        expected = model.predict(raw)
        path = model.export(tmp_path / "m.pt2")
        cols = model.input_columns(raw)
        served = torch.export.load(str(path)).module()
        got = served(*[cols[n] for n in get_feature_names(model.features)])
        np.testing.assert_allclose(got.numpy().astype(np.float64), expected, rtol=0, atol=1e-6)
    finally:
        model.encoders = {}


def test_batch_sources_are_encoded_batch_by_batch_with_the_calls_switch(trained):
    model, log, x, y, encoders = trained
    expected = model.predict(x)
    model.encoders = dict(encoders)
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    try:
        raw = raw_inputs(log, x, encoders)

        def batches(data, size=100):
            for s in range(0, len(y), size):
                yield {k: v[s:s + size] for k, v in data.items()}

        np.testing.assert_array_equal(model.predict(batches(raw)), expected)
        np.testing.assert_array_equal(model.predict(batches(x), encoded=True), expected)
        np.testing.assert_array_equal(model.explain(batches(x), encoded=True),
                                      model.explain(raw))
        with pytest.raises(InputError, match="batch 0 of x.*look like already-encoded ids"):
            model.predict(batches(x))
        labelled = ((b, y[s:s + 100]) for b, s in zip(batches(x), range(0, len(y), 100)))
        logs = model.evaluate(labelled, encoded=True)
        assert logs == pytest.approx(model.evaluate(raw, y))
    finally:
        model.encoders = {}


def test_parquet_histories_of_raw_values_use_their_tables_vocabulary(trained, tmp_path):
    """A ragged hist_item column of raw values in a Parquet file is encoded with 'item''s
    vocabulary (the encoders name only the candidate columns)."""
    pytest.importorskip("pyarrow", reason="pyarrow (the ctrkit[parquet] extra) is not installed")
    from ctrkit.data import ParquetDataset, write_parquet
    model, log, x, y, encoders = trained
    expected = model.predict(x)
    raw = raw_inputs(log, x, encoders)
    table = {k: (np.array([np.array(r, dtype=type(r[0]) if r else np.int64) for r in v] + [None],
                          dtype=object)[:-1] if k.startswith("hist_") else np.asarray(v))
             for k, v in raw.items()}
    path = write_parquet(table, y, tmp_path / "raw.parquet", row_group_size=150)
    model.encoders = {"user": encoders["user"], "item": encoders["item"],
                      "cate": encoders["cate"]}
    try:
        np.testing.assert_array_equal(model.predict(ParquetDataset(path, label=None)), expected)
    finally:
        model.encoders = {}


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_every_model_encodes_a_sequence_sharing_a_table_by_embedding_name(name):
    """Not only DIN's hist_X pairing: a sequence declared with embedding_name='item' is
    encoded with the 'item' vocabulary in every registered model."""
    from ctrkit import SparseFeat, VarLenSparseFeat
    rng = np.random.default_rng(1)
    skus = np.array([f"sku{i}" for i in range(30)])
    enc = CategoricalEncoder("item").fit(skus)
    features = [SparseFeat("user", 5, 4), SparseFeat("item", enc.vocabulary_size, 4),
                VarLenSparseFeat(SparseFeat("clicked", enc.vocabulary_size, 4,
                                            embedding_name="item"), 3, length_name="n")]
    model = ctrkit.build(name, features)
    assert model.embeddings.table_of["clicked"] == "item"
    n = 40
    raw = {"user": rng.integers(0, 5, n), "item": rng.choice(skus, n),
           "clicked": [list(rng.choice(skus, k)) for k in rng.integers(0, 5, n)]}
    ids = {"user": raw["user"], "item": enc.transform(raw["item"]),
           "clicked": pad_sequences_post([enc.transform(np.array(r, dtype=object))
                                          for r in raw["clicked"]], 3),
           "n": np.minimum([len(r) for r in raw["clicked"]], 3)}
    expected = model.predict(ids)
    model.encoders = {"item": enc}
    assert model.vocabularies()["clicked"].table == "item"
    np.testing.assert_array_equal(model.predict(raw), expected)


def pad_sequences_post(rows, maxlen):
    from ctrkit.data import pad_sequences
    return pad_sequences(rows, maxlen, padding="post", truncating="pre")


def test_training_on_raw_values_equals_training_on_ids(trained):
    _, log, x, y, encoders = trained
    features = trained[0].features
    models = [ctrkit.build("din", features, dnn_hidden_units=(8,), att_hidden_size=(8,))
              for _ in range(2)]
    raw = raw_inputs(log, x, encoders)
    for m in models:
        m.encoders = dict(encoders)
        m.compile("adam", "binary_crossentropy", lr=0.05, metrics=["auc"])
    ha = models[0].fit(raw, y, batch_size=64, epochs=2, verbose=0, validation_data=(raw, y))
    hb = models[1].fit(x, y, batch_size=64, epochs=2, verbose=0, validation_data=(x, y),
                       encoded=True)
    assert ha.history == hb.history
    for (k, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert torch.equal(a, b), k

