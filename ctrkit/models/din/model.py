"""DIN: Deep Interest Network (Zhou et al., KDD 2018, arXiv 1706.06978)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ...errors import ConfigError
from ...features import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, validate_features
from ...layers.frozen import frozen_weights  # noqa: F401  (round-2 name)
from ...layers.mlp import MLP
from ...layers.tracing import is_tracing
from ...registry import MODELS, register_model  # noqa: F401  (MODELS: round-2 name)
from ..base import BaseModel
from .attention import AttentionPooling


def find_history_pairs(features: Sequence[Feature],
                       history_feature_list: Optional[Sequence[str]] = None
                       ) -> List[Tuple[SparseFeat, VarLenSparseFeat]]:
    """Pair each candidate feature X with its behaviour sequence, by name.

    The sequence of X is ``hist_X`` or, failing that, the one sequence declared with X's
    ``embedding_name``. Without ``history_feature_list`` every SparseFeat that has such a
    sequence is a candidate. Pairs come back sorted by candidate name, so the order of the
    feature list never matters.

    Raises:
        ConfigError: a named candidate is not a SparseFeat or has no sequence, a pair's
            embedding dims differ, or no pair exists at all.

    Example:
        >>> from ctrkit import SparseFeat, VarLenSparseFeat
        >>> features = [
        ...     VarLenSparseFeat(SparseFeat("hist_cate", 5, 4), 3, length_name="n"),
        ...     SparseFeat("item", 9, 4), SparseFeat("cate", 5, 4),
        ...     VarLenSparseFeat(SparseFeat("hist_item", 9, 4), 3, length_name="n")]
        >>> [(x.name, s.name) for x, s in find_history_pairs(features)]   # by name, not order
        [('cate', 'hist_cate'), ('item', 'hist_item')]
    """
    by_name = {f.name: f for f in features}
    seqs = [f for f in features if isinstance(f, VarLenSparseFeat)]

    def sequence_for(x: SparseFeat) -> Optional[VarLenSparseFeat]:
        hist = by_name.get("hist_" + x.name)
        if isinstance(hist, VarLenSparseFeat):
            return hist
        same = [s for s in seqs if s.embedding_name == x.embedding_name]
        return same[0] if len(same) == 1 else None

    if history_feature_list is None:
        cands = [f for f in features if type(f) is SparseFeat and sequence_for(f) is not None]
    else:
        if isinstance(history_feature_list, str):
            history_feature_list = [history_feature_list]
        cands = []
        for name in history_feature_list:
            f = by_name.get(name)
            if type(f) is not SparseFeat:
                raise ConfigError(
                    f"history_feature_list names '{name}', which is "
                    f"{'not a declared feature' if f is None else 'not a SparseFeat'}; it must "
                    f"name candidate SparseFeats such as {[g.name for g in features if type(g) is SparseFeat]}.")
            if sequence_for(f) is None:
                raise ConfigError(
                    f"history_feature_list names '{name}' but no behaviour sequence matches it: "
                    f"declare VarLenSparseFeat(SparseFeat('hist_{name}', ...), maxlen) or a "
                    f"sequence with embedding_name='{f.embedding_name}'.")
            cands.append(f)
    pairs = sorted(((x, sequence_for(x)) for x in cands), key=lambda p: p[0].name)
    if not pairs:
        raise ConfigError(
            "DIN found no (candidate, behaviour sequence) pair: declare a VarLenSparseFeat "
            "named 'hist_<candidate>' (e.g. 'hist_item' for 'item'), or pass "
            "history_feature_list=[...].")
    used = [s.name for _, s in pairs]
    if len(set(used)) != len(used):
        raise ConfigError(f"Two candidates were paired with the same sequence ({used}); name "
                          f"the pairs with hist_<candidate> or history_feature_list.")
    for x, s in pairs:
        if x.embedding_dim != s.embedding_dim:
            raise ConfigError(
                f"DIN pairs candidate '{x.name}' (embedding_dim {x.embedding_dim}) with history "
                f"'{s.name}' (embedding_dim {s.embedding_dim}); attention needs equal dims.")
    first = pairs[0][1]
    for _, s in pairs[1:]:
        if (s.maxlen, s.length_name) != (first.maxlen, first.length_name):
            raise ConfigError(
                f"DIN attends over all history sequences together, so they need one maxlen and "
                f"one length_name: '{first.name}' has {first.maxlen}/{first.length_name!r}, "
                f"'{s.name}' has {s.maxlen}/{s.length_name!r}.")
    return pairs


def shared_history_table_of(pairs: Sequence[Tuple[SparseFeat, VarLenSparseFeat]],
                            share: bool = True) -> Dict[str, str]:
    """``table_of`` that makes each paired sequence look up its candidate's table.

    A sequence whose ``embedding_name`` was set explicitly keeps its own table; ``share=False``
    (``share_history_embeddings=False``) gives every sequence its own table.

    Example:
        >>> from ctrkit import SparseFeat, VarLenSparseFeat
        >>> item = SparseFeat("item", 10)
        >>> hist = VarLenSparseFeat(SparseFeat("hist_item", 10), 4)
        >>> shared_history_table_of([(item, hist)])
        {'hist_item': 'item'}
    """
    if not share:
        return {}
    return {s.name: x.embedding_name for x, s in pairs if not s.embedding_name_given}


@register_model("din")
class DIN(BaseModel):
    """Deep Interest Network.

    The candidate's embeddings (concatenated over the history pairs) attend over the user's
    behaviour sequence with a local activation unit; the pooled interest vector joins the other
    embeddings, pooled sequences and dense values in an MLP.

    Args:
        dnn_feature_columns: all feature declarations (DeepCTR's name for them).
        history_feature_list: candidate feature names (``['item', 'item_gender']``); inferred
            from ``hist_X`` or a shared ``embedding_name`` when None. Pairs are matched by name.
        dnn_hidden_units: widths of the top MLP's hidden layers.
        dnn_activation: the MLP's activation (a registered name or an ``nn.Module`` class).
        dnn_dropout: dropout rate after each hidden layer.
        dnn_use_bn: batch-normalise each hidden layer's pre-activation.
        l2_reg_dnn: L2 strength on the MLP's weights.
        att_hidden_size: hidden widths of the local activation unit's MLP.
        att_activation: the unit's activation (default Dice).
        att_weight_normalization: how attention scores pool the behaviours (see
            :func:`~ctrkit.models.din.attention.pooling_mode`). Default ``"softmax+count"``:
            the softmax-pooled interest plus ``log1p`` of the summed sigmoid scores, a soft
            count of matching behaviours (docs/defaults.md says why). False: raw scores (the
            paper, DeepCTR-Torch's default); True: softmax only (DeepCTR's meaning);
            ``"sigmoid"``, ``"softmax+sum"``.
        share_history_embeddings: a history sequence whose ``embedding_name`` was not set
            explicitly looks up its candidate's table (the paper's shared goods embeddings);
            False keeps DeepCTR's separate tables.
        fused_attention: evaluate the unit's first layer with the exact split-weight identity
            (False: the plain concat; same function, more FLOPs).
        packed_lookup: the packed path: embed and score only the valid history positions, each
            table once per batch (False: the dense path, every position embedded and scored and
            padding masked, Dice's statistics from the valid ones; the same function, slower).
        l2_reg_embedding: L2 strength on the embeddings (MBA's λ with ``embedding_regularizer='mba'``).
        embedding_regularizer: ``'l2'`` (whole table, every step), ``'mba'`` (mini-batch aware)
            or a :class:`~ctrkit.regularizers.Regularizer`.
        init: initialisation scheme (``'ctrkit'``, default, or ``'deepctr'``); see
            :mod:`ctrkit.layers.init` and docs/defaults.md.
        init_std: std of the embeddings' normal initialisation (DeepCTR's meaning);
            None: the scheme's default (0.05 for ``'ctrkit'``, 1e-4 for ``'deepctr'``).
        seed: seeds construction and training (without touching the global RNG).
        task: ``'binary'`` or ``'regression'``.
        device: where the model lives.
        gpus: accepted for DeepCTR compatibility; must be None (see the README on scaling out).

    Example:
        >>> import ctrkit
        >>> from ctrkit.datasets import make_synthetic
        >>> x, y, features = make_synthetic(n_rows=200, maxlen=5, embedding_dim=4, seed=0)
        >>> model = ctrkit.build("din", features, att_weight_normalization=True)
        >>> [(q.name, s.name) for q, s in model.pairs]        # inferred from hist_X <-> X
        [('cate', 'hist_cate'), ('item', 'hist_item')]
        >>> model.compile("adam", metrics=["auc"])
        >>> _ = model.fit(x, y, batch_size=50, verbose=0)
        >>> w = model.explain(x)                               # (N, T) attention weights
        >>> w.shape, bool((w[x["hist_item"] == 0] == 0).all())  # exactly 0 on padding
        ((200, 5), True)
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 history_feature_list: Optional[Sequence[str]] = None,
                 dnn_use_bn: bool = False, dnn_hidden_units: Sequence[int] = (256, 128),
                 dnn_activation: Union[str, type] = "relu",
                 att_hidden_size: Sequence[int] = (64, 16),
                 att_activation: Union[str, type] = "dice",
                 att_weight_normalization: Union[bool, str] = "softmax+count", l2_reg_dnn: float = 0.0,
                 l2_reg_embedding: float = 1e-6, dnn_dropout: float = 0.0,
                 init_std: Optional[float] = None, seed: Optional[int] = 1024, task: str = "binary",
                 device: Any = "cpu", gpus: Any = None,
                 share_history_embeddings: bool = True, fused_attention: bool = True,
                 embedding_regularizer: Any = "l2", packed_lookup: bool = True,
                 init: Any = "ctrkit") -> None:
        if gpus is not None:
            raise ConfigError("gpus is not supported; pass device='cuda:N', or launch with "
                              "torchrun for data parallelism.")
        features = validate_features(dnn_feature_columns)
        pairs = find_history_pairs(features, history_feature_list)
        table_of = shared_history_table_of(pairs, share_history_embeddings)
        super().__init__(features, task=task, l2_reg_embedding=l2_reg_embedding,
                         embedding_regularizer=embedding_regularizer, init_std=init_std,
                         seed=seed, device=device, table_of=table_of, init=init)
        self.pairs = pairs
        self.packed_lookup = bool(packed_lookup)
        self.history_feature_list = [x.name for x, _ in pairs]
        paired = {s.name for _, s in pairs}
        self.sparse = self.features_of(SparseFeat)
        self.other_sequences = [f for f in self.features_of(VarLenSparseFeat)
                                if f.name not in paired]
        self.dense = self.features_of(DenseFeat)
        att_dim = sum(x.embedding_dim for x, _ in pairs)
        self.attention = AttentionPooling(att_dim, att_hidden_size, att_activation,
                                          att_weight_normalization, init=self.initializer,
                                          fused=fused_attention)
        dnn_in = (sum(f.embedding_dim for f in self.sparse)
                  + sum(f.embedding_dim for f in self.other_sequences)
                  + self.attention.output_dim + sum(f.dimension for f in self.dense))
        self.dnn = MLP(dnn_in, dnn_hidden_units, dnn_activation, dnn_dropout, dnn_use_bn,
                       l2_reg_dnn, self.initializer)
        self.dnn_linear = nn.Linear(self.dnn.output_dim, 1, bias=False)
        self.initializer.output_(self.dnn_linear)

    def _lookup(self, wanted: List[Tuple[str, torch.Tensor]]) -> List[torch.Tensor]:
        """Embeddings of (feature, ids) pairs, one lookup per table (see
        :meth:`~ctrkit.layers.embedding.EmbeddingTables.lookup_many`)."""
        return self.embeddings.lookup_many(wanted)

    def _embed_packed(self, batch: Dict[str, torch.Tensor], with_sparse: bool = True):
        """Candidate embeddings and the VALID behaviours only: the (B, T) history is packed to
        its M valid positions before the lookup, so padding is never embedded.

        Returns (sparse embeddings by name, q (B, E_att), keys (M, E_att), rows, cols, T).
        """
        first = self.pairs[0][1]
        ids0 = batch[first.name]
        t = ids0.shape[1]
        # flat (row-major) positions of the valid entries: 1-D gathers beat [rows, cols]
        flat = self.sequence_mask(batch, first).reshape(-1).nonzero().squeeze(1)
        rows = torch.div(flat, t, rounding_mode="floor")
        cols = flat - rows * t
        cands = [x.name for x, _ in self.pairs]
        sparse = [f.name for f in self.sparse] if with_sparse else cands
        wanted = ([(name, batch[name]) for name in sparse]
                  + [(s.name, batch[s.name].reshape(-1).index_select(0, flat))
                     for _, s in self.pairs])
        embs = self._lookup(wanted)
        emb = dict(zip(sparse, embs[:len(sparse)]))
        keys = embs[len(sparse):]
        q = torch.cat([emb[name] for name in cands], dim=-1)
        k_valid = keys[0] if len(keys) == 1 else torch.cat(keys, dim=-1)
        return emb, q, k_valid, rows, cols, t

    def _attend(self, batch: Dict[str, torch.Tensor], emb: Dict[str, torch.Tensor],
                return_weights: bool = False):
        """The dense path: embed the whole (B, T) history, score every position, mask padding
        (export, ``packed_lookup=False``, and the reference the tests compare against)."""
        q = torch.cat([emb[x.name] for x, _ in self.pairs], dim=-1)
        keys = torch.cat([self.embeddings.lookup(s.name, batch[s.name]) for _, s in self.pairs],
                         dim=-1)
        mask = self.sequence_mask(batch, self.pairs[0][1])
        return self.attention.pool_dense(q, keys, mask, return_weights=return_weights)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,).

        The one place DIN's attention path is chosen: packed (only the valid behaviours are
        embedded and scored) for training and inference, dense (every position scored, padding
        masked, static shapes) while a graph is captured for export.
        """
        if self.packed_lookup and not is_tracing():
            emb, q, k_valid, rows, cols, t = self._embed_packed(batch)
            interest = self.attention.pool_packed(q, k_valid, rows, cols, t)
        else:
            emb = dict(zip((f.name for f in self.sparse), self.embed_sparse(batch, self.sparse)))
            interest = self._attend(batch, emb)
        parts = ([emb[f.name] for f in self.sparse] + self.pool_sequences(batch, self.other_sequences)
                 + [interest] + self.dense_values(batch, self.dense))
        h = self.dnn(torch.cat(parts, dim=-1))
        return self.head(self.dnn_linear(h).squeeze(-1))

    def attention_weights(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """:meth:`explain`'s hook: the attention weight of every history position of a batch,
        (B, T), through the packed path training and prediction use.

        Padded positions (and rows without history) are exactly 0. Weights are the unit's raw
        scores with ``att_weight_normalization=False``, their sigmoid with ``"sigmoid"``, and
        the softmax weights (each row with history sums to 1) with True or ``"softmax…"``.
        ``explain`` runs it in eval mode without autograd, under the same thread guard as
        ``predict``, so a row's weights do not depend on its batch.
        """
        _, q, k_valid, rows, pos, t = self._embed_packed(batch, with_sparse=False)
        return self.attention.pool_packed(q, k_valid, rows, pos, t, return_weights=True)[1]
