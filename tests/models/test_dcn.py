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
            elif net.low_rank is None:                  # DCN-V2: x0 ⊙ (W x_l + b) + x_l
                v = v0 * (w @ v + b) + v
            else:                                       # low rank: W = U Vᵀ
                v = v0 * (w @ (net.kernels_v[i].t() @ v) + b) + v
        rows.append(v.squeeze(1))
    return torch.stack(rows)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([("vector", None), ("matrix", None), ("matrix", 2), ("matrix", 5)]),
       st.integers(0, 3), st.integers(1, 6), st.integers(1, 9), st.integers(0, 10 ** 6))
def test_cross_network_equals_the_papers_formula_with_gradients(kind, layers, n, d, seed):
    torch.manual_seed(seed)
    net = CrossNetwork(d, layers, kind[0], kind[1]).double()
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


@pytest.mark.parametrize("kw, msg", [
    ({"cross_parameterization": "tensor"}, "cross_parameterization must be one of"),
    ({"low_rank": 0}, "low_rank must be a positive integer"),
    ({"cross_parameterization": "vector", "low_rank": 4}, "needs cross_parameterization='matrix'"),
    ({"model_structure": "serial"}, "model_structure must be one of"),
    ({"cross_num": 0, "dnn_hidden_units": ()}, "leave no network"),
    ({"cross_num": -1}, "cross_num must be an integer >= 0"),
])
def test_bad_hyperparameters_are_refused(small_synthetic, kw, msg):
    with pytest.raises(ConfigError, match=msg):
        ctrkit.build("dcnv2", small_synthetic[2], **kw)


@pytest.mark.parametrize("kw", [{"model_structure": "stacked"}, {"low_rank": 3},
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
