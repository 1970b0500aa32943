"""DCN / DCN-V2 cross layers against the plain per-row formulas (values and gradients)."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit.errors import ConfigError
from ctrkit.models.dcn import CrossNetwork


def _reference(net: CrossNetwork, x0: torch.Tensor) -> torch.Tensor:
    """The papers' formulas, one row and one layer at a time, column vectors as written."""
    rows = []
    for r in range(x0.shape[0]):
        v0 = x0[r].unsqueeze(1)  # (D, 1)
        v = v0
        for i in range(net.num_layers):
            w, b = net.kernels[i], net.biases[i].unsqueeze(1)
            if net.parameterization == "vector":        # DCN: x0 x_lᵀ w + b + x_l
                v = v0 @ (v.t() @ w) + b + v
            elif net.num_experts is not None:           # DCN-Mix: Σ_i G_i(x_l) E_i(x_l) + x_l
                logits = torch.stack([net.gates[i][k] @ v.squeeze(1)
                                      for k in range(net.num_experts)])
                gate = torch.exp(logits) / torch.exp(logits).sum()
                mix = 0
                for k in range(net.num_experts):
                    u, vk, c = net.kernels[i][k], net.kernels_v[i][k], net.kernels_c[i][k]
                    expert = v0 * (u @ torch.tanh(c @ torch.tanh(vk.t() @ v)) + b)
                    mix = mix + gate[k] * expert
                v = mix + v
            elif net.low_rank is None:                  # DCN-V2: x0 ⊙ (W x_l + b) + x_l
                v = v0 * (w @ v + b) + v
            else:                                       # low rank: W = U Vᵀ
                v = v0 * (w @ (net.kernels_v[i].t() @ v) + b) + v
        rows.append(v.squeeze(1))
    return torch.stack(rows)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([("vector", None, None), ("matrix", None, None), ("matrix", 2, None),
                        ("matrix", 5, None), ("matrix", 2, 1), ("matrix", 3, 4)]),
       st.integers(0, 3), st.integers(1, 6), st.integers(1, 9), st.integers(0, 10 ** 6))
def test_cross_network_equals_the_papers_formula_with_gradients(kind, layers, n, d, seed):
    torch.manual_seed(seed)
    net = CrossNetwork(d, layers, kind[0], kind[1], num_experts=kind[2]).double()
    with torch.no_grad():
        for b in net.biases:
            b.uniform_(-1, 1)
    x0 = torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    g = torch.randn(n, d, dtype=torch.float64)
    out, ref = net(x0), _reference(net, x0)
    torch.testing.assert_close(out, ref)
    params = [x0] + list(net.parameters())
    for a, b in zip(torch.autograd.grad(out, params, g, allow_unused=True),
                    torch.autograd.grad(ref, params, g, allow_unused=True)):
        torch.testing.assert_close(a, b)


def test_shapes_and_parameter_counts():
    assert sum(p.numel() for p in CrossNetwork(10, 3, "vector").parameters()) == 3 * (10 + 10)
    assert sum(p.numel() for p in CrossNetwork(10, 3, "matrix").parameters()) == 3 * (100 + 10)
    assert sum(p.numel() for p in CrossNetwork(10, 3, "matrix", 2).parameters()) == 3 * (40 + 10)
    # DCN-Mix: per layer and expert U, V (D×r), C (r×r), a gate (D); one bias (D) per layer
    mix = CrossNetwork(10, 3, "matrix", 2, num_experts=4)
    assert sum(p.numel() for p in mix.parameters()) == 3 * (4 * (20 + 20 + 4 + 10) + 10)


