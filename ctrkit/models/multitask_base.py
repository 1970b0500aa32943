"""What the multi-task models (Shared-Bottom, ESMM, MMoE, PLE) share: the input stage, the
towers and the argument checks (DeepCTR-Torch's hyperparameter names).

The input stage embeds every sparse feature, pools every sequence over its valid positions
with its ``combiner`` (as the single-task models pool them) and appends the dense values.
With ``history_feature_list``, each named candidate's behaviour sequence is instead pooled by
DIN's attention unit (``'din_attention_pooling'`` from the layer registry), as DIN does.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..features import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, validate_features
from ..layers.mlp import MLP
from ..registry import LAYERS
from .base import BaseModel
from .embedding_mlp import shared_history_tables


class MultiTaskModel(BaseModel):
    """Base of the multi-task models: features in, (B, D) shared input out.

    Args:
        dnn_feature_columns: the feature declarations (every kind is accepted).
        task_types: ``'binary'``/``'regression'`` per task (DeepCTR-Torch's name).
        task_names: two or more task names (DeepCTR-Torch's default ``('ctr', 'ctcvr')``).
        history_feature_list: candidate features whose behaviour sequences are pooled by
            DIN's attention (None: every sequence is pooled by its combiner).
        att_hidden_size, att_activation, att_weight_normalization: DIN's attention unit.
        dnn_activation, dnn_dropout, dnn_use_bn, l2_reg_dnn: every MLP of the model.
        l2_reg_linear: accepted for DeepCTR-Torch compatibility; these models have no linear
            part (neither have DeepCTR-Torch's), so it must stay a number >= 0 and is unused.
        l2_reg_embedding, init_std, seed, device, init, embedding_regularizer: as
            :class:`BaseModel`.
        gpus: must be None.
    """

    #: several outputs by construction (``ctrkit.list_models(multitask=True)``).
    multi_output = True

    def __init__(self, dnn_feature_columns: Sequence[Feature], *, task_types: Any,
                 task_names: Sequence[str], history_feature_list: Optional[Sequence[str]],
                 att_hidden_size: Sequence[int], att_activation: Union[str, type],
                 att_weight_normalization: bool, dnn_activation: Union[str, type],
                 dnn_dropout: float, dnn_use_bn: bool, l2_reg_dnn: float, l2_reg_linear: float,
                 l2_reg_embedding: float, init_std: Optional[float], seed: Optional[int],
                 device: Any, gpus: Any, init: Any, embedding_regularizer: Any) -> None:
        if gpus is not None:
            raise ConfigError("gpus is not supported; pass device='cuda:N'.")
        if isinstance(l2_reg_linear, bool) or float(l2_reg_linear) < 0:
            raise ConfigError(f"l2_reg_linear must be a number >= 0, got {l2_reg_linear!r}.")
        features = validate_features(dnn_feature_columns)
        pairs: list = []
        if history_feature_list is not None:
            from .din.model import find_history_pairs, shared_history_table_of
            pairs = find_history_pairs(features, history_feature_list)
            table_of = shared_history_table_of(pairs, True)
        else:
            table_of = shared_history_tables(features)
        super().__init__(features, l2_reg_embedding=l2_reg_embedding,
                         embedding_regularizer=embedding_regularizer, init_std=init_std,
                         seed=seed, device=device, table_of=table_of, init=init)
        self.set_tasks(task_names, task_types)
        self.pairs = pairs
        paired = {s.name for _, s in pairs}
        self.sparse = self.features_of(SparseFeat)
        self.sequences = [f for f in self.features_of(VarLenSparseFeat) if f.name not in paired]
        self.dense = self.features_of(DenseFeat)
        att_dim = sum(x.embedding_dim for x, _ in pairs)
        self.attention = LAYERS.get("din_attention_pooling")(
            att_dim, att_hidden_size, att_activation, att_weight_normalization,
            init=self.initializer) if pairs else None
        self.input_dim = (sum(f.embedding_dim for f in self.sparse + self.sequences)
                          + (self.attention.output_dim if pairs else 0)
                          + sum(f.dimension for f in self.dense))
        self._mlp_args = (dnn_activation, dnn_dropout, dnn_use_bn, l2_reg_dnn)

    def mlp(self, input_dim: int, units: Sequence[int], what: str) -> nn.Module:
        """An MLP with the model's activation/dropout/BN/L2 (identity for ``units=()``)."""
        units = list(units)
        if not units:
            return nn.Identity()
        if any(isinstance(u, bool) or int(u) < 1 for u in units):
            raise ConfigError(f"{what} must list positive layer widths, got {units!r}.")
        act, dropout, use_bn, l2 = self._mlp_args
        return MLP(input_dim, units, act, dropout, use_bn, l2, self.initializer)

    def towers(self, input_dim: int, units: Sequence[int]) -> None:
        """One tower per task (``tower_dnn_hidden_units``, then a linear logit)."""
        self.tower_dnn = nn.ModuleList(self.mlp(input_dim, units, "tower_dnn_hidden_units")
                                       for _ in self.task_names)
        width = int(list(units)[-1]) if list(units) else input_dim
        self.tower_dnn_final_layer = nn.ModuleList(nn.Linear(width, 1, bias=False)
                                                   for _ in self.task_names)
        for lin in self.tower_dnn_final_layer:
            self.initializer.output_(lin)

    def tower_logits(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """(B, T) logits from each task's tower input, before the head's biases."""
        return torch.cat([final(dnn(x)) for x, dnn, final in
                          zip(inputs, self.tower_dnn, self.tower_dnn_final_layer)], dim=-1)

    def shared_input(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, input_dim): sparse embeddings, pooled sequences, attention-pooled histories,
        dense values."""
        parts = self.embed_sparse(batch, self.sparse) + self.pool_sequences(batch, self.sequences)
        if self.attention is not None:
            q = torch.cat([self.embeddings.lookup(x.name, batch[x.name]) for x, _ in self.pairs],
                          dim=-1)
            keys = torch.cat([self.embeddings.lookup(s.name, batch[s.name])
                              for _, s in self.pairs], dim=-1)
            parts.append(self.attention(q, keys, self.sequence_mask(batch, self.pairs[0][1])))
        return torch.cat(parts + self.dense_values(batch, self.dense), dim=-1)

    def attention_weights(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T) DIN attention weights over the history (with ``history_feature_list``)."""
        if self.attention is None:
            return BaseModel.attention_weights(self, batch)
        q = torch.cat([self.embeddings.lookup(x.name, batch[x.name]) for x, _ in self.pairs],
                      dim=-1)
        keys = torch.cat([self.embeddings.lookup(s.name, batch[s.name]) for _, s in self.pairs],
                         dim=-1)
        return self.attention(q, keys, self.sequence_mask(batch, self.pairs[0][1]),
                              return_weights=True)[1]


def gate(model: MultiTaskModel, input_dim: int, units: Sequence[int], experts: int) -> nn.Module:
    """A softmax gate over ``experts``: an MLP (``gate_dnn_hidden_units``), then a linear
    layer without bias to one score per expert, as in MMoE/PLE."""
    width = int(list(units)[-1]) if list(units) else input_dim
    final = nn.Linear(width, experts, bias=False)
    model.initializer.output_(final)
    return nn.Sequential(model.mlp(input_dim, units, "gate_dnn_hidden_units"), final,
                         nn.Softmax(dim=-1))


#: the constructor arguments every multi-task model hands to :class:`MultiTaskModel`
COMMON_ARGS = ("task_types", "task_names", "history_feature_list", "att_hidden_size",
               "att_activation", "att_weight_normalization", "dnn_activation", "dnn_dropout",
               "dnn_use_bn", "l2_reg_dnn", "l2_reg_linear", "l2_reg_embedding", "init_std",
               "seed", "device", "gpus", "init", "embedding_regularizer")


def common_args(values: Dict[str, Any]) -> Dict[str, Any]:
    """The :data:`COMMON_ARGS` of a model's ``__init__`` arguments (its ``locals()``)."""
    return {k: values[k] for k in COMMON_ARGS}


def positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)

