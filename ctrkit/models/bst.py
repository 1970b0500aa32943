"""BST: Behavior Sequence Transformer (Chen et al., DLP-KDD 2019, arXiv 1905.06874)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..features import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, validate_features
from ..layers.activations import create_activation
from ..layers.init import InitSpec, resolve_init
from ..layers.mlp import MLP
from ..registry import LAYERS, MODELS, register_model  # noqa: F401  (MODELS: round-2 name)
from .base import BaseModel
from .din import find_history_pairs, shared_history_table_of


@LAYERS.register("masked_transformer_block")
class TransformerBlock(nn.Module):
    """One transformer layer of BST (the paper's §2.2, the encoder of Vaswani et al.) with a
    key mask:

    ``S' = LayerNorm(S + Dropout(MH(S)))``, ``F = LayerNorm(S' + Dropout(FFN(S')))``,
    ``MH(S) = Concat(head_1..head_h) W^O``, ``head_i = softmax(Q_i K_iᵀ / √d + mask) V_i`` with
    ``Q_i = S W^Q_i`` etc., ``FFN(x) = act(x W_1 + b_1) W_2 + b_2`` (LeakyReLU in the paper).
    Masked keys get weight exactly 0, so whatever sits at a masked position never reaches a
    valid one. Every query row needs at least one valid key.

    Args:
        dim: E, the width of a position's vector; divisible by ``num_heads``.
        num_heads: h.
        ffn_dim: hidden width of the FFN (None: 4E).
        attention_dropout: dropout on the attention weights.
        dropout: dropout on each sub-layer's output before the residual sum.
        ffn_activation: activation of the FFN.
        use_residual, layer_norm: the residual sums and the layer norms (both on by default).
        init: how the linear layers start (see :mod:`ctrkit.layers.init`; None: the model's
            scheme).

    Shapes: ``forward(s (B, T, E), key_mask (B, T) bool) -> (B, T, E)``.
    """

    def __init__(self, dim: int, num_heads: int = 2, ffn_dim: Optional[int] = None,
                 attention_dropout: float = 0.0, dropout: float = 0.0,
                 ffn_activation: Union[str, type] = "leaky_relu", use_residual: bool = True,
                 layer_norm: bool = True, init: InitSpec = None) -> None:
        super().__init__()
        if int(num_heads) < 1 or int(dim) % int(num_heads):
            raise ConfigError(f"num_heads must be a positive divisor of the sequence width "
                              f"{dim} (the candidate/history embedding dims summed), got "
                              f"{num_heads!r}.")
        self.dim, self.heads = int(dim), int(num_heads)
        self.d = self.dim // self.heads
        self.qkv = nn.Linear(self.dim, 3 * self.dim)
        self.out = nn.Linear(self.dim, self.dim)
        ffn = int(ffn_dim) if ffn_dim else 4 * self.dim
        self.ffn1, self.ffn2 = nn.Linear(self.dim, ffn), nn.Linear(ffn, self.dim)
        self.act = create_activation(ffn_activation, ffn)
        self.norm1 = nn.LayerNorm(self.dim) if layer_norm else nn.Identity()
        self.norm2 = nn.LayerNorm(self.dim) if layer_norm else nn.Identity()
        self.attention_dropout = nn.Dropout(attention_dropout)
        self.dropout = nn.Dropout(dropout)
        self.use_residual = bool(use_residual)
        initializer = resolve_init(init)
        for lin in (self.qkv, self.out, self.ffn2):  # no nonlinearity after these
            initializer.output_(lin)
        initializer.interaction_(self.ffn1)

    def attention(self, s: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = s.shape
        q, k, v = self.qkv(s).reshape(b, t, 3, self.heads, self.d).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / self.d ** 0.5            # (B, h, T, T)
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        w = self.attention_dropout(torch.softmax(scores, dim=-1))
        return self.out((w @ v).transpose(1, 2).reshape(b, t, self.dim))

    def forward(self, s: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        a = self.dropout(self.attention(s, key_mask))
        s = self.norm1(s + a if self.use_residual else a)
        f = self.dropout(self.ffn2(self.act(self.ffn1(s))))
        return self.norm2(s + f if self.use_residual else f)


@register_model("bst")
class BST(BaseModel):
    """Behavior Sequence Transformer.

    The sequence ``[candidate, behaviour_1 .. behaviour_L]`` (each position: the candidate's
    or behaviour's embeddings concatenated over the history pairs, as DIN pairs them) plus a
    learned positional embedding goes through ``stacked_transformer_layers`` transformer
    layers whose attention ignores padded positions. The candidate position's output and the
    mean of the valid behaviour positions' outputs join the other embeddings, the pooled other
    sequences and the dense values in an MLP.

    Positions: the paper embeds ``pos(v_i) = t(v_t) − t(v_i)``, the time from behaviour i to
    the recommendation. Without timestamps ctrkit uses the recency rank (the candidate 0, the
    last behaviour 1, the one before 2, ...), which, like the paper's, does not depend on how
    much padding a row carries; the position embedding is added to the item vector.
    Histories are read left-aligned (``length_name``) or, without a length column, as their
    non-zero ids in order.

    Args:
        dnn_feature_columns: all feature declarations.
        history_feature_list: candidate feature names; inferred from ``hist_X`` when None.
        stacked_transformer_layers: number of transformer layers (the paper's b = 1 is best).
        num_heads: attention heads (must divide the concatenated embedding width).
        ffn_dim: hidden width of the position-wise FFN (None: 4 × the width).
        attention_dropout, transformer_dropout: dropout in the transformer layers.
        ffn_activation: the FFN's activation (the paper: LeakyReLU).
        use_position_emb, use_residual, layer_norm: switch those parts off.
        dnn_hidden_units, dnn_activation, dnn_dropout, dnn_use_bn, l2_reg_dnn: the MLP (the
            paper: 1024, 512, 256 with LeakyReLU).
        share_history_embeddings: ``hist_X`` looks up X's table unless its embedding_name
            was set explicitly.
        l2_reg_embedding, embedding_regularizer, init, init_std, seed, task, device: see
            BaseModel.

    Raises:
        ConfigError: no candidate/history pair, or ``num_heads`` not dividing the width.
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 history_feature_list: Optional[Sequence[str]] = None,
                 stacked_transformer_layers: int = 1, num_heads: int = 2,
                 ffn_dim: Optional[int] = None, attention_dropout: float = 0.0,
                 transformer_dropout: float = 0.0,
                 ffn_activation: Union[str, type] = "leaky_relu",
                 use_position_emb: bool = True, use_residual: bool = True,
                 layer_norm: bool = True, dnn_hidden_units: Sequence[int] = (256, 128),
                 dnn_activation: Union[str, type] = "relu", dnn_dropout: float = 0.0,
                 dnn_use_bn: bool = False, l2_reg_dnn: float = 0.0,
                 l2_reg_embedding: float = 1e-6, init_std: Optional[float] = None,
                 seed: Optional[int] = 1024, task: str = "binary", device: Any = "cpu",
                 gpus: Any = None, share_history_embeddings: bool = True,
                 embedding_regularizer: Any = "l2", init: Any = "ctrkit") -> None:
        if gpus is not None:
            raise ConfigError("gpus is not supported; pass device='cuda:N', or launch with "
                              "torchrun for data parallelism.")
        if isinstance(stacked_transformer_layers, bool) or int(stacked_transformer_layers) < 1:
            raise ConfigError(f"stacked_transformer_layers must be a positive integer, got "
                              f"{stacked_transformer_layers!r}.")
        features = validate_features(dnn_feature_columns)
        pairs = find_history_pairs(features, history_feature_list)
        table_of = shared_history_table_of(pairs, share_history_embeddings)
        super().__init__(features, task=task, l2_reg_embedding=l2_reg_embedding,
                         embedding_regularizer=embedding_regularizer, init_std=init_std,
                         seed=seed, device=device, table_of=table_of, init=init)
        self.pairs = pairs
        self.history_feature_list = [x.name for x, _ in pairs]
        paired = {s.name for _, s in pairs}
        self.sparse = self.features_of(SparseFeat)
        self.other_sequences = [f for f in self.features_of(VarLenSparseFeat)
                                if f.name not in paired]
        self.dense = self.features_of(DenseFeat)
        e = sum(x.embedding_dim for x, _ in pairs)
        maxlen = pairs[0][1].maxlen
        self.position = nn.Embedding(maxlen + 1, e) if use_position_emb else None
        if self.position is not None:
            self.initializer.embedding_(self.position.weight)
        self.transformers = nn.ModuleList(
            TransformerBlock(e, num_heads, ffn_dim, attention_dropout, transformer_dropout,
                             ffn_activation, use_residual, layer_norm, self.initializer)
            for _ in range(int(stacked_transformer_layers)))
        dnn_in = (sum(f.embedding_dim for f in self.sparse)
                  + sum(f.embedding_dim for f in self.other_sequences) + 2 * e
                  + sum(f.dimension for f in self.dense))
        self.dnn = MLP(dnn_in, dnn_hidden_units, dnn_activation, dnn_dropout, dnn_use_bn,
                       l2_reg_dnn, self.initializer)
        self.dnn_linear = nn.Linear(self.dnn.output_dim, 1, bias=False)
        self.initializer.output_(self.dnn_linear)

    def sequence_input(self, batch: Dict[str, torch.Tensor], q: torch.Tensor):
        """``(S (B, 1 + T, E), key mask (B, 1 + T))``: the candidate first, then the
        behaviours left-aligned, zero vectors at padded positions, positions added."""
        first = self.pairs[0][1]
        mask = self.sequence_mask(batch, first)
        ids = {s.name: batch[s.name] for _, s in self.pairs}
        if first.length_name is None:  # close the gaps, keep the order
            order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
            ids = {n: v.gather(1, order) for n, v in ids.items()}
            mask = mask.gather(1, order)
        keys = torch.cat([self.embeddings.lookup(n, v) for n, v in ids.items()], dim=-1)
        s = torch.cat([q.unsqueeze(1), keys * mask.unsqueeze(-1).to(keys.dtype)], dim=1)
        key_mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        if self.position is not None:
            t = mask.shape[1]
            lengths = mask.sum(1, keepdim=True)
            rank = (lengths - torch.arange(t, device=mask.device).unsqueeze(0)).clamp_min(0)
            pos = torch.cat([torch.zeros_like(rank[:, :1]), rank * mask], dim=1)
            s = s + self.position(pos) * key_mask.unsqueeze(-1).to(s.dtype)
        return s, key_mask

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,)."""
        emb = dict(zip((f.name for f in self.sparse), self.embed_sparse(batch, self.sparse)))
        q = torch.cat([emb[x.name] for x, _ in self.pairs], dim=-1)
        s, key_mask = self.sequence_input(batch, q)
        for block in self.transformers:
            s = block(s, key_mask)
        hist = key_mask[:, 1:].unsqueeze(-1).to(s.dtype)
        hist_mean = (s[:, 1:] * hist).sum(1) / hist.sum(1).clamp_min(1.0)
        parts = ([emb[f.name] for f in self.sparse]
                 + self.pool_sequences(batch, self.other_sequences) + [s[:, 0], hist_mean]
                 + self.dense_values(batch, self.dense))
        return self.head(self.dnn_linear(self.dnn(torch.cat(parts, dim=-1))).squeeze(-1))
