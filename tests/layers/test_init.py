"""Initialisation schemes (ctrkit/layers/init.py): what each role gets, and how models pick it."""
import math

import pytest
import torch
from torch import nn

import ctrkit
from ctrkit.errors import ConfigError, UnknownNameError
from ctrkit.layers import MLP, EmbeddingTables
from ctrkit.layers.init import (INITIALIZERS, CtrkitInit, DeepCTRInit, Initializer,
                                create_initializer, current_initializer, resolve_init)
from ctrkit.layers.linear import LinearLogit
from ctrkit.models.base import BaseModel
from ctrkit.registry import MODELS


def std(t):
    return float(t.detach().double().std())


def test_registered_schemes_and_unknown_name():
    assert {"ctrkit", "deepctr"} <= set(INITIALIZERS.list())
    assert isinstance(create_initializer(None), CtrkitInit)
    assert isinstance(create_initializer("deepctr"), DeepCTRInit)
    with pytest.raises(UnknownNameError, match="deepctr"):
        create_initializer("deepct")


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "0.1", True])
def test_invalid_init_std_is_refused(bad):
    with pytest.raises(ConfigError, match="init_std"):
        create_initializer("ctrkit", bad)


def test_instance_with_init_std_is_ambiguous():
    with pytest.raises(ConfigError, match="set the std on the instance"):
        create_initializer(CtrkitInit(0.1), 0.2)


def test_ctrkit_scheme_roles():
    torch.manual_seed(0)
    init = CtrkitInit()
    hidden, out = nn.Linear(400, 300), nn.Linear(300, 1)
    init.hidden_(hidden)
    init.output_(out)
    # He-uniform: U(+-sqrt(6 / fan_in)), std sqrt(2 / fan_in); Glorot: U(+-sqrt(6 / (in + out)))
    assert std(hidden.weight) == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert float(hidden.weight.detach().abs().max()) <= math.sqrt(6 / 400) * (1 + 1e-6)
    assert float(out.weight.detach().abs().max()) <= math.sqrt(6 / 301) * (1 + 1e-6)
    assert std(out.weight) == pytest.approx(math.sqrt(2 / 301), rel=0.15)
    assert float(hidden.bias.detach().abs().sum()) == 0.0 and float(out.bias.detach().abs().sum()) == 0.0
    emb = torch.empty(5000, 8)
    init.embedding_(emb)
    assert std(emb) == pytest.approx(0.05, rel=0.03)
    wide = torch.ones(10, 1)
    init.linear_(wide)
    assert float(wide.abs().sum()) == 0.0


def test_deepctr_scheme_roles_keep_torch_defaults_where_deepctr_does():
    torch.manual_seed(0)
    init = DeepCTRInit()
    assert init.init_std == 1e-4
    hidden = nn.Linear(400, 300)
    bias_before = hidden.bias.detach().clone()
    init.hidden_(hidden)
    assert std(hidden.weight) == pytest.approx(1e-4, rel=0.02)
    assert torch.equal(hidden.bias, bias_before)  # torch's default bias, as DeepCTR
    out = nn.Linear(300, 1)
    before = out.weight.detach().clone()
    init.output_(out)
    assert torch.equal(out.weight, before)
    emb, wide = torch.empty(5000, 8), torch.empty(5000, 1)
    init.embedding_(emb)
    init.linear_(wide)
    assert std(emb) == pytest.approx(1e-4, rel=0.03) and std(wide) == pytest.approx(1e-4, rel=0.05)


def _gru_blocks_follow_the_ctrkit_scheme(w_i, w_h, biases, fan_in, h):
    for block in w_i.detach().chunk(3, 0):          # Glorot-uniform per gate: U(+-sqrt(6/(I+H)))
        assert float(block.abs().max()) <= math.sqrt(6 / (fan_in + h)) * (1 + 1e-6)
        assert std(block) > 0.3 * math.sqrt(2 / (fan_in + h))
    for block in w_h.detach().chunk(3, 0):          # orthogonal per gate
        torch.testing.assert_close(block @ block.t(), torch.eye(h), atol=1e-5, rtol=0)
    for b in biases:
        assert float(b.detach().abs().sum()) == 0.0


