"""DIEN: Deep Interest Evolution Network (Zhou et al., AAAI 2019, arXiv 1809.03672)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ...errors import ConfigError
from ...features import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, validate_features
from ...layers.mlp import MLP
from ...layers.tracing import is_tracing
from ...registry import LAYERS, register_model
from ..base import BaseModel
from ..din import (find_history_pairs, masked_softmax, segment_softmax,
                   shared_history_table_of)
from .gru import (AttentionalGRU, Packed, check_gru_type, gru_packed, last_valid,
                  pack_positions)


@register_model("dien")
class DIEN(BaseModel):
    """Deep Interest Evolution Network.

    The behaviour sequence (the ``hist_X`` sequences of the candidates, concatenated per
    position) runs through the **interest extractor** GRU; its state ``h_t`` is trained by
    the **auxiliary loss** to tell the next behaviour ``e_{t+1}`` from a negative one. The
    **interest evolving** layer then runs a second recurrence over the states, steered by the
    attention of the candidate on each state (DIN's local activation unit, taken from the
    layer registry): AUGRU by default, or AGRU, AIGRU (attention scales the inputs) or GRU
    (plain GRU, then attention pooling of its states). Its final state, the candidate and user
    embeddings, the other sequences (pooled) and the dense values go into an MLP.

    Only valid positions are embedded and run: the extractor and the evolving layer consume a
    packed time-major layout of the valid positions (rows sorted by length), so padding costs
    nothing and cannot influence anything. Under ``export`` (tracing) the same function runs
    over all ``maxlen`` steps with masked updates, so the graph serves any batch.

    Negative behaviours: declare ``neg_hist_X`` for every ``hist_X`` (as in DeepCTR; they look
    up the same table as ``hist_X``) or declare none, and each valid next behaviour gets as
    negative another valid behaviour drawn uniformly from the same batch (all its features
    together, so item and category stay consistent; drawn from the model's seeded generator
    stream in ``fit``).

    Args:
        dnn_feature_columns: all feature declarations.
        history_feature_list: candidate feature names; inferred from ``hist_X`` when None.
        gru_type: ``'AUGRU'`` (the paper's choice, default), ``'AGRU'``, ``'AIGRU'`` or
            ``'GRU'`` (DeepCTR's default).
        use_negsampling: train the auxiliary loss (the paper's model; DeepCTR's default is
            False). False with ``neg_hist_`` features declared is refused.
        alpha: weight of the auxiliary loss (added with ``add_auxiliary_loss``).
        aux_hidden_units: ``()`` (default): the paper's inner product ``σ(h_t · e)``;
            hidden widths give an auxiliary network over ``[h_t, e]`` with sigmoid
            activations, as the official code and DeepCTR ((100, 50)). On the synthetic
            benchmark data that network stayed at chance (aux loss ln 2) and DIEN with it
            did not learn in 6 epochs, while the inner product did (docs/models/dien.md).
        use_bn, dnn_hidden_units, dnn_activation, dnn_dropout, l2_reg_dnn: the top MLP.
        att_hidden_units, att_activation, att_weight_normalization: the attention unit
            (DeepCTR's defaults (64, 16), 'relu', True: a softmax over valid positions).
        share_history_embeddings: ``hist_X`` looks up X's table unless its embedding_name
            was set explicitly.
        packed: run the recurrences over the valid positions only (False: over all T steps
            with masked updates; the same function, used for export).
        gru_impl: how the packed path runs its ``nn.GRU`` recurrences (the interest
            extractor, and the evolving layer for ``'GRU'``/``'AIGRU'``): ``'loop'`` (default)
            steps ctrkit's :func:`gru_packed` over the packed positions, ``'torch'`` calls
            torch's packed ``nn.GRU``. Same weights and equations (equal up to rounding,
            tested); ``'loop'`` avoids torch's CPU packed backward, which writes an
            input-sized gradient per step.
        l2_reg_embedding, embedding_regularizer, init, init_std, seed, task, device: see
            BaseModel.
        gpus: DeepCTR compatibility; must be None.

    Raises:
        ConfigError: no candidate/history pair, unequal dims, an unknown ``gru_type``, or
            negative sequences declared for only some histories (or without
            ``use_negsampling``).

    Example:
        >>> model = ctrkit.build("dien", features, gru_type="AUGRU", alpha=1.0)  # doctest: +SKIP
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 history_feature_list: Optional[Sequence[str]] = None,
                 gru_type: str = "AUGRU", use_negsampling: bool = True, alpha: float = 1.0,
                 use_bn: bool = False, dnn_hidden_units: Sequence[int] = (256, 128),
                 dnn_activation: Union[str, type] = "relu",
                 att_hidden_units: Sequence[int] = (64, 16),
                 att_activation: Union[str, type] = "relu",
                 att_weight_normalization: bool = True, l2_reg_dnn: float = 0.0,
                 l2_reg_embedding: float = 1e-6, dnn_dropout: float = 0.0,
                 init_std: Optional[float] = None, seed: Optional[int] = 1024, task: str = "binary",
                 device: Any = "cpu", gpus: Any = None,
                 aux_hidden_units: Sequence[int] = (),
                 share_history_embeddings: bool = True, embedding_regularizer: Any = "l2",
                 packed: bool = True, init: Any = "ctrkit", gru_impl: str = "loop") -> None:
        if gpus is not None:
            raise ConfigError("gpus is not supported; pass device='cuda:N', or launch with "
                              "torchrun for data parallelism.")
        self_gru_type = check_gru_type(gru_type)
        features = validate_features(dnn_feature_columns)
        pairs = find_history_pairs(features, history_feature_list)
        negs = _negative_sequences(features, pairs, bool(use_negsampling))
        table_of = shared_history_table_of(pairs, share_history_embeddings)
        for (x, s), n in zip(pairs, negs or []):
            if not n.embedding_name_given:  # negatives live in the positives' space
                table_of[n.name] = table_of.get(s.name, s.embedding_name)
        super().__init__(features, task=task, l2_reg_embedding=l2_reg_embedding,
                         embedding_regularizer=embedding_regularizer, init_std=init_std,
                         seed=seed, device=device, table_of=table_of, init=init)
        for (x, s), n in zip(pairs, negs or []):
            if self.embeddings.table_of[n.name] != self.embeddings.table_of[s.name]:
                raise ConfigError(
                    f"Negative sequence '{n.name}' looks up table "
                    f"'{self.embeddings.table_of[n.name]}' but '{s.name}' looks up "
                    f"'{self.embeddings.table_of[s.name]}'; negatives must share the "
                    f"positives' table (drop the explicit embedding_name).")
        if gru_impl not in ("loop", "torch"):
            raise ConfigError(f"gru_impl must be 'loop' (ctrkit's packed GRU loop) or 'torch' "
                              f"(torch's packed nn.GRU), got {gru_impl!r}.")
        if float(alpha) < 0:
            raise ConfigError(f"alpha (weight of the auxiliary loss) must be >= 0, got {alpha!r}.")
        self.pairs, self.negatives = pairs, negs
        self.history_feature_list = [x.name for x, _ in pairs]
        self.gru_type, self.use_negsampling = self_gru_type, bool(use_negsampling)
        self.alpha, self.packed, self.gru_impl = float(alpha), bool(packed), gru_impl
        if not isinstance(att_weight_normalization, (bool, int)) or \
                att_weight_normalization not in (True, False):
            raise ConfigError(
                f"DIEN's att_weight_normalization is True (softmax, the default) or False (raw "
                f"scores), got {att_weight_normalization!r}; the other attention forms "
                f"('softmax+count', ...) are DIN's.")
        self.att_weight_normalization = bool(att_weight_normalization)
        skip = {s.name for _, s in pairs} | {n.name for n in negs or []}
        self.sparse = self.features_of(SparseFeat)
        self.other_sequences = [f for f in self.features_of(VarLenSparseFeat)
                                if f.name not in skip]
        self.dense = self.features_of(DenseFeat)
        e = sum(x.embedding_dim for x, _ in pairs)
        self.interest_dim = e
        self.extractor = nn.GRU(e, e, batch_first=True)
        self.initializer.recurrent_(self.extractor)
        if self.use_negsampling:
            units = [int(u) for u in aux_hidden_units]
            self.aux_net = MLP(2 * e, units, "sigmoid", init=self.initializer) if units else None
            self.aux_linear = nn.Linear(units[-1], 1) if units else None
            if self.aux_linear is not None:
                self.initializer.output_(self.aux_linear)
        self.attention_unit = LAYERS.get("din_local_activation_unit")(
            e, att_hidden_units, att_activation, 0.0, self.initializer)
        if self.gru_type in ("GRU", "AIGRU"):
            self.evolution: nn.Module = nn.GRU(e, e, batch_first=True)
        else:
            self.evolution = AttentionalGRU(e, e, self.gru_type)
        self.initializer.recurrent_(self.evolution)
        dnn_in = (sum(f.embedding_dim for f in self.sparse)
                  + sum(f.embedding_dim for f in self.other_sequences) + e
                  + sum(f.dimension for f in self.dense))
        self.dnn = MLP(dnn_in, dnn_hidden_units, dnn_activation, dnn_dropout, use_bn,
                       l2_reg_dnn, self.initializer)
        self.dnn_linear = nn.Linear(self.dnn.output_dim, 1, bias=False)
        self.initializer.output_(self.dnn_linear)

    # ------------------------------------------------------------------ pieces
    def _history_ids(self, batch: Dict[str, torch.Tensor]
                     ) -> Tuple[Dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Ids of the history (and negative) sequences in prefix layout, the (B, T) mask and
        the lengths. Without a length column the valid ids (!= 0) are moved to the front in
        their order, so every recurrence reads the behaviours in sequence."""
        first = self.pairs[0][1]
        mask = self.sequence_mask(batch, first)
        names = [s.name for _, s in self.pairs] + [n.name for n in self.negatives or []]
        ids = {n: batch[n] for n in names}
        if first.length_name is None:
            order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
            ids = {n: v.gather(1, order) for n, v in ids.items()}
            mask = mask.gather(1, order)
            self._order = order  # for explain: compacted position -> original position
        else:
            self._order = None
        return ids, mask, mask.sum(1)

    def _embed(self, names: List[str], ids: Dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.embeddings.lookup(n, ids[n]) for n in names], dim=-1)

    def _scores(self, q: torch.Tensor, states: torch.Tensor, rows: torch.Tensor, n_rows: int
                ) -> torch.Tensor:
        """Attention weights of states (M, E) whose rows are ``rows`` (M,)."""
        s = self.attention_unit.score_rows(q, states, rows)
        return segment_softmax(s, rows, n_rows) if self.att_weight_normalization else s

    def _aux_logits(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        if self.aux_net is None:
            return (h * e).sum(-1)
        return self.aux_linear(self.aux_net(torch.cat([h, e], dim=-1))).squeeze(-1)

    def _auxiliary_loss(self, h: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
                        ) -> torch.Tensor:
        """Mean over the P (state, next behaviour) pairs of ``−log σ(h, e⁺) − log(1 − σ(h, e⁻))``
        / 2 (DeepCTR's mean over the 2P terms); 0 (with the graph) when P = 0."""
        logits = self._aux_logits(torch.cat([h, h]), torch.cat([pos, neg]))
        target = torch.cat([torch.ones(len(h)), torch.zeros(len(h))]).to(logits)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / max(
            len(logits), 1)

    def attention_weights(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T) attention of the candidate on each behaviour's interest state (for
        ``gru_type='GRU'``: on each evolved state), at the behaviours' positions in the input;
        0 at padded positions and for rows without history. See ``explain``."""
        emb = {x.name: self.embeddings.lookup(x.name, batch[x.name]) for x, _ in self.pairs}
        q = torch.cat([emb[x.name] for x, _ in self.pairs], dim=-1)
        ids, mask, lengths = self._history_ids(batch)
        order = self._order
        b, t = mask.shape
        w = self._interest_packed(batch, q, ids, lengths, t, return_weights=True)
        out = q.new_zeros(b, t)
        if w is None:
            return out
        weights, rows, cols = w
        if order is not None:
            cols = order[rows, cols]
        return out.index_put((rows, cols), weights)

    def _packed_gru(self, gru: nn.GRU, x: torch.Tensor, p: Packed, states: bool = True
                    ) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        """``gru`` over packed ``x`` (M, I) -> (all states (M, H) or None, last states (B', H)
        in ``p.sorted_rows`` order), by ``gru_impl``."""
        if self.gru_impl == "loop":
            return gru_packed(gru, x, p.batch_sizes.tolist(), states)
        out, last = gru(PackedSequence(x, p.batch_sizes))
        return out.data, last[0]

    def _interest_packed(self, batch, q, ids, lengths, t, return_weights: bool = False):
        b = q.shape[0]
        p = pack_positions(lengths, t)
        flat_ids = {n: v.reshape(-1).index_select(0, p.flat) for n, v in ids.items()}
        hist_names = [s.name for _, s in self.pairs]
        keys = self._embed(hist_names, flat_ids)  # (M, E): valid positions only
        interest = q.new_zeros(b, self.interest_dim)
        if len(p.sorted_rows) == 0:
            return None if return_weights else interest
        states = self._packed_gru(self.extractor, keys, p)[0]
        if self.use_negsampling and self.training:
            src = (p.cols + 1 < p.lengths).nonzero().squeeze(1)
            nxt = src + p.step_size.index_select(0, src)
            pos = keys.index_select(0, nxt)
            if self.negatives:
                neg = self._embed([n.name for n in self.negatives],
                                  {n.name: flat_ids[n.name].index_select(0, nxt)
                                   for n in self.negatives})
            else:
                neg = keys.index_select(0, torch.randint(len(keys), (len(src),),
                                                         device=keys.device))
            self.add_auxiliary_loss(self._auxiliary_loss(states.index_select(0, src), pos, neg),
                                    self.alpha)
        if self.gru_type == "GRU":
            evolved = self._packed_gru(self.evolution, states, p)[0]
            w = self._scores(q, evolved, p.rows, b)
            if return_weights:
                return w, p.rows, p.cols
            return interest.index_add(0, p.rows, evolved * w.unsqueeze(-1))
        w = self._scores(q, states, p.rows, b)
        if return_weights:
            return w, p.rows, p.cols
        if self.gru_type == "AIGRU":
            last = self._packed_gru(self.evolution, states * w.unsqueeze(-1), p, False)[1]
        else:
            last = self.evolution.forward_packed(states, w, p)
        return interest.index_copy(0, p.sorted_rows, last)

    def _interest_dense(self, batch, q, ids, mask, lengths) -> torch.Tensor:
        """The same function over all T steps with masked updates (static shapes)."""
        b, t = mask.shape
        hist_names = [s.name for _, s in self.pairs]
        keys = self._embed(hist_names, ids) * mask.unsqueeze(-1).to(q.dtype)
        states = self.extractor(keys)[0]
        if self.use_negsampling and self.training:
            pairs = mask[:, 1:] & mask[:, :-1]
            pos = keys[:, 1:][pairs]
            if self.negatives:
                neg = self._embed([n.name for n in self.negatives],
                                  {n.name: ids[n.name][:, 1:][pairs] for n in self.negatives})
            else:
                valid = keys[mask]
                neg = valid.index_select(0, torch.randint(len(valid), (len(pos),),
                                                          device=keys.device))
            self.add_auxiliary_loss(self._auxiliary_loss(states[:, :-1][pairs], pos, neg),
                                    self.alpha)
        rows = torch.arange(b, device=q.device).repeat_interleave(t)

        def weights(s: torch.Tensor) -> torch.Tensor:
            raw = self.attention_unit.score_rows(q, s.reshape(b * t, -1), rows).reshape(b, t)
            if self.att_weight_normalization:
                return masked_softmax(raw, mask)
            return raw * mask.to(raw.dtype)

        if self.gru_type == "GRU":
            evolved = self.evolution(states)[0]
            return (weights(evolved).unsqueeze(-1) * evolved).sum(1)
        w = weights(states)
        if self.gru_type == "AIGRU":
            return last_valid(self.evolution(states * w.unsqueeze(-1))[0], lengths)
        return self.evolution.forward_dense(states, w, mask)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,)."""
        emb = dict(zip((f.name for f in self.sparse), self.embed_sparse(batch, self.sparse)))
        q = torch.cat([emb[x.name] for x, _ in self.pairs], dim=-1)
        ids, mask, lengths = self._history_ids(batch)
        if self.packed and not is_tracing():
            interest = self._interest_packed(batch, q, ids, lengths, mask.shape[1])
        else:
            interest = self._interest_dense(batch, q, ids, mask, lengths)
        parts = ([emb[f.name] for f in self.sparse]
                 + self.pool_sequences(batch, self.other_sequences) + [interest]
                 + self.dense_values(batch, self.dense))
        return self.head(self.dnn_linear(self.dnn(torch.cat(parts, dim=-1))).squeeze(-1))


def _negative_sequences(features: Sequence[Feature], pairs, use_negsampling: bool
                        ) -> Optional[List[VarLenSparseFeat]]:
    """The declared ``neg_hist_X`` sequences in pair order, or None (sample in the batch).

    Raises:
        ConfigError: some but not all declared, declared without ``use_negsampling``, or of
            another maxlen than the positives.
    """
    by_name = {f.name: f for f in features}
    found = [by_name.get("neg_" + s.name) for _, s in pairs]
    declared = [f.name for f in found if f is not None]
    if not declared:
        return None
    if not use_negsampling:
        raise ConfigError(f"Negative sequences {declared} are declared but use_negsampling="
                          f"False would ignore them; pass use_negsampling=True or drop them.")
    missing = ["neg_" + s.name for (_, s), f in zip(pairs, found) if f is None]
    if missing:
        raise ConfigError(f"Negative sequences are declared for {declared} but not for "
                          f"{missing}; declare one neg_hist_X per history sequence, or none to "
                          f"sample negatives in the batch.")
    for (_, s), n in zip(pairs, found):
        if not isinstance(n, VarLenSparseFeat) or n.maxlen != s.maxlen:
            raise ConfigError(f"'{n.name}' must be a VarLenSparseFeat with the maxlen of "
                              f"'{s.name}' ({s.maxlen}); position t of it is the negative of "
                              f"position t of '{s.name}'.")
    return found


__all__ = ["DIEN", "Packed"]
