import pytest

import ctrkit
from ctrkit import DenseFeat, SparseFeat, VarLenSparseFeat, get_feature_names
from ctrkit.errors import ConfigError
from ctrkit.features import feature_from_dict, feature_to_dict, validate_features


def test_reprs_match_deepctr():
    assert repr(SparseFeat("user", 3, embedding_dim=8)) == (
        "SparseFeat(name='user', vocabulary_size=3, embedding_dim=8, use_hash=False, "
        "dtype='int32', embedding_name='user', group_name='default_group')")
    assert repr(DenseFeat("score", 1)) == (
        "DenseFeat(name='score', dimension=1, dtype='float32', transform_fn=None)")
    v = VarLenSparseFeat(SparseFeat("hist_item", 4, embedding_dim=8), 4, length_name="seq_length")
    assert repr(v).startswith("VarLenSparseFeat(sparsefeat=SparseFeat(name='hist_item'")
    assert repr(v).endswith("maxlen=4, combiner='mean', length_name='seq_length')")


def test_defaults_and_varlen_exposes_inner_fields():
    f = SparseFeat("item", 10)
    assert (f.embedding_dim, f.use_hash, f.dtype, f.embedding_name, f.group_name) == (
        4, False, "int32", "item", "default_group")
    assert SparseFeat("item", 16, embedding_dim="auto").embedding_dim == 6 * int(16 ** 0.25)
    v = VarLenSparseFeat(SparseFeat("hist", 7, 5, embedding_name="item"), 3, combiner="sum")
    assert (v.name, v.vocabulary_size, v.embedding_dim, v.embedding_name, v.maxlen,
            v.combiner, v.length_name) == ("hist", 7, 5, "item", 3, "sum", None)
    assert v.embedding_name_given and not f.embedding_name_given


def test_feature_names_follow_tutorial_order(tutorial):
    _, _, feature_columns, _ = tutorial
    assert get_feature_names(feature_columns) == [
        "user", "gender", "item", "item_gender", "score", "hist_item", "seq_length",
        "hist_item_gender"]


@pytest.mark.parametrize("make, match", [
    (lambda: SparseFeat("user", 0), "Feature 'user': vocabulary_size must be >= 1, got 0"),
    (lambda: SparseFeat("user", 3, embedding_dim=0), "Feature 'user': embedding_dim must be >= 1"),
    (lambda: SparseFeat("user", 2.5), "Feature 'user': vocabulary_size must be an integer"),
    (lambda: VarLenSparseFeat(SparseFeat("h", 3), 0), "Feature 'h': maxlen must be >= 1"),
    (lambda: VarLenSparseFeat(SparseFeat("h", 3), 2, combiner="avg"),
     "Feature 'h': unknown combiner 'avg'"),
    (lambda: DenseFeat("d", 0), "Feature 'd': dimension must be >= 1"),
    (lambda: SparseFeat("", 3), "name must be a non-empty string"),
])
def test_invalid_declarations_raise_naming_the_feature(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_duplicate_names_and_table_conflicts_raise_at_build():
    with pytest.raises(ConfigError, match="Feature name 'user' is declared twice"):
        validate_features([SparseFeat("user", 3), SparseFeat("user", 3)])
    with pytest.raises(ConfigError, match="share embedding_name 'item'.*4/8 vs 5/8"):
        validate_features([SparseFeat("item", 4, 8),
                           SparseFeat("other", 5, 8, embedding_name="item")])
    with pytest.raises(ConfigError, match="length_name 'user' is also the name of a feature"):
        validate_features([SparseFeat("user", 3),
                           VarLenSparseFeat(SparseFeat("hist_user", 3), 2, length_name="user")])


def test_plain_data_round_trip(tutorial):
    _, _, feature_columns, _ = tutorial
    for f in feature_columns:
        g = feature_from_dict(feature_to_dict(f))
        assert g == f
        assert getattr(g, "embedding_name_given", None) == getattr(f, "embedding_name_given", None)
    with pytest.raises(ConfigError, match="transform_fn"):
        feature_to_dict(DenseFeat("d", 1, transform_fn=abs))


def test_dataclasses_replace_keeps_an_implicit_table_name_implicit():
    # A copy made with dataclasses.replace passes every field back to the constructor; an
    # implicit embedding_name must not turn into an explicit (old) name: under DIN that would
    # silently give the rebuilt hist_item its own table instead of sharing item's.
    import copy
    import dataclasses
    import pickle
    f = SparseFeat("item", 10, 8)
    g = dataclasses.replace(f, name="hist_item")
    assert (g.embedding_name, g.embedding_name_given) == ("hist_item", False)
    for h in (pickle.loads(pickle.dumps(f)), copy.deepcopy(f)):
        assert h == f and not h.embedding_name_given
        assert dataclasses.replace(h, name="x").embedding_name == "x"
    e = dataclasses.replace(SparseFeat("a", 10, embedding_name="t"), name="b")
    assert (e.embedding_name, e.embedding_name_given) == ("t", True)
    hist = VarLenSparseFeat(SparseFeat("hist_item", 10, 8), 4, length_name="len")
    wider = dataclasses.replace(hist, sparsefeat=dataclasses.replace(hist.sparsefeat,
                                                                     vocabulary_size=10))
    assert not wider.embedding_name_given
    model = ctrkit.build("din", [f, wider])
    assert model.embeddings.table_of == {"item": "item", "hist_item": "item"}
