"""DIN invariants from the foundation issue: padding, feature order, empty history, pairing."""
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit import DenseFeat, SparseFeat, VarLenSparseFeat
from ctrkit.errors import ConfigError
from ctrkit.models.din import Dice

T = 6


def feats(maxlen=T, **hist_kwargs):
    return [SparseFeat("user", 5, 4), SparseFeat("item", 9, 4), SparseFeat("cate", 4, 4),
            DenseFeat("price", 1),
            VarLenSparseFeat(SparseFeat("hist_item", 9, 4, **hist_kwargs), maxlen, length_name="len"),
            VarLenSparseFeat(SparseFeat("hist_cate", 4, 4), maxlen, length_name="len")]


def data(n, seed, maxlen=T):
    rng = np.random.default_rng(seed)
    lens = rng.integers(0, maxlen + 1, n)
    valid = np.arange(maxlen)[None] < lens[:, None]
    return {"user": rng.integers(0, 5, n), "item": rng.integers(1, 9, n),
            "cate": rng.integers(1, 4, n), "price": rng.random(n).astype(np.float32),
            "hist_item": np.where(valid, rng.integers(1, 9, (n, maxlen)), 0),
            "hist_cate": np.where(valid, rng.integers(1, 4, (n, maxlen)), 0), "len": lens}


def trained(seed=0, **kw):
    model = ctrkit.build("din", feats(), init_std=0.1, seed=seed, **kw)
    model.compile("adam", "binary_crossentropy", lr=0.01)
    x = data(64, 1)
    y = (x["item"] % 2).astype(np.float32)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model


@pytest.fixture(scope="module")
def model():
    # raw scores, so the tests below can switch the (equally wide) softmax on and off; the
    # default "softmax+count" pooling has its own tests in test_din_pooling.py
    return trained(att_weight_normalization=False)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), norm=st.booleans())
def test_padded_positions_change_nothing(model, seed, norm):
    model.attention.weight_normalization = norm
    x = data(16, seed)
    rng = np.random.default_rng(seed + 1)
    noisy = dict(x)
    pad = np.arange(T)[None] >= x["len"][:, None]
    noisy["hist_item"] = np.where(pad, rng.integers(0, 9, (16, T)), x["hist_item"])
    noisy["hist_cate"] = np.where(pad, rng.integers(0, 4, (16, T)), x["hist_cate"])
    np.testing.assert_array_equal(model.predict(x), model.predict(noisy))
    model.attention.weight_normalization = False


@settings(max_examples=10, deadline=None)
@given(perm_seed=st.integers(0, 1000))
def test_shuffling_the_feature_list_changes_nothing(perm_seed):
    x = data(20, 3)
    base = ctrkit.build("din", feats(), init_std=0.1, seed=7)
    shuffled = feats()
    random.Random(perm_seed).shuffle(shuffled)
    other = ctrkit.build("din", shuffled, init_std=0.1, seed=7)
    assert other.history_feature_list == ["cate", "item"]
    np.testing.assert_array_equal(base.predict(x), other.predict(x))


def test_length_zero_rows_are_finite_and_get_zero_interest(model):
    x = data(8, 5)
    x["len"][:] = 0
    pred = model.predict(x)
    assert np.isfinite(pred).all()
    w = model.explain(x)
    assert w.shape == (8, T) and (w == 0).all()
    model.attention.weight_normalization = True
    assert np.isfinite(model.predict(x)).all()
    model.attention.weight_normalization = False


def test_pairing_errors_name_the_features():
    with pytest.raises(ConfigError, match="no \\(candidate, behaviour sequence\\) pair"):
        ctrkit.build("din", [SparseFeat("user", 3), SparseFeat("item", 3)])
    with pytest.raises(ConfigError, match="history_feature_list names 'user' but no behaviour sequence matches it"):
        ctrkit.build("din", feats(), history_feature_list=["user"])
    with pytest.raises(ConfigError, match="history_feature_list names 'nope', which is not a declared feature"):
        ctrkit.build("din", feats(), history_feature_list=["nope"])
    bad = feats()
    bad[4] = VarLenSparseFeat(SparseFeat("hist_item", 9, 8), T, length_name="len")
    with pytest.raises(ConfigError, match="candidate 'item' \\(embedding_dim 4\\) with history 'hist_item' \\(embedding_dim 8\\)"):
        ctrkit.build("din", bad)


