import pytest
import torch
from hypothesis import given, settings, strategies as st

from ctrkit import SparseFeat, VarLenSparseFeat
from ctrkit.errors import ConfigError
from ctrkit.layers import MLP, EmbeddingTables, PredictionHead, create_activation, masked_pool
from ctrkit.models.din import Dice


@settings(max_examples=30, deadline=None)
@given(lens=st.lists(st.integers(0, 5), min_size=1, max_size=6), comb=st.sampled_from(["mean", "sum", "max"]))
def test_masked_pool_ignores_padding(lens, comb):
    torch.manual_seed(len(lens))
    emb = torch.randn(len(lens), 5, 3)
    mask = torch.arange(5)[None] < torch.tensor(lens)[:, None]
    out = masked_pool(emb, mask, comb)
    noisy = torch.where(mask[..., None], emb, torch.randn_like(emb) * 100)
    torch.testing.assert_close(masked_pool(noisy, mask, comb), out)
    for i, n in enumerate(lens):
        ref = {"mean": emb[i, :n].mean(0), "sum": emb[i, :n].sum(0),
               "max": emb[i, :n].amax(0)}[comb] if n else torch.zeros(3)
        torch.testing.assert_close(out[i], ref)


def test_embedding_tables_share_by_name_and_reject_dim_conflicts():
    f = [SparseFeat("item", 5, 3), VarLenSparseFeat(SparseFeat("hist", 5, 3, embedding_name="item"), 2)]
    t = EmbeddingTables(f)
    assert list(t.tables) == ["item"] and t.table("hist") is t.table("item")
    assert t.lookup("hist", torch.zeros(2, 2, dtype=torch.long)).shape == (2, 2, 3)
    with pytest.raises(ConfigError, match="share embedding table 'item' but have embedding_dim 3 vs 4"):
        EmbeddingTables([SparseFeat("item", 5, 3), SparseFeat("b", 5, 4)], table_of={"b": "item"})


def test_activation_factory_names_classes_and_instances():
    assert isinstance(create_activation("ReLU", 4), torch.nn.ReLU)
    assert isinstance(create_activation("dice", 4), Dice) and create_activation("dice", 4).dim == 4
    assert isinstance(create_activation(torch.nn.Tanh, 4), torch.nn.Tanh)
    assert isinstance(create_activation(Dice, 7), Dice) and create_activation(Dice, 7).dim == 7
    inst = torch.nn.ELU()
    assert create_activation(inst, 3) is inst
    assert isinstance(create_activation("linear", 2), torch.nn.Identity)


def test_mlp_shapes_penalty_and_validation():
    m = MLP(6, (8, 4), activation="prelu", dropout=0.2, use_bn=True, l2_reg=0.5)
    assert m(torch.randn(10, 6)).shape == (10, 4) and m.output_dim == 4
    expected = 0.5 * sum((lin.weight ** 2).sum() for lin in m.linears)
    torch.testing.assert_close(m.l2_penalty(), expected)
    assert MLP(2, (3,)).l2_penalty().item() == 0.0
    with pytest.raises(ConfigError, match="dropout must lie in \\[0, 1\\), got 1.5"):
        MLP(2, (3,), dropout=1.5)
    with pytest.raises(ConfigError, match="hidden_units must be a non-empty list"):
        MLP(2, ())


def test_prediction_head():
    h = PredictionHead("binary")
    z = torch.tensor([-2.0, 0.0, 3.0])
    torch.testing.assert_close(h.output(h(z)), torch.sigmoid(z))
    r = PredictionHead("regression")
    torch.testing.assert_close(r.output(r(z)), z)
    with pytest.raises(ConfigError, match="task must be one of \\['binary', 'regression'\\], got 'multiclass'"):
        PredictionHead("multiclass")
