"""The optimised DIN paths equal the plain formulas, values and gradients (issue 6).

Optimised: the fused Dice forward/backward, the split-weight first layer with one GEMM, and the
packed lookup of valid history positions only. Plain: Dice op by op through autograd, the
concat ``[q, k, q − k, q ⊙ k] → MLP``, and the padded (B, T, E) history embedded in full.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit.models.din import Dice

#: every att_weight_normalization value: DeepCTR's booleans and the named poolings
POOLINGS = [False, True, "sigmoid", "softmax+count", "softmax+sum"]

# float results compared within a tolerance or run to run: CI reruns them under
# ATEN_CPU_CAPABILITY=avx2 and =default (see .ci/run)
pytestmark = pytest.mark.numeric


def _dice_pair(dim, affine, dtype, seed):
    torch.manual_seed(seed)
    fast = Dice(dim, affine=affine, fast=True).to(dtype)
    with torch.no_grad():
        fast.alpha.uniform_(-1, 1)
        if affine:
            fast.weight.uniform_(0.5, 2.0)
            fast.bias.uniform_(-1, 1)
    plain = Dice(dim, affine=affine, fast=False).to(dtype)
    plain.load_state_dict(fast.state_dict())
    return fast, plain


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 7), st.integers(2, 60), st.booleans(), st.integers(0, 10 ** 6),
       st.floats(-5, 5), st.floats(0.01, 10))
def test_fused_dice_equals_the_formula_through_autograd(dim, n, affine, seed, shift, scale):
    fast, plain = _dice_pair(dim, affine, torch.float64, seed)
    x = (torch.randn(n, dim, dtype=torch.float64) * scale + shift).requires_grad_()
    g = torch.randn(n, dim, dtype=torch.float64)
    results = []
    for d in (fast, plain):
        out = d(x)
        grads = torch.autograd.grad(out, [x] + list(d.parameters()), g)
        results.append((out.detach(), grads))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-5)
    assert len(results[0][1]) == (4 if affine else 2)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.running_mean, plain.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast.running_var, plain.running_var, rtol=1e-12, atol=1e-12)


def test_fused_dice_float32_at_attention_sizes():
    fast, plain = _dice_pair(64, False, torch.float32, 0)
    x = (torch.randn(5000, 64) * 1e-3 + 0.2).requires_grad_()  # DIN's tiny-init regime
    g = torch.randn(5000, 64)
    (gf,) = torch.autograd.grad(fast(x), [x], g)
    (gp,) = torch.autograd.grad(plain(x), [x], g)
    torch.testing.assert_close(gf, gp, rtol=1e-4, atol=1e-4 * float(gp.abs().max()))


def _features(T):
    S, V = ctrkit.SparseFeat, ctrkit.VarLenSparseFeat
    return [S("user", 30, 4), S("item", 40, 4), S("cate", 7, 4),
            V(S("hist_item", 40, 4), T, length_name="seq_length"),
            V(S("hist_cate", 7, 4), T, length_name="seq_length")]


def _batch(n, T, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, T + 1, (n,), generator=g)
    valid = torch.arange(T)[None] < lengths[:, None]
    hist = torch.randint(1, 40, (n, T), generator=g) * valid
    return {"user": torch.randint(0, 30, (n,), generator=g),
            "item": torch.randint(1, 40, (n,), generator=g),
            "cate": torch.randint(1, 7, (n,), generator=g),
            "hist_item": hist, "hist_cate": hist % 7, "seq_length": lengths}


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 40), st.integers(1, 9), st.integers(0, 10 ** 6), st.sampled_from(POOLINGS),
       st.sampled_from(["dice", "relu"]))
def test_optimised_din_equals_the_plain_formula_with_gradients(n, T, seed, norm, dnn_act):
    kw = dict(init_std=0.3, seed=seed % 1000, att_weight_normalization=norm,
              dnn_activation=dnn_act, dnn_hidden_units=(16, 8))
    fast = ctrkit.build("din", _features(T), **kw).double()
    plain = ctrkit.build("din", _features(T), fused_attention=False, packed_lookup=False,
                         **kw).double()
    for m in plain.modules():
        if isinstance(m, Dice):
            m.fast = False
    plain.load_state_dict(fast.state_dict())
    batch = _batch(n, T, seed)
    outs = []
    for model in (fast, plain):
        model.train()
        logits = model(batch)
        (logits * torch.linspace(-1, 1, n, dtype=logits.dtype)).sum().backward()
        outs.append((logits.detach(), {k: p.grad for k, p in model.named_parameters()}))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    assert outs[0][1].keys() == outs[1][1].keys()
    for k in outs[0][1]:
        a, b = outs[0][1][k], outs[1][1][k]
        if a is None or b is None:
            assert a is None and b is None, k
            continue
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=k)
    for k, v in fast.state_dict().items():  # running statistics too
        torch.testing.assert_close(v, plain.state_dict()[k], rtol=1e-9, atol=1e-12, msg=k)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_packed_and_padded_models_train_to_the_same_weights(pooling):
    x = {k: v.numpy() for k, v in _batch(200, 6, 1).items()}
    y = (np.arange(200) % 3 == 0).astype(np.float32)
    models = [ctrkit.build("din", _features(6), packed_lookup=p, seed=5,
                           att_weight_normalization=pooling) for p in (True, False)]
    for m in models:
        m.compile("sgd", "binary_crossentropy", lr=0.5)
        m.fit(x, y, batch_size=64, epochs=2, verbose=0)
    sa, sb = models[0].state_dict(), models[1].state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-5, atol=1e-6, msg=k)
    np.testing.assert_allclose(models[0].predict(x), models[1].predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("affine", [False, True])
def test_inference_dice_equals_the_eval_formula(affine):
    fast, plain = _dice_pair(6, affine, torch.float64, 3)
    x = torch.randn(40, 6, dtype=torch.float64) * 2 + 1
    fast(x), plain(x)  # one training step of running statistics
    fast.eval(), plain.eval()
    with torch.inference_mode():
        a = fast(x)
    with torch.no_grad():
        b = plain(x)
    p = torch.sigmoid(((x - plain.running_mean) / torch.sqrt(plain.running_var + 1e-8))
                      * (plain.weight if affine else 1) + (plain.bias if affine else 0))
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a, p * x + (1 - p) * plain.alpha * x, rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 40), st.integers(1, 9), st.integers(1, 12), st.integers(0, 10 ** 6),
       st.sampled_from(POOLINGS), st.sampled_from(["dice", "prelu", "sigmoid"]))
def test_inference_scoring_equals_the_autograd_path(n, T, chunk, seed, norm, act):
    """Eval without autograd scores in chunks with constants folded once per call; eval with
    autograd runs the training-time ops. Both give the same logits and weights, for any chunk
    size and for Dice as well as plain activations."""
    from ctrkit.models.din.attention import LocalActivationUnit
    model = ctrkit.build("din", _features(T), init_std=0.3, seed=seed % 1000,
                         att_weight_normalization=norm, att_activation=act).double()
    batch = _batch(n, T, seed)
    model.train()
    model(batch)  # running statistics away from their initial values
    model.eval()
    x = {k: v.numpy() for k, v in batch.items()}
    with torch.enable_grad():  # the autograd path (eval mode: running statistics)
        ref = model(batch).detach()
        _, q, k_valid, rows, pos, t = model._embed_packed(batch, with_sparse=False)
        ref_w = model.attention.pool_packed(q, k_valid, rows, pos, t, return_weights=True)[1]
    assert ref.requires_grad is False and ref_w.grad_fn is not None
    outs = []
    try:
        for c in (chunk, None):
            LocalActivationUnit.inference_chunk = c
            with torch.inference_mode():
                outs.append((model(batch), model.explain(x)))
    finally:
        LocalActivationUnit.inference_chunk = 8192
    for logits, weights in outs:
        torch.testing.assert_close(logits, ref, rtol=1e-12, atol=1e-12)
        # explain() returns float32
        np.testing.assert_allclose(weights, ref_w.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-6, atol=1e-7)