def test_recurrent_role_is_kerass_gru_init_per_gate_in_ctrkit_and_torchs_in_deepctr():
    torch.manual_seed(0)
    gru = nn.GRU(6, 5, batch_first=True)
    CtrkitInit().recurrent_(gru)
    _gru_blocks_follow_the_ctrkit_scheme(gru.weight_ih_l0, gru.weight_hh_l0,
                                         [gru.bias_ih_l0, gru.bias_hh_l0], 6, 5)
    from ctrkit.models.dien.gru import AttentionalGRU
    cell = AttentionalGRU(6, 5)
    CtrkitInit().recurrent_(cell)
    _gru_blocks_follow_the_ctrkit_scheme(cell.weight_i, cell.weight_h, [cell.bias], 6, 5)
    # DeepCTR-Torch's GRUs keep torch's initialisation: nothing changes
    gru2 = nn.GRU(6, 5)
    before = {k: v.detach().clone() for k, v in gru2.state_dict().items()}
    DeepCTRInit().recurrent_(gru2)
    assert all(torch.equal(before[k], v) for k, v in gru2.state_dict().items())
    assert float(gru2.bias_ih_l0.detach().abs().sum()) > 0


def test_recurrent_role_refuses_parameters_it_does_not_know_and_bad_gate_counts():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight_i = nn.Parameter(torch.zeros(6, 2))
            self.gain = nn.Parameter(torch.zeros(2))
    with pytest.raises(ConfigError, match="parameter 'gain' of Odd is not an input weight"):
        CtrkitInit().recurrent_(Odd())
    with pytest.raises(ConfigError, match="parameter 'gain' of Odd"):
        DeepCTRInit().recurrent_(Odd())          # checked in every scheme
    with pytest.raises(ConfigError, match="'weight_ih_l0' of GRU has 15 rows, not a multiple "
                                          "of gates=4"):
        CtrkitInit().recurrent_(nn.GRU(3, 5), gates=4)


@pytest.mark.parametrize("gru_type", ["AUGRU", "GRU"])
def test_dien_recurrent_layers_follow_the_models_scheme(gru_type, small_synthetic):
    _, _, features = small_synthetic
    model = ctrkit.build("dien", features, gru_type=gru_type, seed=0)
    h = model.interest_dim
    for layer in (model.extractor, model.evolution):
        params = dict(layer.named_parameters(recurse=False))
        w_i = next(v for k, v in params.items() if k.startswith("weight_i"))
        w_h = next(v for k, v in params.items() if k.startswith("weight_h"))
        biases = [v for k, v in params.items() if k.startswith("bias")]
        _gru_blocks_follow_the_ctrkit_scheme(w_i, w_h, biases, h, h)
    legacy = ctrkit.build("dien", features, gru_type=gru_type, seed=0, init="deepctr")
    assert float(legacy.extractor.bias_ih_l0.detach().abs().sum()) > 0   # torch's default


def test_layer_init_argument_forms():
    torch.manual_seed(0)
    assert std(MLP(400, [300], init=0.3).linears[0].weight) == pytest.approx(0.3, rel=0.02)
    assert std(MLP(400, [300], init="deepctr").linears[0].weight) == pytest.approx(1e-4, rel=0.02)
    assert std(MLP(400, [300]).linears[0].weight) == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    feats = [ctrkit.SparseFeat("a", 5000, 8)]
    assert std(EmbeddingTables(feats, init=CtrkitInit(0.2)).tables["a"].weight) == pytest.approx(
        0.2, rel=0.03)
    assert float(LinearLogit(feats).tables["a"].weight.detach().abs().sum()) == 0.0
    assert isinstance(resolve_init(None), CtrkitInit)


