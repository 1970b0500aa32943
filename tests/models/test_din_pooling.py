"""DIN's attention poolings (issue 29): ``att_weight_normalization`` False / True keep DeepCTR's
meaning; ``"sigmoid"``, ``"softmax+count"`` and ``"softmax+sum"`` are attention forms that can
count matching behaviours (a softmax cannot). Each one gives the same values through the packed
path (training, predict) and the dense path (export), and padding changes nothing."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit.errors import ConfigError
from ctrkit.models.din import AttentionPooling
from ctrkit.models.din.attention import POOLINGS, pooling_mode
from test_attention_equivalence import _batch, _features  # the same small DIN data (T, seed)

pytestmark = pytest.mark.numeric

NEW = ["sigmoid", "softmax+count", "softmax+sum"]


def test_values_name_the_pooling_and_bad_ones_are_refused():
    assert [pooling_mode(v) for v in (False, True, np.bool_(True))] == ["none", "softmax",
                                                                        "softmax"]
    assert [pooling_mode(v) for v in POOLINGS] == list(POOLINGS)
    for bad in ("Softmax", "count", 1, 0, None, 0.5):
        with pytest.raises(ConfigError, match="att_weight_normalization must be True, False or "
                                              "one of .*'softmax\\+count'"):
            pooling_mode(bad)
    with pytest.raises(ConfigError, match="got 'sigmod'"):
        ctrkit.build("din", _features(3), att_weight_normalization="sigmod")


@pytest.mark.parametrize("mode, width", [(False, 8), (True, 8), ("sigmoid", 8),
                                         ("softmax+count", 9), ("softmax+sum", 16)])
def test_output_width_feeds_the_mlp(mode, width):
    model = ctrkit.build("din", _features(3), att_weight_normalization=mode)
    assert model.attention.output_dim == width
    assert model.dnn.linears[0].in_features == 12 + width  # user, item, cate + the interest
    assert model(_batch(5, 3, 0)).shape == (5,)


def test_the_setter_keeps_the_width():
    pool = AttentionPooling(4, (8,), weight_normalization="softmax+count")
    pool.weight_normalization = "softmax+count"
    with pytest.raises(ConfigError, match="changes the pooled width \\(5"):
        pool.weight_normalization = True
    assert pool.pooling == "softmax+count" and pool.weight_normalization is True
    flat = AttentionPooling(4, (8,))
    flat.weight_normalization = "sigmoid"
    assert flat.pooling == "sigmoid" and flat.weight_normalization is False


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 30), st.integers(1, 8), st.integers(0, 10 ** 6),
       st.sampled_from([False, True] + NEW), st.sampled_from(["dice", "prelu"]))
def test_packed_equals_dense_per_pooling(n, T, seed, mode, act):
    """Eval mode: pool_packed (training/predict) and pool_dense (export) agree, values and
    weights; padded positions have weight 0."""
    torch.manual_seed(seed)
    pool = AttentionPooling(4, (8, 4), act, weight_normalization=mode, init=0.5).double()
    batch = _batch(n, T, seed)
    mask = torch.arange(T)[None] < batch["seq_length"][:, None]
    pool.train()
    q, keys = torch.randn(n, 4, dtype=torch.float64), torch.randn(n, T, 4, dtype=torch.float64)
    pool(q, keys, mask)  # Dice's running statistics away from their start
    pool.eval()
    rows, cols = mask.nonzero(as_tuple=True)
    with torch.no_grad():
        packed, wp = pool.pool_packed(q, keys[rows, cols], rows, cols, T, return_weights=True)
        dense, wd = pool.pool_dense(q, keys, mask, return_weights=True)
    assert packed.shape == (n, pool.output_dim)
    torch.testing.assert_close(packed, dense, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(wp, wd, rtol=1e-10, atol=1e-12)
    assert (wd[~mask] == 0).all()
    empty = batch["seq_length"] == 0
    assert (dense[empty] == 0).all()  # no history: zero vector and zero count
    if mode == "sigmoid":
        assert ((wd[mask] > 0) & (wd[mask] < 1)).all()


def test_softmax_cannot_count_and_the_counting_poolings_can():
    """One behaviour k against the same k twice: a softmax pools both to k (it cannot tell how
    many times the candidate was matched); the counting forms see the second one."""
    torch.manual_seed(0)
    q, k = torch.randn(1, 4), torch.randn(1, 1, 4)
    once, twice = k, k.repeat(1, 2, 1)
    for mode in [True] + NEW:
        pool = AttentionPooling(4, (8,), "sigmoid", weight_normalization=mode).eval()
        a = pool(q, once, torch.ones(1, 1, dtype=torch.bool))
        b = pool(q, twice, torch.ones(1, 2, dtype=torch.bool))
        if mode is True:
            torch.testing.assert_close(a, b)
        else:
            assert not torch.allclose(a, b), mode
    pool = AttentionPooling(4, (8,), "sigmoid", weight_normalization="softmax+count").eval()
    s = pool.unit(q, k[0])
    out = pool(q, twice, torch.ones(1, 2, dtype=torch.bool))
    torch.testing.assert_close(out[0, 4], torch.log1p(2 * torch.sigmoid(s[0])))


@pytest.mark.parametrize("mode", NEW)
def test_padding_changes_nothing_and_the_model_round_trips(mode):
    model = ctrkit.build("din", _features(5), att_weight_normalization=mode, init_std=0.3)
    batch = _batch(40, 5, 3)
    x = {k: v.numpy() for k, v in batch.items()}
    model.compile("adam", "binary_crossentropy")
    model.fit(x, (np.arange(40) % 2).astype(np.float32), batch_size=16, verbose=0)
    noisy = dict(x)
    pad = np.arange(5)[None] >= x["seq_length"][:, None]
    noisy["hist_item"] = np.where(pad, np.random.default_rng(0).integers(1, 40, (40, 5)),
                                  x["hist_item"])
    np.testing.assert_array_equal(model.predict(x), model.predict(noisy))
    with tempfile.TemporaryDirectory() as d:
        model.save(Path(d) / "m.ctrkit")
        loaded = ctrkit.load(Path(d) / "m.ctrkit")
    assert loaded.attention.pooling == mode
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))


@pytest.mark.parametrize("name", ["mmoe", "ple", "shared_bottom", "esmm"])
def test_multitask_models_size_their_input_by_the_attention_form(name):
    """A multi-task model attending over behaviour histories takes every DIN attention form
    (its DNN input is sized by the pooling's output width)."""
    x = {k: v.numpy() for k, v in _batch(64, 6, 0).items()}
    model = ctrkit.build(name, _features(6), history_feature_list=["item", "cate"],
                         att_weight_normalization="softmax+count", seed=0)
    assert model.attention.output_dim == model.attention.emb_dim + 1
    y = (np.arange(128).reshape(64, 2) % 3 == 0).astype(np.float32)
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert model.predict(x).shape == (64, 2)


def test_dien_refuses_the_din_only_attention_forms():
    S, V = ctrkit.SparseFeat, ctrkit.VarLenSparseFeat
    feats = [S("item", 20, embedding_dim=4), V(S("hist_item", 20, embedding_dim=4), 5,
                                               length_name="seq_length")]
    with pytest.raises(ConfigError, match=r"DIEN's att_weight_normalization is True .* got "
                                          r"'softmax\+count'"):
        ctrkit.build("dien", feats, att_weight_normalization="softmax+count")
