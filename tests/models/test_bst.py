"""BST's masked transformer block against a plain per-row, per-head loop over the valid
positions only (values and gradients); the model's positions and padding."""
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

import ctrkit
from ctrkit import SparseFeat, VarLenSparseFeat
from ctrkit.errors import ConfigError
from ctrkit.models.bst import TransformerBlock


def _layer_norm(x, norm):
    mu = x.mean()
    var = ((x - mu) ** 2).mean()
    return (x - mu) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def _block_reference(block: TransformerBlock, s: torch.Tensor, mask: torch.Tensor):
    """Per row: drop the masked positions, then the textbook encoder layer position by
    position and head by head. Returns the outputs at the valid positions, row-major."""
    E, h, d = block.dim, block.heads, block.d
    wq, wk, wv = block.qkv.weight.split(E, 0)
    bq, bk, bv = block.qkv.bias.split(E)
    out = []
    for r in range(s.shape[0]):
        x = s[r][mask[r]]                                   # (L, E) valid positions only
        L = x.shape[0]
        rows = []
        for i in range(L):
            heads = []
            for j in range(h):
                c = slice(j * d, (j + 1) * d)
                q = wq[c] @ x[i] + bq[c]
                logits = torch.stack([(wk[c] @ x[k] + bk[c]) @ q / math.sqrt(d) for k in range(L)])
                a = torch.exp(logits - logits.max())
                a = a / a.sum()
                heads.append(sum(a[k] * (wv[c] @ x[k] + bv[c]) for k in range(L)))
            mh = block.out.weight @ torch.cat(heads) + block.out.bias
            s1 = _layer_norm(x[i] + mh, block.norm1)
            f = block.ffn2.weight @ torch.nn.functional.leaky_relu(
                block.ffn1.weight @ s1 + block.ffn1.bias) + block.ffn2.bias
            rows.append(_layer_norm(s1 + f, block.norm2))
        out.extend(rows)
    return torch.stack(out)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.sampled_from([(4, 1), (4, 2), (6, 3)]),
       st.integers(0, 10 ** 6))
def test_transformer_block_equals_the_formula_on_valid_positions(lengths, dims, seed):
    torch.manual_seed(seed)
    E, h = dims
    block = TransformerBlock(E, h, ffn_dim=5).double()
    with torch.no_grad():  # move the layer norms off their identity init
        for n in (block.norm1, block.norm2):
            n.weight.uniform_(0.5, 1.5)
            n.bias.uniform_(-0.5, 0.5)
    T = 5
    s = torch.randn(len(lengths), T, E, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
    mask = mask[:, torch.randperm(T)]  # valid positions anywhere, not only a prefix
    mask[:, 0] = True
    out = block(s, mask)[mask]
    ref = _block_reference(block, s, mask)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    params = [s] + list(block.parameters())
    for a, b in zip(torch.autograd.grad(out, params, g), torch.autograd.grad(ref, params, g)):
        torch.testing.assert_close(a, b)


def _features(length_name="seq_length", T=5):
    S, V = SparseFeat, VarLenSparseFeat
    return [S("user", 20, 4), S("item", 30, 4), S("cate", 6, 4),
            V(S("hist_item", 30, 4), T, length_name=length_name),
            V(S("hist_cate", 6, 4), T, length_name=length_name)]


def _batch(n=7, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, T + 1, (n,), generator=g)
    valid = torch.arange(T)[None] < lengths[:, None]
    return {"user": torch.randint(0, 20, (n,), generator=g),
            "item": torch.randint(1, 30, (n,), generator=g),
            "cate": torch.randint(1, 6, (n,), generator=g),
            "hist_item": torch.randint(1, 30, (n, T), generator=g) * valid,
            "hist_cate": torch.randint(1, 6, (n, T), generator=g) * valid,
            "seq_length": lengths}


def test_positions_are_recency_ranks_and_padding_gets_none():
    model = ctrkit.build("bst", _features(), init_std=0.3)
    batch = {"user": torch.tensor([1]), "item": torch.tensor([2]), "cate": torch.tensor([1]),
             "hist_item": torch.tensor([[5, 6, 7, 0, 0]]), "hist_cate": torch.tensor([[1, 2, 3, 0, 0]]),
             "seq_length": torch.tensor([3])}
    q = torch.zeros(1, 8)
    s, key_mask = model.sequence_input(batch, q)
    assert key_mask.tolist() == [[True, True, True, True, False, False]]
    pos = model.position.weight
    keys = torch.cat([model.embeddings.lookup("hist_cate", batch["hist_cate"]),
                      model.embeddings.lookup("hist_item", batch["hist_item"])], -1)[0]
    torch.testing.assert_close(s[0, 0], pos[0])                   # candidate (q = 0): rank 0
    torch.testing.assert_close(s[0, 3], keys[2] + pos[1])         # the last behaviour: rank 1
    torch.testing.assert_close(s[0, 1], keys[0] + pos[3])
    assert not s[0, 4:].any()                                     # padding: nothing at all


def test_longer_padding_does_not_change_the_output():
    short = ctrkit.build("bst", _features(T=5), seed=2, init_std=0.3)
    long = ctrkit.build("bst", _features(T=9), seed=2, init_std=0.3)
    state = short.state_dict()
    state["position.weight"] = torch.cat([state["position.weight"],
                                          long.state_dict()["position.weight"][6:]])
    long.load_state_dict(state)
    batch = _batch()
    wide = dict(batch)
    for k in ("hist_item", "hist_cate"):
        wide[k] = torch.cat([batch[k], torch.zeros(7, 4, dtype=torch.long)], 1)
    short.eval(), long.eval()
    torch.testing.assert_close(long(wide), short(batch))


def test_bad_heads_are_refused():
    with pytest.raises(ConfigError, match="num_heads must be a positive divisor of .* 8"):
        ctrkit.build("bst", _features(), num_heads=3)
    with pytest.raises(ConfigError, match="stacked_transformer_layers must be a positive"):
        ctrkit.build("bst", _features(), stacked_transformer_layers=0)


@pytest.mark.parametrize("kw", [{"stacked_transformer_layers": 2, "num_heads": 4},
                                {"use_position_emb": False, "layer_norm": False}])
def test_variants_learn_the_planted_signal(small_synthetic, kw):
    x, y, features = small_synthetic
    model = ctrkit.build("bst", features, seed=0, **kw)  # default init and lr (issue 18)
    model.compile("adam", metrics=["auc"])
    model.fit(x, y, batch_size=128, epochs=3, verbose=0)
    assert model.evaluate(x, y, batch_size=1000)["auc"] > 0.65