@pytest.mark.parametrize("name", ctrkit.list_models(multitask=False))
def test_models_take_init_and_init_std(name, small_synthetic):
    _, _, features = small_synthetic
    default = ctrkit.build(name, features)
    assert isinstance(default.initializer, CtrkitInit) and default.init_std == 0.05
    assert std(default.embeddings.tables["item"].weight) == pytest.approx(0.05, rel=0.15)
    # DeepCTR's meaning of init_std: the std of the embeddings (dense layers keep the scheme)
    wider = ctrkit.build(name, features, init_std=0.2)
    assert std(wider.embeddings.tables["item"].weight) == pytest.approx(0.2, rel=0.15)
    ported = ctrkit.build(name, features, init="deepctr")
    assert isinstance(ported.initializer, DeepCTRInit) and ported.init_std == 1e-4
    assert std(ported.embeddings.tables["item"].weight) == pytest.approx(1e-4, rel=0.15)
    assert std(ported.dnn.linears[0].weight) == pytest.approx(1e-4, rel=0.1)
    assert ported.hparams["init"] == "deepctr" and default.hparams["init_std"] is None
    with pytest.raises(ConfigError, match="init_std"):
        ctrkit.build(name, features, init_std=-0.1)


def test_deepctr_scheme_reproduces_the_previous_din_weights(small_synthetic):
    """init='deepctr' is the scheme ctrkit used before issue 18 for DIN, parameter for
    parameter: embeddings and hidden weights N(0, 1e-4), biases and output layers torch's."""
    _, _, features = small_synthetic
    model = ctrkit.build("din", features, init="deepctr", seed=3)
    sd = model.state_dict()
    for name, p in sd.items():
        if name.endswith("running_mean") or name.endswith("running_var") or "alpha" in name:
            continue
        if name.startswith("embeddings.") or (".linears." in name and name.endswith("weight")):
            assert std(p) < 3e-4, name
        elif name.endswith("weight") or name.endswith("bias") and "head" not in name:
            assert float(p.detach().abs().max()) > 1e-2, name  # torch's default (U(+-1/sqrt(fan_in)))


def test_saved_models_keep_their_scheme(tmp_path, small_synthetic):
    _, _, features = small_synthetic
    model = ctrkit.build("din", features, init="deepctr", init_std=1e-3)
    model.save(tmp_path / "m.ctrkit")
    back = ctrkit.load(tmp_path / "m.ctrkit")
    assert isinstance(back.initializer, DeepCTRInit) and back.init_std == 1e-3
    for (n, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), n


def test_a_plugin_model_gets_the_scheme_for_free(small_synthetic):
    """Layers a plug-in builds without an init argument follow the model's scheme; after the
    model is built, a standalone layer is back to the default."""
    _, _, features = small_synthetic

    class Plain(BaseModel):
        def __init__(self, features, init="ctrkit", init_std=None, seed=0):
            super().__init__(features, init=init, init_std=init_std, seed=seed)
            self.mlp = MLP(8, [300])
            self.out = nn.Linear(300, 1)
            self.initializer.output_(self.out)

        def forward(self, batch):
            return self.head(self.out(self.mlp(
                self.embeddings.lookup("item", batch["item"]).repeat(1, 2))).squeeze(-1))

    with MODELS.scope():
        ctrkit.register_model("plain")(Plain)
        ported = ctrkit.build("plain", features, init="deepctr")
        assert std(ported.mlp.linears[0].weight) == pytest.approx(1e-4, rel=0.05)
        assert isinstance(current_initializer(), CtrkitInit)  # no leak after the build
        default = ctrkit.build("plain", features)
        assert std(default.mlp.linears[0].weight) == pytest.approx(math.sqrt(2 / 8), rel=0.1)
        assert float(default.out.bias.detach()) == 0.0


def test_custom_initializer_instance(small_synthetic):
    _, _, features = small_synthetic

    class Zeros(Initializer):
        name = "zeros"

        def linear_(self, w):
            nn.init.zeros_(w)

        def hidden_(self, layer):
            nn.init.zeros_(layer.weight)

        def output_(self, layer):
            nn.init.zeros_(layer.weight)

    model = ctrkit.build("base", features, init=Zeros(0.3))
    assert float(model.dnn.linears[0].weight.detach().abs().sum()) == 0.0
    assert std(model.embeddings.tables["item"].weight) == pytest.approx(0.3, rel=0.15)
