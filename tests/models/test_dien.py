"""DIEN: attentional GRUs and the auxiliary loss against plain per-row references; the
packed path against the dense one (values and gradients); its configuration errors."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit import SparseFeat, VarLenSparseFeat
from ctrkit.errors import ConfigError
from ctrkit.models.dien import AttentionalGRU, gru_packed, pack_positions
from ctrkit.registry import LAYERS

GRU_TYPES = ["AUGRU", "AGRU", "AIGRU", "GRU"]


def _paper_step(cell: AttentionalGRU, x, h, a):
    """Equations 2-4 and 7-8 of the paper for ONE row (column vectors, gates by name)."""
    H = cell.hidden_size
    W, U, b = cell.weight_i, cell.weight_h, cell.bias
    Wu, Wr, Wh = W[:H], W[H:2 * H], W[2 * H:]
    Uu, Ur, Uh = U[:H], U[H:2 * H], U[2 * H:]
    bu, br, bh = b[:H], b[H:2 * H], b[2 * H:]
    u = torch.sigmoid(Wu @ x + Uu @ h + bu)
    r = torch.sigmoid(Wr @ x + Ur @ h + br)
    h_tilde = torch.tanh(Wh @ x + r * (Uh @ h) + bh)
    if cell.gru_type == "AUGRU":
        u_att = a * u
        return (1 - u_att) * h + u_att * h_tilde
    return (1 - a) * h + a * h_tilde                      # AGRU


def _reference_last_states(cell, x, a, lengths):
    out = []
    for r in range(x.shape[0]):
        h = x.new_zeros(cell.hidden_size)
        for t in range(int(lengths[r])):
            h = _paper_step(cell, x[r, t], h, a[r, t])
        out.append(h)
    return torch.stack(out)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["AUGRU", "AGRU"]), st.lists(st.integers(0, 6), min_size=1, max_size=7),
       st.integers(1, 5), st.integers(0, 10 ** 6))
def test_attentional_grus_equal_the_papers_equations_with_gradients(gru_type, lengths, dim, seed):
    torch.manual_seed(seed)
    lengths = torch.tensor([max(lengths[0], 1)] + lengths[1:])  # empty rows, but not only
    b, t = len(lengths), 6
    cell = AttentionalGRU(dim + 1, dim, gru_type).double()
    x = torch.randn(b, t, dim + 1, dtype=torch.float64, requires_grad=True)
    a = torch.rand(b, t, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(t)[None] < lengths[:, None]
    ref = _reference_last_states(cell, x, a, lengths)
    dense = cell.forward_dense(x, a, mask)
    p = pack_positions(lengths, t)
    packed = x.new_zeros(b, dim).index_copy(
        0, p.sorted_rows, cell.forward_packed(x.reshape(-1, dim + 1)[p.flat], a.reshape(-1)[p.flat], p))
    g = torch.randn(b, dim, dtype=torch.float64)
    params = [x, a] + list(cell.parameters())
    ref_grads = torch.autograd.grad(ref, params, g, allow_unused=True)
    for out in (dense, packed):
        torch.testing.assert_close(out, ref)
        for got, want in zip(torch.autograd.grad(out, params, g, allow_unused=True), ref_grads):
            if want is None:
                assert got is None or not got.any()
            else:
                torch.testing.assert_close(got, want)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=12))
def test_packed_positions_visit_each_valid_position_once_in_time_major_order(lengths):
    lengths = torch.tensor(lengths)
    t = 9
    p = pack_positions(lengths, t)
    valid = {(r, c) for r in range(len(lengths)) for c in range(int(lengths[r]))}
    got = list(zip(p.rows.tolist(), p.cols.tolist()))
    assert set(got) == valid and len(got) == len(valid)
    assert p.cols.tolist() == sorted(p.cols.tolist())               # time-major
    assert (p.flat == p.rows * t + p.cols).all()
    assert p.batch_sizes.tolist() == [int((lengths > s).sum()) for s in range(int(lengths.max()))]
    # the next step of the same row is step_size elements further
    for i, (r, c) in enumerate(got):
        if c + 1 < lengths[r]:
            assert got[i + int(p.step_size[i])] == (r, c + 1)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=9), st.integers(1, 5),
       st.integers(1, 4), st.integers(0, 10 ** 6))
def test_packed_gru_loop_equals_torchs_packed_gru_with_gradients(lengths, in_dim, h_dim, seed):
    """gru_packed (the 'loop' gru_impl) against torch's nn.GRU on the same PackedSequence:
    every state, the last states, and the gradients of the inputs and of all four weights."""
    torch.manual_seed(seed)
    lengths = torch.tensor([max(lengths[0], 1)] + lengths[1:])  # empty rows, but not only
    gru = torch.nn.GRU(in_dim, h_dim, batch_first=True).double()
    p = pack_positions(lengths, 7)
    x = torch.randn(len(p.rows), in_dim, dtype=torch.float64, requires_grad=True)
    states, last = gru_packed(gru, x, p.batch_sizes.tolist())
    out, h_n = gru(torch.nn.utils.rnn.PackedSequence(x, p.batch_sizes))
    torch.testing.assert_close(states, out.data)
    torch.testing.assert_close(last, h_n[0])
    assert gru_packed(gru, x, p.batch_sizes.tolist(), states=False)[0] is None
    g_states, g_last = torch.randn_like(states), torch.randn_like(last)
    params = [x] + list(gru.parameters())
    got = torch.autograd.grad((states * g_states).sum() + (last * g_last).sum(), params)
    want = torch.autograd.grad((out.data * g_states).sum() + (h_n[0] * g_last).sum(), params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_packed_gru_loop_refuses_grus_it_does_not_implement():
    p = pack_positions(torch.tensor([2, 1]), 2)
    x = torch.randn(3, 2)
    for gru in (torch.nn.GRU(2, 3, num_layers=2), torch.nn.GRU(2, 3, bidirectional=True),
                torch.nn.GRU(2, 3, bias=False)):
        with pytest.raises(ConfigError, match="one-layer, unidirectional nn.GRU with biases"):
            gru_packed(gru, x, p.batch_sizes.tolist())


def _features(neg: bool, T: int = 6, length_name="seq_length"):
    S, V = SparseFeat, VarLenSparseFeat
    feats = [S("user", 20, 4), S("item", 30, 4), S("cate", 6, 4),
             V(S("hist_item", 30, 4), T, length_name=length_name),
             V(S("hist_cate", 6, 4), T, length_name=length_name)]
    if neg:
        feats += [V(S("neg_hist_item", 30, 4), T, length_name=length_name),
                  V(S("neg_hist_cate", 6, 4), T, length_name=length_name)]
    return feats


def _batch(n, T, seed, neg=True):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, T + 1, (n,), generator=g)
    lengths[0] = T
    valid = torch.arange(T)[None] < lengths[:, None]
    batch = {"user": torch.randint(0, 20, (n,), generator=g),
             "item": torch.randint(1, 30, (n,), generator=g),
             "cate": torch.randint(1, 6, (n,), generator=g),
             "hist_item": torch.randint(1, 30, (n, T), generator=g) * valid,
             "hist_cate": torch.randint(1, 6, (n, T), generator=g) * valid,
             "seq_length": lengths}
    if neg:
        batch["neg_hist_item"] = torch.randint(1, 30, (n, T), generator=g) * valid
        batch["neg_hist_cate"] = torch.randint(1, 6, (n, T), generator=g) * valid
    return batch


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(GRU_TYPES), st.integers(1, 12), st.integers(0, 10 ** 5), st.booleans())
def test_packed_dien_equals_the_dense_masked_path_with_gradients(gru_type, n, seed, norm):
    """Training mode (aux loss included, declared negatives): same logits, same auxiliary
    loss, same gradients for every parameter."""
    kw = dict(gru_type=gru_type, seed=seed % 100, init_std=0.3, att_weight_normalization=norm,
              dnn_hidden_units=(8,), att_hidden_units=(6,), aux_hidden_units=(5,))
    packed = ctrkit.build("dien", _features(True), **kw).double()
    dense = ctrkit.build("dien", _features(True), packed=False, **kw).double()
    dense.load_state_dict(packed.state_dict())
    batch = _batch(n, 6, seed)
    results = []
    for m in (packed, dense):
        m.train()
        logits = m(batch)
        aux = m.auxiliary_loss()
        grads = torch.autograd.grad(logits.sum() + aux, list(m.parameters()), allow_unused=True)
        results.append((logits, aux, grads))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    for a, b in zip(results[0][2], results[1][2]):
        if a is None or b is None:
            assert (a is None or not a.any()) and (b is None or not b.any())
        else:
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("gru_type", GRU_TYPES)
def test_loop_and_torch_gru_impls_give_the_same_model(gru_type):
    """gru_impl='loop' (default) and 'torch' (torch's packed nn.GRU): same logits, auxiliary
    loss and gradients of every parameter, in training mode with in-batch negatives (drawn
    from the same seeded stream)."""
    kw = dict(gru_type=gru_type, seed=4, init_std=0.3, dnn_hidden_units=(8,),
              att_hidden_units=(6,))
    loop = ctrkit.build("dien", _features(False), **kw).double()
    ref = ctrkit.build("dien", _features(False), gru_impl="torch", **kw).double()
    ref.load_state_dict(loop.state_dict())
    assert loop.hparams["gru_impl"] == "loop" and ref.hparams["gru_impl"] == "torch"
    batch = _batch(9, 6, 3, neg=False)
    results = []
    for m in (loop, ref):
        m.train()
        torch.manual_seed(0)  # the in-batch negatives
        logits = m(batch)
        aux = m.auxiliary_loss()
        results.append((logits, aux, torch.autograd.grad(logits.sum() + aux,
                                                         list(m.parameters()))))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    for a, b in zip(results[0][2], results[1][2]):
        torch.testing.assert_close(a, b)


def test_auxiliary_loss_equals_the_per_position_definition():
    """Paper's inner-product form (aux_hidden_units=()): the mean over all (row, t) with
    t + 1 < length of −log σ(h_t·e_{t+1}) and −log(1 − σ(h_t·ê_{t+1}))."""
    model = ctrkit.build("dien", _features(True), aux_hidden_units=(), init_std=0.3,
                         alpha=2.0, seed=1).double()
    batch = _batch(9, 6, 4)
    model.train()
    model(batch)
    got = model.auxiliary_loss()

    def emb(name, ids):
        return model.embeddings.lookup(name, ids)

    keys = torch.cat([emb("hist_cate", batch["hist_cate"]), emb("hist_item", batch["hist_item"])], -1)
    negs = torch.cat([emb("neg_hist_cate", batch["neg_hist_cate"]),
                      emb("neg_hist_item", batch["neg_hist_item"])], -1)
    terms = []
    for r in range(9):
        L = int(batch["seq_length"][r])
        if L == 0:
            continue
        states = model.extractor(keys[r:r + 1, :L])[0][0]
        for t in range(L - 1):
            terms.append(-torch.log(torch.sigmoid(states[t] @ keys[r, t + 1])))
            terms.append(-torch.log(1 - torch.sigmoid(states[t] @ negs[r, t + 1])))
    torch.testing.assert_close(got, 2.0 * torch.stack(terms).mean())


def test_dien_reuses_dins_registered_unit_and_records_hparams():
    model = ctrkit.build("dien", _features(False), gru_type="AIGRU")
    assert type(model.attention_unit) is LAYERS.get("din_local_activation_unit")
    assert model.history_feature_list == ["cate", "item"] and model.negatives is None
    assert model.hparams["gru_type"] == "AIGRU" and model.hparams["use_negsampling"]
    # neg_hist sequences share the positives' table and stay out of the MLP
    neg = ctrkit.build("dien", _features(True))
    assert neg.embeddings.table_of["neg_hist_item"] == "item"
    assert [f.name for f in neg.other_sequences] == []


def test_in_batch_negatives_train_and_are_reproducible(small_synthetic):
    x, y, features = small_synthetic
    runs = []
    for _ in range(2):
        model = ctrkit.build("dien", features, seed=0, init_std=0.1, dnn_hidden_units=(16,))
        model.compile("adam", lr=1e-2)
        runs.append(model.fit(x, y, batch_size=256, epochs=2, verbose=0).history)
    assert runs[0] == runs[1]
    assert len(runs[0]["aux_loss"]) == 2 and all(np.isfinite(runs[0]["aux_loss"]))
    off = ctrkit.build("dien", features, use_negsampling=False, dnn_hidden_units=(16,))
    off.compile("adam")
    assert "aux_loss" not in off.fit(x, y, batch_size=500, epochs=1, verbose=0).history


def test_history_without_length_column_is_read_in_order_of_its_valid_ids():
    """ids != 0 are the valid positions; gaps are closed, order kept: the same model output
    as the compacted history with a length column."""
    with_len = ctrkit.build("dien", _features(False), seed=3, init_std=0.3)
    no_len = ctrkit.build("dien", _features(False, length_name=None), seed=3, init_std=0.3)
    no_len.load_state_dict(with_len.state_dict())
    batch = _batch(6, 6, 2, neg=False)
    gappy = {k: v.clone() for k, v in batch.items() if k != "seq_length"}
    for name in ("hist_item", "hist_cate"):  # insert a gap after the first behaviour
        v = batch[name]
        gappy[name] = torch.cat([v[:, :1], torch.zeros_like(v[:, :1]), v[:, 1:-1]], 1)
    keep = batch["seq_length"] < 6  # rows whose last behaviour survives the shift
    with_len.eval(), no_len.eval()
    torch.testing.assert_close(no_len(gappy)[keep], with_len(batch)[keep])


@pytest.mark.parametrize("feats, kw, msg", [
    (_features(False), {"gru_type": "LSTM"}, "gru_type must be one of"),
    (_features(True), {"use_negsampling": False}, "use_negsampling=False would ignore them"),
    (_features(True)[:-1], {}, r"not for \['neg_hist_cate'\]"),
    (_features(False), {"alpha": -1.0}, "alpha .* must be >= 0"),
    (_features(False), {"gru_impl": "cudnn"}, "gru_impl must be 'loop'"),
])
def test_bad_configurations_are_refused(feats, kw, msg):
    with pytest.raises(ConfigError, match=msg):
        ctrkit.build("dien", feats, **kw)


def _torch_gru_step(gru: torch.nn.GRU, x, h):
    """torch's GRU equations written out (gates r, z, n in its weight layout), one row."""
    H = gru.hidden_size
    wi, wh, bi, bh = gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0
    r = torch.sigmoid(wi[:H] @ x + bi[:H] + wh[:H] @ h + bh[:H])
    z = torch.sigmoid(wi[H:2 * H] @ x + bi[H:2 * H] + wh[H:2 * H] @ h + bh[H:2 * H])
    n = torch.tanh(wi[2 * H:] @ x + bi[2 * H:] + r * (wh[2 * H:] @ h + bh[2 * H:]))
    return (1 - z) * n + z * h


def _interest_reference(model, batch, row):
    """The interest vector of one row, step by step: extractor GRU, attention softmax over the
    row's behaviours, then the evolving layer of the model's gru_type (the paper's §4.3)."""
    L = int(batch["seq_length"][row])
    E = model.interest_dim
    if L == 0:
        return torch.zeros(E, dtype=torch.float64)
    keys = torch.cat([model.embeddings.lookup("hist_cate", batch["hist_cate"][row, :L]),
                      model.embeddings.lookup("hist_item", batch["hist_item"][row, :L])], -1)
    q = torch.cat([model.embeddings.lookup("cate", batch["cate"][row:row + 1]),
                   model.embeddings.lookup("item", batch["item"][row:row + 1])], -1)
    h, states = keys.new_zeros(E), []
    for t in range(L):
        h = _torch_gru_step(model.extractor, keys[t], h)
        states.append(h)
    states = torch.stack(states)

    def attention(s):
        scores = model.attention_unit(q.expand(L, -1), s)
        return torch.softmax(scores, 0)

    if model.gru_type == "GRU":
        h, evolved = keys.new_zeros(E), []
        for t in range(L):
            h = _torch_gru_step(model.evolution, states[t], h)
            evolved.append(h)
        evolved = torch.stack(evolved)
        return (attention(evolved).unsqueeze(1) * evolved).sum(0)
    a = attention(states)
    h = keys.new_zeros(E)
    for t in range(L):
        if model.gru_type == "AIGRU":
            h = _torch_gru_step(model.evolution, a[t] * states[t], h)
        else:
            h = _paper_step(model.evolution, states[t], h, a[t])
    return h


@pytest.mark.parametrize("gru_type", GRU_TYPES)
def test_interest_vector_equals_a_step_by_step_reference(gru_type):
    model = ctrkit.build("dien", _features(False), gru_type=gru_type, init_std=0.3, seed=5,
                         att_hidden_units=(6,)).double()
    model.eval()
    batch = _batch(8, 6, 11, neg=False)
    emb = {n: model.embeddings.lookup(n, batch[n]) for n in ("cate", "item")}
    q = torch.cat([emb["cate"], emb["item"]], -1)
    ids, mask, lengths = model._history_ids(batch)
    with torch.no_grad():
        got = model._interest_packed(batch, q, ids, lengths, mask.shape[1])
        want = torch.stack([_interest_reference(model, batch, r) for r in range(8)])
    assert (batch["seq_length"] == 0).any() and (batch["seq_length"] > 1).any()
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("gru_type", ["AUGRU", "GRU"])
def test_explain_gives_the_attention_on_each_behaviour_at_its_input_position(gru_type):
    model = ctrkit.build("dien", _features(False), gru_type=gru_type, init_std=0.3, seed=5,
                         att_hidden_units=(6,))
    batch = _batch(8, 6, 11, neg=False)
    x = {k: v.numpy() for k, v in batch.items()}
    w = model.explain(x, batch_size=3)
    assert w.shape == (8, 6) and model.training  # the mode is restored
    lengths = batch["seq_length"].numpy()
    pad = np.arange(6)[None] >= lengths[:, None]
    assert (w[pad] == 0).all()
    np.testing.assert_allclose(w.sum(1)[lengths > 0], 1.0, rtol=1e-5)  # softmax per row
    model.double()
    for r in np.nonzero(lengths > 1)[0][:3]:  # against the step-by-step reference's softmax
        L = int(lengths[r])
        keys = torch.cat([model.embeddings.lookup("hist_cate", batch["hist_cate"][r, :L]),
                          model.embeddings.lookup("hist_item", batch["hist_item"][r, :L])], -1)
        q = torch.cat([model.embeddings.lookup("cate", batch["cate"][r:r + 1]),
                       model.embeddings.lookup("item", batch["item"][r:r + 1])], -1)
        h, states = keys.new_zeros(8), []
        for t in range(L):
            h = _torch_gru_step(model.extractor, keys[t], h)
            states.append(h)
        states = torch.stack(states)
        if gru_type == "GRU":
            h, evolved = keys.new_zeros(8), []
            for t in range(L):
                h = _torch_gru_step(model.evolution, states[t], h)
                evolved.append(h)
            states = torch.stack(evolved)
        model.eval()
        with torch.no_grad():
            a = torch.softmax(model.attention_unit(q.expand(L, -1), states), 0)
        np.testing.assert_allclose(w[r, :L], a.numpy(), rtol=1e-4, atol=1e-6)


def test_explain_maps_weights_back_to_gappy_positions_without_a_length_column():
    model = ctrkit.build("dien", _features(False, length_name=None), init_std=0.3, seed=2)
    x = {"user": np.array([1, 2]), "item": np.array([3, 4]), "cate": np.array([1, 2]),
         "hist_item": np.array([[0, 5, 0, 7, 8, 0], [0, 0, 0, 0, 0, 0]]),
         "hist_cate": np.array([[0, 1, 0, 2, 3, 0], [0, 0, 0, 0, 0, 0]])}
    w = model.explain(x)
    assert (w[0] > 0).tolist() == [False, True, False, True, True, False]
    assert w[0].sum() == pytest.approx(1.0, rel=1e-5) and not w[1].any()


def test_models_without_attention_still_refuse_to_explain(small_synthetic):
    x, _, features = small_synthetic
    with pytest.raises(ConfigError, match="has no attention weights to explain"):
        ctrkit.build("dcnv2", features).explain(x)