def test_explicit_embedding_name_keeps_tables_apart_and_switch_works():
    shared = ctrkit.build("din", feats())
    assert shared.embeddings.table_of["hist_item"] == "item"
    apart = ctrkit.build("din", feats(embedding_name="hist_item"))
    assert apart.embeddings.table_of["hist_item"] == "hist_item"
    off = ctrkit.build("din", feats(), share_history_embeddings=False)
    assert off.embeddings.table_of["hist_item"] == "hist_item"
    assert off.embeddings.table_of["hist_cate"] == "hist_cate"


def test_fused_attention_equals_plain_concat():
    a = ctrkit.build("din", feats(), init_std=0.3, seed=3)
    b = ctrkit.build("din", feats(), init_std=0.3, seed=3, fused_attention=False)
    x = data(32, 9)
    np.testing.assert_allclose(a.predict(x), b.predict(x), rtol=1e-5, atol=1e-6)


def test_dice_formula_2d_3d_and_running_stats():
    torch.manual_seed(0)
    d = Dice(3)
    assert isinstance(d.alpha, torch.nn.Parameter) and torch.equal(d.alpha, torch.zeros(3))
    with torch.no_grad():
        d.alpha.fill_(0.25)
    x = torch.randn(50, 3)
    mean, var = x.mean(0), x.var(0, unbiased=False)
    p = torch.sigmoid((x - mean) / torch.sqrt(var + 1e-8))
    torch.testing.assert_close(d(x), p * x + (1 - p) * 0.25 * x)
    # 3-D with a mask: statistics over valid positions only
    x3 = torch.randn(4, 5, 3)
    mask = torch.arange(5)[None] < torch.tensor([[5], [2], [0], [3]])
    d2 = Dice(3)
    out = d2(x3, mask)
    v = x3[mask]
    p3 = torch.sigmoid((x3 - v.mean(0)) / torch.sqrt(v.var(0, unbiased=False) + 1e-8))
    torch.testing.assert_close(out, p3 * x3)
    # eval uses running statistics: a row's output does not depend on its batch
    d2.eval()
    torch.testing.assert_close(d2(x[:1]), d2(x)[:1])


def test_l2_reg_dnn_is_really_applied():
    x = data(64, 1)
    y = (x["item"] % 2).astype(np.float32)
    norms = []
    for l2 in (0.0, 1.0):
        m = ctrkit.build("din", feats(), init_std=0.1, seed=0, l2_reg_dnn=l2)
        m.compile("sgd", "binary_crossentropy", lr=0.05)
        m.fit(x, y, batch_size=64, epochs=3, verbose=0)
        norms.append(float(sum((lin.weight.detach() ** 2).sum() for lin in m.dnn.linears)))
    assert norms[1] < norms[0] * 0.95


def test_regression_task_predicts_raw_values():
    x = data(40, 2)
    y = x["price"] * 3.0
    m = ctrkit.build("din", feats(), task="regression", init_std=0.1)
    m.compile("adam", "mse", metrics=["mse", "mae"], lr=0.01)
    h = m.fit(x, y, batch_size=8, epochs=5, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert "mse" in h.history and m.predict(x).shape == (40, 1)


def test_print_and_summary_show_the_module_tree(capsys):
    m = ctrkit.build("din", feats())
    text = str(m)
    assert "AttentionPooling" in text and "Dice" in text and "EmbeddingTables" in text
    stats = m.summary(verbose=0)
    n_params = sum(p.numel() for p in m.parameters())
    assert stats.total_params == n_params
    assert m.training  # summary leaves the mode as it was