def test_one_expert_is_its_nonlinear_low_rank_layer_and_identical_experts_mix_to_it():
    torch.manual_seed(0)
    net = CrossNetwork(6, 1, "matrix", 3, num_experts=1).double()
    x0 = torch.randn(5, 6, dtype=torch.float64)
    u, v, c = net.kernels[0][0], net.kernels_v[0][0], net.kernels_c[0][0]
    want = x0 * (torch.tanh(torch.tanh(x0 @ v) @ c.t()) @ u.t() + net.biases[0]) + x0
    torch.testing.assert_close(net(x0), want)  # softmax over one expert: gate 1
    mix = CrossNetwork(6, 1, "matrix", 3, num_experts=3).double()
    with torch.no_grad():  # identical experts: the mixture equals any one of them
        for w in (mix.kernels[0], mix.kernels_v[0], mix.kernels_c[0]):
            w.copy_(w[:1].expand_as(w))
    one = CrossNetwork(6, 1, "matrix", 3, num_experts=1).double()
    with torch.no_grad():
        for a, b in ((one.kernels[0], mix.kernels[0]), (one.kernels_v[0], mix.kernels_v[0]),
                     (one.kernels_c[0], mix.kernels_c[0])):
            a.copy_(b[:1])
    torch.testing.assert_close(mix(x0), one(x0))


@pytest.mark.parametrize("kw, msg", [
    ({"cross_parameterization": "tensor"}, "cross_parameterization must be one of"),
    ({"low_rank": 0}, "low_rank must be a positive integer"),
    ({"cross_parameterization": "vector", "low_rank": 4}, "needs cross_parameterization='matrix'"),
    ({"model_structure": "serial"}, "model_structure must be one of"),
    ({"cross_num": 0, "dnn_hidden_units": ()}, "leave no network"),
    ({"cross_num": -1}, "cross_num must be an integer >= 0"),
    ({"num_experts": 4}, "it needs low_rank=r"),
    ({"num_experts": 0, "low_rank": 2}, "num_experts must be a positive integer"),
    ({"num_experts": 2, "low_rank": 2, "cross_parameterization": "vector"},
     "needs cross_parameterization='matrix'"),
])
def test_bad_hyperparameters_are_refused(small_synthetic, kw, msg):
    with pytest.raises(ConfigError, match=msg):
        ctrkit.build("dcnv2", small_synthetic[2], **kw)


@pytest.mark.parametrize("kw", [{"model_structure": "stacked"}, {"low_rank": 3},
                                {"low_rank": 3, "num_experts": 4},
                                {"dnn_hidden_units": ()}, {"cross_num": 0}])
def test_variants_learn_the_planted_signal(small_synthetic, kw):
    x, y, features = small_synthetic
    model = ctrkit.build("dcnv2", features, seed=0, init_std=0.1, **kw)
    model.compile("adam", metrics=["auc"], lr=1e-2)
    model.fit(x, y, batch_size=128, epochs=3, verbose=0)
    assert model.evaluate(x, y, batch_size=1000)["auc"] > 0.65


def test_stacked_feeds_the_cross_output_to_the_mlp(small_synthetic):
    features = small_synthetic[2]
    stacked = ctrkit.build("dcnv2", features, model_structure="stacked", dnn_hidden_units=(7,))
    parallel = ctrkit.build("dcnv2", features, dnn_hidden_units=(7,))
    d = stacked.cross.kernels[0].shape[0]
    assert stacked.dnn_linear.in_features == 7 and parallel.dnn_linear.in_features == d + 7
    assert stacked.dnn.linears[0].in_features == d


def test_dcn_is_the_vector_form_and_l2_reg_cross_enters_the_loss(small_synthetic):
    features = small_synthetic[2]
    model = ctrkit.build("dcn", features, l2_reg_cross=0.5, l2_reg_embedding=0.0)
    assert model.cross.parameterization == "vector"
    expected = 0.5 * sum((k ** 2).sum() for k in model.cross.kernels)
    torch.testing.assert_close(model.regularization_loss(model.example_batch()), expected)
    mix = ctrkit.build("dcnv2", features, l2_reg_cross=0.5, l2_reg_embedding=0.0, low_rank=2,
                       num_experts=3)
    c = mix.cross
    expected = 0.5 * sum((w ** 2).sum() for w in list(c.kernels) + list(c.kernels_v)
                         + list(c.kernels_c))
    torch.testing.assert_close(mix.regularization_loss(mix.example_batch()), expected)
