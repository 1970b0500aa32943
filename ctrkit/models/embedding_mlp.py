"""The paper's BaseModel (Embedding&MLP), and the shared input stage of the comparison models.

Every feature is embedded (a sequence is pooled over its valid positions with its
``combiner``: ``mean`` by default, ``sum`` as in the paper), the field vectors and the dense
values are concatenated, and an MLP maps them to the logit. Wide&Deep, DeepFM and PNN subclass
:class:`EmbeddingMLP` and reuse :meth:`~EmbeddingMLP.field_embeddings`,
:meth:`~EmbeddingMLP.dnn_input` and :meth:`~EmbeddingMLP.deep_logit`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..features import DenseFeat, Feature, SparseFeat, VarLenSparseFeat, validate_features
from ..layers.mlp import MLP
from ..registry import MODELS, register_model  # noqa: F401  (MODELS: round-2 name)
from .base import BaseModel


def shared_history_tables(features: Sequence[Feature]) -> Dict[str, str]:
    """``hist_X -> X's table`` for every sequence ``hist_X`` of a SparseFeat ``X`` of the same
    width whose ``embedding_name`` was not set explicitly (the paper's shared goods
    embeddings; DIN shares the same way)."""
    by_name = {f.name: f for f in features}
    out: Dict[str, str] = {}
    for s in features:
        if (isinstance(s, VarLenSparseFeat) and not s.embedding_name_given
                and s.name.startswith("hist_")):
            x = by_name.get(s.name[len("hist_"):])
            if type(x) is SparseFeat and x.embedding_dim == s.embedding_dim:
                out[s.name] = x.embedding_name
    return out


def resolve_features(features: Sequence[Feature], chosen: Optional[Sequence[Any]],
                     what: str, allow_empty: bool = False) -> List[Feature]:
    """``chosen`` (feature objects or names) as declared features; all of them when None.

    Raises:
        ConfigError: a name that is not declared, or an empty list unless ``allow_empty``.
    """
    if chosen is None:
        return list(features)
    by_name = {f.name: f for f in features}
    out = []
    for c in chosen:
        name = c if isinstance(c, str) else getattr(c, "name", None)
        if name not in by_name:
            raise ConfigError(f"{what} names '{name}', which is not among the declared features "
                              f"{sorted(by_name)}.")
        out.append(by_name[name])
    if not out and not allow_empty:
        raise ConfigError(f"{what} is empty; name at least one feature or pass None for all.")
    return out


@register_model("base")
class EmbeddingMLP(BaseModel):
    """The paper's BaseModel: embeddings, pooled histories and dense values into an MLP.

    Args:
        dnn_feature_columns: all feature declarations (the same list DIN takes).
        dnn_hidden_units: widths of the top MLP's hidden layers.
        dnn_activation: the MLP's activation (a registered name or an ``nn.Module`` class).
        dnn_dropout: dropout rate after each hidden layer.
        dnn_use_bn: batch-normalise each hidden layer's pre-activation.
        l2_reg_dnn: L2 strength on the MLP's weights.
        share_history_embeddings: ``hist_X`` looks up X's table unless its ``embedding_name``
            was set explicitly (as DIN does); False gives every sequence its own table.
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
        gpus: accepted for DeepCTR compatibility; must be None.

    Example:
        >>> import ctrkit
        >>> from ctrkit import SparseFeat, VarLenSparseFeat
        >>> features = [SparseFeat("item", 10, 4),
        ...             VarLenSparseFeat(SparseFeat("hist_item", 10, 4), 5, combiner="sum")]
        >>> model = ctrkit.build("base", features, dnn_hidden_units=(16,))
        >>> model.embeddings.table_of                   # the history shares item's table
        {'hist_item': 'item', 'item': 'item'}
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 dnn_hidden_units: Sequence[int] = (256, 128),
                 dnn_activation: Union[str, type] = "relu", dnn_dropout: float = 0.0,
                 dnn_use_bn: bool = False, l2_reg_dnn: float = 0.0,
                 l2_reg_embedding: float = 1e-6, init_std: Optional[float] = None,
                 seed: Optional[int] = 1024, task: str = "binary", device: Any = "cpu",
                 gpus: Any = None, share_history_embeddings: bool = True,
                 embedding_regularizer: Any = "l2", init: Any = "ctrkit") -> None:
        if gpus is not None:
            raise ConfigError("gpus is not supported; pass device='cuda:N'.")
        features = validate_features(dnn_feature_columns)
        table_of = shared_history_tables(features) if share_history_embeddings else {}
        super().__init__(features, task=task, l2_reg_embedding=l2_reg_embedding,
                         embedding_regularizer=embedding_regularizer, init_std=init_std,
                         seed=seed, device=device, table_of=table_of, init=init)
        self.table_of = table_of
        self.sparse = self.features_of(SparseFeat)
        self.sequences = self.features_of(VarLenSparseFeat)
        self.dense = self.features_of(DenseFeat)
        self.fields: List[Feature] = self.sparse + self.sequences
        self.field_dim = sum(f.embedding_dim for f in self.fields)
        self.dense_dim = sum(f.dimension for f in self.dense)
        self._dnn_args = (dnn_hidden_units, dnn_activation, dnn_dropout, dnn_use_bn, l2_reg_dnn)
        self.build_dnn(self.field_dim + self.dense_dim)

    # ----------------------------------------------------------------- shared pieces
    #: True for models whose deep tower is one part among others (Wide&Deep, DeepFM): there
    #: ``dnn_hidden_units=()`` means no deep tower, as in DeepCTR-Torch.
    dnn_optional: bool = False

    def build_dnn(self, input_dim: int) -> None:
        """(Re)build the deep tower ``MLP -> Linear(., 1)`` for an input of ``input_dim``
        (no tower at all when ``dnn_hidden_units`` is empty and :attr:`dnn_optional`)."""
        units, act, dropout, use_bn, l2 = self._dnn_args
        if self.dnn_optional and not list(units):
            self.dnn, self.dnn_linear = None, None
            return
        self.dnn = MLP(input_dim, units, act, dropout, use_bn, l2, self.initializer)
        self.dnn_linear = nn.Linear(self.dnn.output_dim, 1, bias=False)
        self.initializer.output_(self.dnn_linear)

    def field_embeddings(self, batch: Dict[str, torch.Tensor]) -> List[torch.Tensor]:
        """One (B, E_f) vector per field: sparse embeddings, then pooled sequences."""
        return self.embed_sparse(batch, self.sparse) + self.pool_sequences(batch, self.sequences)

    def dnn_input(self, batch: Dict[str, torch.Tensor],
                  fields: Optional[List[torch.Tensor]] = None) -> torch.Tensor:
        """(B, sum E_f + dense dims): the field vectors and dense values, concatenated."""
        if fields is None:
            fields = self.field_embeddings(batch)
        return torch.cat(list(fields) + self.dense_values(batch, self.dense), dim=-1)

    @staticmethod
    def sum_logits(batch: Dict[str, torch.Tensor], terms: List[torch.Tensor]) -> torch.Tensor:
        """The sum of the (B,) logit ``terms``; zeros (B,) when a model has no part left
        (shapes follow the batch, so a traced export keeps a dynamic batch axis)."""
        if terms:
            out = terms[0]
            for t in terms[1:]:
                out = out + t
            return out
        first = next(iter(batch.values()))
        return torch.zeros_like(first.reshape(first.shape[0], -1)[:, 0], dtype=torch.float32)

    def deep_logit(self, dnn_input: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B,) through the MLP and its output layer."""
        if self.dnn is None:
            return torch.zeros_like(dnn_input[:, 0])
        return self.dnn_linear(self.dnn(dnn_input)).squeeze(-1)

    def optional_linear(self, linear_feature_columns: Optional[Sequence[Any]],
                        l2_reg_linear: float) -> Optional[nn.Module]:
        """A wide (linear) logit over ``linear_feature_columns`` for models whose linear part is
        optional (DCN, AutoInt: DeepCTR-Torch adds one); None or ``[]``: no linear part."""
        if not linear_feature_columns:
            return None
        from ..layers.linear import LinearLogit
        lin = resolve_features(self.features, linear_feature_columns, "linear_feature_columns")
        return LinearLogit(self._sorted(lin), self.table_of, self.initializer, l2_reg_linear)

    def check_equal_dims(self, model: str) -> None:
        """Interaction models multiply field vectors, so all fields need one width."""
        dims = {f.name: f.embedding_dim for f in self.fields}
        if len(self.fields) < 2:
            raise ConfigError(f"{model} interacts pairs of fields but only "
                              f"{[f.name for f in self.fields]} is declared; add sparse features.")
        if len(set(dims.values())) > 1:
            raise ConfigError(f"{model} takes inner products of field embeddings, so every "
                              f"sparse/sequence feature needs the same embedding_dim; got {dims}. "
                              f"Declare one embedding_dim for all of them.")

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,)."""
        return self.head(self.deep_logit(self.dnn_input(batch)))
