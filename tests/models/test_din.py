"""DIN invariants: Dice and padding, fused attention, shared tables, explain and its plot."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit import DenseFeat, SparseFeat, VarLenSparseFeat
from ctrkit.errors import ConfigError
from ctrkit.models.base import BaseModel
from ctrkit.models.din import (AttentionPooling, Dice, LocalActivationUnit, masked_softmax,
                               segment_softmax)

SMALL = dict(dnn_hidden_units=(16, 8), att_hidden_size=(8, 4), init_std=0.1)


def feats(T=6, shuffle_seed=None):
    fs = [SparseFeat("user", 20, 4), SparseFeat("item", 30, 4), SparseFeat("cate", 6, 4),
          DenseFeat("score", 1),
          VarLenSparseFeat(SparseFeat("hist_item", 30, 4), T, length_name="seq_length"),
          VarLenSparseFeat(SparseFeat("hist_cate", 6, 4), T, length_name="seq_length")]
    if shuffle_seed is not None:
        fs = [fs[i] for i in np.random.default_rng(shuffle_seed).permutation(len(fs))]
    return fs


def make_data(n, T=6, seed=0, garbage_seed=None, extra=0, lengths=None):
    """Rows with history lengths in 0..T. ``garbage_seed`` fills padded positions with random
    valid ids instead of 0; ``extra`` appends that many all-padding columns."""
    rng = np.random.default_rng(seed)
    L = rng.integers(0, T + 1, n) if lengths is None else np.asarray(lengths)
    valid = np.arange(T)[None] < L[:, None]
    pad_i = pad_c = 0
    if garbage_seed is not None:
        g = np.random.default_rng(garbage_seed)
        pad_i, pad_c = g.integers(1, 30, (n, T)), g.integers(1, 6, (n, T))
    hi = np.where(valid, rng.integers(1, 30, (n, T)), pad_i)
    hc = np.where(valid, rng.integers(1, 6, (n, T)), pad_c)
    if extra:
        hi = np.concatenate([hi, np.zeros((n, extra), np.int64)], 1)
        hc = np.concatenate([hc, np.zeros((n, extra), np.int64)], 1)
    x = {"user": rng.integers(0, 20, n), "item": rng.integers(1, 30, n),
         "cate": rng.integers(1, 6, n), "score": rng.random(n), "hist_item": hi,
         "hist_cate": hc, "seq_length": L}
    return x, rng.integers(0, 2, n)


def trained(x, y, T=6, epochs=2, **kw):
    model = ctrkit.build("din", feats(T), **{**SMALL, **kw})
    model.compile("adam", "binary_crossentropy", lr=0.01)
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0)
    return model


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    diff = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not diff, diff


# ----------------------------------------------------------------------------------- Dice
def test_dice_is_the_paper_formula_with_batch_then_running_statistics():
    torch.manual_seed(0)
    d = Dice(3)
    with torch.no_grad():
        d.alpha.copy_(torch.tensor([0.1, -0.2, 0.5]))
    x = torch.randn(50, 3) * 2 + 1
    mean, var = x.mean(0), x.var(0, unbiased=False)
    p = torch.sigmoid((x - mean) / torch.sqrt(var + 1e-8))
    torch.testing.assert_close(d(x), p * x + (1 - p) * d.alpha * x)
    torch.testing.assert_close(d.running_mean, 0.1 * mean)
    torch.testing.assert_close(d.running_var, 0.9 + 0.1 * x.var(0, unbiased=True))
    d.eval()
    p = torch.sigmoid((x - d.running_mean) / torch.sqrt(d.running_var + 1e-8))
    torch.testing.assert_close(d(x), p * x + (1 - p) * d.alpha * x)
    assert d.eps == 1e-8 and isinstance(d.alpha, torch.nn.Parameter)
    assert torch.equal(Dice(4).alpha, torch.zeros(4))


def test_dice_statistics_come_from_valid_positions_only():
    torch.manual_seed(1)
    x = torch.randn(4, 5, 3)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0] * 5, [1, 1, 1, 1, 1]]).bool()
    garbage = torch.where(mask.unsqueeze(-1), x, torch.randn(4, 5, 3) * 100)
    a, b = Dice(3), Dice(3)
    ref = Dice(3, fast=False)  # the same op-by-op formula as the masked path: bit-exact
    out_a, out_b, out_ref = a(x, mask), b(garbage, mask), ref(x[mask])
    torch.testing.assert_close(out_a[mask], out_ref, rtol=0, atol=0)
    torch.testing.assert_close(out_b[mask], out_ref, rtol=0, atol=0)
    for d in (a, b):
        assert torch.equal(d.running_mean, ref.running_mean)
        assert torch.equal(d.running_var, ref.running_var)


def test_attention_unit_statistics_ignore_padding():
    torch.manual_seed(2)
    pool = AttentionPooling(4, (8, 4), "dice", weight_normalization=False, init=0.3)
    other = AttentionPooling(4, (8, 4), "dice", weight_normalization=False, init=0.3)
    other.load_state_dict(pool.state_dict())
    q, keys = torch.randn(3, 4), torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]).bool()
    noisy = torch.where(mask.unsqueeze(-1), keys, torch.randn(3, 5, 4) * 50)
    out, w = pool(q, keys, mask, return_weights=True)
    out2, w2 = other(q, noisy, mask, return_weights=True)
    assert torch.equal(out, out2) and torch.equal(w, w2)
    assert (w[~mask] == 0).all()
    for d1, d2 in zip(pool.unit.activations, other.unit.activations):
        assert torch.equal(d1.running_mean, d2.running_mean)
        assert torch.equal(d1.running_var, d2.running_var)
    # the first Dice saw exactly the 9 valid (query, key) pairs
    rows, cols = mask.nonzero(as_tuple=True)
    h = pool.unit.linears[0](torch.cat([q[rows], keys[rows, cols], q[rows] - keys[rows, cols],
                                        q[rows] * keys[rows, cols]], -1)).detach()
    torch.testing.assert_close(pool.unit.activations[0].running_mean, 0.1 * h.mean(0))


@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("variant", ["garbage_ids_in_padding", "wider_maxlen"])
def test_training_is_identical_when_only_padding_differs(norm, variant):
    x, y = make_data(64)
    if variant == "garbage_ids_in_padding":
        x2, T2 = make_data(64, garbage_seed=9)[0], 6
    else:
        x2, T2 = make_data(64, extra=5)[0], 11
    assert not np.array_equal(x["hist_item"], x2["hist_item"][:, :6]) or T2 == 11
    np.testing.assert_array_equal(x["seq_length"], x2["seq_length"])
    a = trained(x, y, att_weight_normalization=norm, dnn_activation="dice")
    b = trained(x2, y, T=T2, att_weight_normalization=norm, dnn_activation="dice")
    assert_same_state(a, b)
    np.testing.assert_array_equal(a.predict(x), b.predict(x2))


def test_eval_output_of_a_row_does_not_depend_on_its_batch():
    x, y = make_data(40)
    model = trained(x, y, dnn_activation="dice")
    assert model.training  # fit leaves train mode on
    full = model.predict(x, batch_size=40)
    one = model.predict(x, batch_size=1)
    np.testing.assert_allclose(one, full, rtol=1e-6, atol=1e-7)
    perm = np.random.default_rng(0).permutation(40)
    shuffled = model.predict({k: v[perm] for k, v in x.items()}, batch_size=7)
    np.testing.assert_allclose(shuffled, full[perm], rtol=1e-6, atol=1e-7)
    assert model.training
    # train mode does use the batch: the same row gets another output in another batch
    from ctrkit.inputs import prepare_inputs
    cols = prepare_inputs(model.features, x)
    with torch.no_grad():
        alone = model(cols.take(torch.arange(0, 8)))[0]
        together = model(cols.take(torch.arange(0, 40)))[0]
    assert float(alone) != float(together)


def test_dice_in_the_top_mlp_learns():
    x, y = make_data(64)
    model = ctrkit.build("din", feats(), dnn_activation="dice", dnn_use_bn=True, **SMALL)
    assert all(isinstance(a, Dice) for a in model.dnn.activations)
    assert [a.dim for a in model.dnn.activations] == [16, 8]
    model.compile("adam", "binary_crossentropy", lr=0.01)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for a in model.dnn.activations:
        assert (a.alpha != 0).all() and (a.running_mean != 0).all()
    assert np.isfinite(model.predict(x)).all()


# -------------------------------------------------------------------- property tests
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 7), st.integers(0, 4), st.integers(0, 10 ** 6),
       st.booleans())
def test_predictions_do_not_depend_on_padding(n, T, extra, seed, norm):
    x, _ = make_data(n, T, seed=seed)
    noisy = make_data(n, T, seed=seed, garbage_seed=seed + 1, extra=extra)[0]
    a = ctrkit.build("din", feats(T), att_weight_normalization=norm, **SMALL)
    b = ctrkit.build("din", feats(T + extra), att_weight_normalization=norm, **SMALL)
    np.testing.assert_array_equal(a.predict(x), b.predict(noisy))
    wa, wb = a.explain(x), b.explain(noisy)
    np.testing.assert_array_equal(wa, wb[:, :T])
    assert (wb[:, T:] == 0).all()


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(0, 10 ** 6))
def test_feature_list_order_changes_nothing(shuffle_seed, data_seed):
    x, y = make_data(32, seed=data_seed)
    models = []
    for fs in (feats(), feats(shuffle_seed=shuffle_seed)):
        m = ctrkit.build("din", fs, **SMALL)
        m.compile("adam", "binary_crossentropy", lr=0.01)
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
        models.append(m)
    assert_same_state(*models)
    np.testing.assert_array_equal(models[0].predict(x), models[1].predict(x))


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=10), st.booleans(), st.booleans())
def test_rows_without_history_give_finite_predictions(lengths, norm, train_mode):
    lengths = np.array(lengths)
    x, y = make_data(len(lengths), lengths=lengths)
    model = ctrkit.build("din", feats(), att_weight_normalization=norm, **SMALL)
    from ctrkit.inputs import prepare_inputs
    batch = prepare_inputs(model.features, x).take(torch.arange(len(lengths)))
    model.train(train_mode)
    logits = model(batch)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    w = model.explain(x)
    assert (w[lengths == 0] == 0).all()
    if norm and (lengths > 0).any():
        np.testing.assert_allclose(w[lengths > 0].sum(1), 1.0, rtol=1e-5)


def _fused_vs_plain(emb_dim, hidden, b, m, seed, act, dtype):
    """Outputs and gradients (q, k, every parameter) of the fused and the plain unit."""
    torch.manual_seed(seed)
    fused = LocalActivationUnit(emb_dim, hidden, act, init=0.5, fused=True).to(dtype)
    plain = LocalActivationUnit(emb_dim, hidden, act, init=0.5, fused=False).to(dtype)
    for lin in fused.linears:  # non-zero biases too
        torch.nn.init.normal_(lin.bias)
    plain.load_state_dict(fused.state_dict())
    q = torch.randn(b, emb_dim, dtype=dtype, requires_grad=True)
    k = torch.randn(m, emb_dim, dtype=dtype, requires_grad=True)
    rows = torch.randint(0, b, (m,))
    outs, grads = [], []
    for unit in (fused, plain):
        s = unit.score_rows(q, k, rows)
        (s * torch.linspace(-1, 1, m, dtype=dtype)).mean().backward()
        outs.append(s.detach())
        grads.append([q.grad.clone(), k.grad.clone()]
                     + [p.grad.clone() for p in unit.parameters()])
        q.grad = k.grad = None
    # the plain path is the concat formula [q, k, q - k, q * k] -> Linear, written out here
    qr = q[rows]
    h = plain.linears[0](torch.cat([qr, k, qr - k, qr * k], -1))
    torch.testing.assert_close(plain._hidden_and_out(h, None), outs[1], rtol=0, atol=0)
    return outs, grads


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.lists(st.integers(1, 9), min_size=1, max_size=3),
       st.integers(1, 4), st.integers(1, 12), st.integers(0, 10 ** 6),
       st.sampled_from(["dice", "relu", "sigmoid"]))
def test_fused_attention_equals_the_concat_formula(emb_dim, hidden, b, m, seed, act):
    # float64: with 2 pairs Dice divides by a batch std near 0, which would amplify float32
    # rounding of either path; the identity itself is exact.
    outs, grads = _fused_vs_plain(emb_dim, hidden, b, m, seed, act, torch.float64)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for g1, g2 in zip(*grads):
        torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_attention_equals_the_concat_formula_in_float32_at_din_sizes(seed):
    outs, grads = _fused_vs_plain(8, (64, 16), 32, 200, seed, "dice", torch.float32)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for g1, g2 in zip(*grads):
        torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-5)


def test_segment_softmax_equals_masked_softmax():
    torch.manual_seed(3)
    scores = torch.randn(4, 6) * 10
    mask = torch.rand(4, 6) > 0.4
    mask[2] = False
    rows, cols = mask.nonzero(as_tuple=True)
    seg = torch.zeros(4, 6).index_put((rows, cols), segment_softmax(scores[rows, cols], rows, 4))
    torch.testing.assert_close(seg, masked_softmax(scores, mask))
    assert (seg[2] == 0).all()


# ------------------------------------------------------------------ shared embeddings
def test_history_shares_the_candidate_table_by_default():
    model = ctrkit.build("din", feats(), **SMALL)
    assert model.embeddings.table("hist_item") is model.embeddings.table("item")
    assert model.embeddings.table("hist_cate") is model.embeddings.table("cate")
    assert sorted(model.embeddings.tables) == ["cate", "item", "user"]


def test_share_history_embeddings_false_keeps_separate_tables():
    model = ctrkit.build("din", feats(), share_history_embeddings=False, **SMALL)
    assert sorted(model.embeddings.tables) == ["cate", "hist_cate", "hist_item", "item", "user"]
    assert model.embeddings.table("hist_item") is not model.embeddings.table("item")


def test_an_explicit_embedding_name_is_respected():
    fs = feats()
    fs[4] = VarLenSparseFeat(SparseFeat("hist_item", 30, 4, embedding_name="clicked_items"), 6,
                             length_name="seq_length")
    model = ctrkit.build("din", fs, **SMALL)
    assert model.embeddings.table_of["hist_item"] == "clicked_items"
    assert model.embeddings.table("hist_cate") is model.embeddings.table("cate")
    # a shared name declared on purpose shares, whatever the sequence is called
    fs[4] = VarLenSparseFeat(SparseFeat("clicks", 30, 4, embedding_name="item"), 6,
                             length_name="seq_length")
    model = ctrkit.build("din", fs, **SMALL)
    assert model.history_feature_list == ["cate", "item"]
    assert model.embeddings.table("clicks") is model.embeddings.table("item")


# -------------------------------------------------------------------------- explain
@pytest.mark.parametrize("norm", [False, True])
def test_explain_returns_zero_padded_weights(norm):
    x, y = make_data(30, lengths=np.r_[0, 6, np.random.default_rng(0).integers(0, 7, 28)])
    model = trained(x, y, epochs=1, att_weight_normalization=norm)
    w = model.explain(x)
    assert w.shape == (30, 6) and w.dtype == np.float32
    valid = np.arange(6)[None] < x["seq_length"][:, None]
    assert (w[~valid] == 0).all() and (w[0] == 0).all()
    assert (w[valid] != 0).all()
    if norm:
        np.testing.assert_allclose(w[x["seq_length"] > 0].sum(1), 1.0, rtol=1e-5)
        assert (w >= 0).all()
    np.testing.assert_allclose(model.explain(x, batch_size=4), w, rtol=1e-6, atol=1e-7)
    # the weights are the ones the forward pass pools with
    from ctrkit.inputs import prepare_inputs
    model.eval()
    batch = prepare_inputs(model.features, x).take(torch.arange(30))
    keys = torch.cat([model.embeddings.lookup(s, batch[s]) for s in ("hist_cate", "hist_item")], -1)
    q = torch.cat([model.embeddings.lookup(c, batch[c]) for c in ("cate", "item")], -1)
    with torch.no_grad():
        pooled = model.attention(q, keys, model.sequence_mask(batch, model.pairs[0][1]))
    torch.testing.assert_close(pooled, (torch.from_numpy(w).unsqueeze(-1) * keys).sum(1))


def test_explain_on_a_model_without_attention_is_a_config_error():
    with ctrkit.MODELS.scope():
        @ctrkit.register_model("no_attention")
        class NoAttention(BaseModel):
            def __init__(self, features, seed=1024):
                super().__init__(features, seed=seed)
                self.out = torch.nn.Linear(4, 1)

            def forward(self, batch):
                return self.out(self.embeddings.lookup("user", batch["user"])).squeeze(-1)

        model = ctrkit.build("no_attention", [SparseFeat("user", 5, 4)])
        with pytest.raises(ConfigError, match=r"Model 'no_attention' has no attention weights"):
            model.explain({"user": np.array([1, 2])})
    assert "no_attention" not in ctrkit.list_models()


def test_attention_heatmap_draws_the_row(tmp_path):
    pytest.importorskip("matplotlib")
    from ctrkit.plot import attention_heatmap
    x, y = make_data(10, lengths=[3, 6, 0, 2, 1, 5, 4, 3, 2, 1])
    model = ctrkit.build("din", feats(), att_weight_normalization=True, **SMALL)
    w = model.explain(x)
    path = tmp_path / "att.png"
    fig = attention_heatmap(model, x, row=1, path=str(path))
    ax = fig.axes[0]
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array())[0], w[1], rtol=1e-6)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == 6
    assert labels[2] == f"t=2\ncate={x['hist_cate'][1, 2]}\nitem={x['hist_item'][1, 2]}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # from weights and the history ids: padding is left out
    fig = attention_heatmap(w, {"item": x["hist_item"]}, row=0)
    np.testing.assert_allclose(np.asarray(fig.axes[0].images[0].get_array())[0], w[0, :3])
    fig = attention_heatmap(w, row=2)  # no ids: every position drawn
    assert len(fig.axes[0].get_xticklabels()) == 6
    with pytest.raises(ConfigError, match="row=10 is outside the 10 rows"):
        attention_heatmap(model, x, row=10)


def test_plot_dice_example_uses_ctrkit_dice(tmp_path):
    pytest.importorskip("matplotlib")
    from plot_dice import dice_curves, main
    s = torch.tensor([-50.0, 0.0, 1.0, 50.0])
    f, p = dice_curves(s, mean=1.0, var=4.0, alpha=0.1)
    torch.testing.assert_close(f, torch.tensor([-5.0, 0.0, 0.55, 50.0]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(p[2], torch.tensor(0.5))
    out = main(str(tmp_path / "dice.png"))
    assert (tmp_path / "dice.png").read_bytes()[:4] == b"\x89PNG" and out.endswith("dice.png")


def test_affine_dice_is_deepctrs_batchnorm_gate():
    torch.manual_seed(4)
    d = Dice(3, affine=True)
    bn = torch.nn.BatchNorm1d(3, eps=1e-8)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
        d.bias.copy_(torch.tensor([0.1, 0.0, -0.3]))
        bn.weight.copy_(d.weight)
        bn.bias.copy_(d.bias)
        d.alpha.fill_(0.25)
    x = torch.randn(20, 3)
    p = torch.sigmoid(bn(x))
    torch.testing.assert_close(d(x), p * x + (1 - p) * 0.25 * x)
    torch.testing.assert_close(d.running_var, bn.running_var)
    assert not hasattr(Dice(3), "weight")  # the paper's Dice has no affine part


@pytest.mark.parametrize("act", ["dice", "prelu", "sigmoid"])
def test_a_behaviours_score_does_not_depend_on_its_batch(act):
    """Bit for bit: explain/predict on 100-row batches equal one pass over all rows."""
    torch.manual_seed(0)
    unit = LocalActivationUnit(8, (64, 16), act).eval()
    q, keys = torch.randn(500, 8), torch.randn(6000, 8)
    rows = torch.sort(torch.randint(0, 500, (6000,))).values
    n = int((rows < 20).sum())
    with torch.inference_mode():
        full = unit.score_rows(q, keys, rows)
        part = unit.score_rows(q[:20], keys[:n], rows[:n])
    assert torch.equal(full[:n], part)
