"""xDeepFM's CIN and AutoInt's interacting layer against plain loops over the papers'
formulas (values and gradients), and their models' options and errors."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit.errors import ConfigError
from ctrkit.models.autoint import InteractingLayer
from ctrkit.models.xdeepfm import CIN


def _cin_reference(cin: CIN, x0: torch.Tensor, act) -> torch.Tensor:
    """Equation 6, map by map: X^k_h = act(Σ_i Σ_j W^{k,h}_{ij} (X^{k−1}_i ⊙ X^0_j) + b_h)."""
    b, m, d = x0.shape
    hidden, out = x0, []
    for k, conv in enumerate(cin.convs):
        w = conv.weight.reshape(conv.out_channels, hidden.shape[1], m)  # W^{k,h}_{ij}
        maps = []
        for h in range(conv.out_channels):
            acc = conv.bias[h] + torch.zeros(b, d, dtype=x0.dtype)
            for i in range(hidden.shape[1]):
                for j in range(m):
                    acc = acc + w[h, i, j] * hidden[:, i] * x0[:, j]
            maps.append(act(acc))
        xk = torch.stack(maps, 1)
        if cin.split_half and k < len(cin.convs) - 1:
            half = xk.shape[1] // 2
            hidden, direct = xk[:, :half], xk[:, half:]
        else:
            hidden = direct = xk
        out.append(direct.sum(-1))
    return torch.cat(out, 1)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.lists(st.sampled_from([2, 4]), min_size=1, max_size=3), st.booleans(),
       st.sampled_from(["relu", "linear"]), st.integers(0, 10 ** 6))
def test_cin_equals_the_papers_formula_with_gradients(b, m, d, sizes, split, act, seed):
    torch.manual_seed(seed)
    cin = CIN(m, sizes, act, split).double()
    x0 = torch.randn(b, m, d, dtype=torch.float64, requires_grad=True)
    out = cin(x0)
    ref = _cin_reference(cin, x0, torch.relu if act == "relu" else (lambda t: t))
    assert out.shape == (b, cin.output_dim)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    params = [x0] + list(cin.parameters())
    for a, r in zip(torch.autograd.grad(out, params, g), torch.autograd.grad(ref, params, g)):
        torch.testing.assert_close(a, r)


def _interacting_reference(layer: InteractingLayer, x: torch.Tensor) -> torch.Tensor:
    """Equations 5-8 per row, field and head."""
    b, f, _ = x.shape
    d, H = layer.d, layer.heads
    rows = []
    for r in range(b):
        fields = []
        for m in range(f):
            heads = []
            for h in range(H):
                cols = slice(h * d, (h + 1) * d)
                q = x[r, m] @ layer.w_query[:, cols]
                logits = torch.stack([q @ (x[r, k] @ layer.w_key[:, cols]) for k in range(f)])
                if layer.scaling:
                    logits = logits / d ** 0.5
                alpha = torch.exp(logits) / torch.exp(logits).sum()
                heads.append(sum(alpha[k] * (x[r, k] @ layer.w_value[:, cols]) for k in range(f)))
            e = torch.cat(heads)
            if layer.w_res is not None:
                e = e + x[r, m] @ layer.w_res
            fields.append(torch.relu(e))
        rows.append(torch.stack(fields))
    return torch.stack(rows)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 4), st.integers(1, 3),
       st.integers(1, 3), st.booleans(), st.booleans(), st.integers(0, 10 ** 6))
def test_interacting_layer_equals_the_papers_formula_with_gradients(b, f, e, d, heads, res,
                                                                    scaling, seed):
    torch.manual_seed(seed)
    layer = InteractingLayer(e, d, heads, res, scaling).double()
    x = torch.randn(b, f, e, dtype=torch.float64, requires_grad=True)
    out, ref = layer(x), _interacting_reference(layer, x)
    assert out.shape == (b, f, d * heads)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    params = [x] + list(layer.parameters())
    for a, r in zip(torch.autograd.grad(out, params, g), torch.autograd.grad(ref, params, g)):
        torch.testing.assert_close(a, r)


@pytest.mark.parametrize("name, kw", [
    ("xdeepfm", {"dnn_hidden_units": ()}), ("xdeepfm", {"cin_layer_size": ()}),
    ("xdeepfm", {"cin_split_half": False, "cin_layer_size": (3, 5)}),
    ("autoint", {"dnn_hidden_units": ()}), ("autoint", {"att_layer_num": 0}),
    ("autoint", {"att_res": False, "att_scaling": True}),
])
def test_variants_learn_the_planted_signal(small_synthetic, name, kw):
    x, y, features = small_synthetic
    model = ctrkit.build(name, features, seed=0, init_std=0.1, **kw)
    model.compile("adam", metrics=["auc"], lr=1e-2)
    model.fit(x, y, batch_size=128, epochs=3, verbose=0)
    assert model.evaluate(x, y, batch_size=1000)["auc"] > 0.65


def test_autoint_without_mlp_still_reads_the_dense_values(tutorial):
    x, y, features, _ = tutorial
    model = ctrkit.build("autoint", features, dnn_hidden_units=(), att_layer_num=1)
    n_fields = len(model.fields)
    assert model.dnn_linear.in_features == n_fields * 16 + 1  # + the 'score' dense value
    batch = model.example_batch(2)
    base = model(batch)
    batch["score"] = batch["score"] + 1.0
    assert not torch.equal(model(batch), base)


@pytest.mark.parametrize("name, kw, msg", [
    ("xdeepfm", {"cin_layer_size": (3, 4)}, "sizes must be even"),
    ("xdeepfm", {"cin_layer_size": (0,)}, "positive sizes"),
    ("autoint", {"att_layer_num": 0, "dnn_hidden_units": ()}, "leave no network"),
    ("autoint", {"att_head_num": 0}, "must be positive"),
])
def test_bad_hyperparameters_are_refused(small_synthetic, name, kw, msg):
    with pytest.raises(ConfigError, match=msg):
        ctrkit.build(name, small_synthetic[2], **kw)


def test_l2_reg_cin_enters_the_regularization_loss(small_synthetic):
    model = ctrkit.build("xdeepfm", small_synthetic[2], l2_reg_cin=0.5, l2_reg_linear=0.0,
                         l2_reg_embedding=0.0)
    expected = 0.5 * sum((c.weight ** 2).sum() for c in model.cin.convs)
    torch.testing.assert_close(model.regularization_loss(model.example_batch()), expected)
