"""DeepFM (Guo et al., 2017): linear part + FM second order over field embeddings + deep
tower, all sharing the same embeddings."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch

from ..features import Feature
from ..layers.interaction import FM
from ..layers.linear import LinearLogit
from ..registry import MODELS, register_model  # noqa: F401  (MODELS: round-2 name)
from .embedding_mlp import EmbeddingMLP, resolve_features


@register_model("deepfm")
class DeepFM(EmbeddingMLP):
    """DeepFM. The FM fields are the sparse embeddings and the pooled history sequences.

    The shared arguments (``dnn_*``, ``l2_reg_*``, ``init_std``, ``seed``, ...) are
    :class:`~ctrkit.models.embedding_mlp.EmbeddingMLP`'s.

    Args:
        dnn_feature_columns: all feature declarations (the same list DIN takes); every
            sparse/sequence feature needs the same embedding_dim.
        linear_feature_columns: features (or names) of the linear part; None: all of them;
            ``[]``: no linear part (DeepCTR's ``DeepFM([], feature_columns)``).
        use_fm: include the FM term.
        dnn_hidden_units: widths of the deep tower; ``()``: no deep tower (linear + FM).
        l2_reg_linear: L2 strength on the linear weights.

    Raises:
        ConfigError: fields of different embedding_dim.
    """

    dnn_optional = True  # dnn_hidden_units=() drops the deep tower

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 linear_feature_columns: Optional[Sequence[Any]] = None, use_fm: bool = True,
                 dnn_hidden_units: Sequence[int] = (256, 128),
                 dnn_activation: Union[str, type] = "relu", dnn_dropout: float = 0.0,
                 dnn_use_bn: bool = False, l2_reg_linear: float = 1e-5, l2_reg_dnn: float = 0.0,
                 l2_reg_embedding: float = 1e-6, init_std: Optional[float] = None,
                 seed: Optional[int] = 1024, task: str = "binary", device: Any = "cpu",
                 gpus: Any = None, share_history_embeddings: bool = True,
                 embedding_regularizer: Any = "l2", init: Any = "ctrkit") -> None:
        super().__init__(dnn_feature_columns, dnn_hidden_units, dnn_activation, dnn_dropout,
                         dnn_use_bn, l2_reg_dnn, l2_reg_embedding, init_std, seed, task, device,
                         gpus, share_history_embeddings, embedding_regularizer, init)
        self.use_fm = bool(use_fm)
        if self.use_fm:
            self.check_equal_dims("DeepFM")
        lin = resolve_features(self.features, linear_feature_columns, "linear_feature_columns",
                               allow_empty=True)
        self.linear = (LinearLogit(self._sorted(lin), self.table_of, self.initializer,
                                   l2_reg_linear) if lin else None)
        self.fm = FM()

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,)."""
        fields = self.field_embeddings(batch)
        terms = []
        if self.linear is not None:
            terms.append(self.linear(batch))
        if self.dnn is not None:
            terms.append(self.deep_logit(self.dnn_input(batch, fields)))
        if self.use_fm:
            terms.append(self.fm(torch.stack(fields, dim=1)))
        return self.head(self.sum_logits(batch, terms))
