"""Wide&Deep (Cheng et al., 2016): a linear model over sparse ids and dense values plus the
Embedding&MLP tower, summed in the logit."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch

from ..features import Feature
from ..layers.linear import LinearLogit
from ..registry import MODELS, register_model  # noqa: F401  (MODELS: round-2 name)
from .embedding_mlp import EmbeddingMLP, resolve_features


@register_model("wdl")
class WDL(EmbeddingMLP):
    """Wide&Deep.

    The shared arguments (``dnn_*``, ``l2_reg_*``, ``init_std``, ``seed``, ...) are
    :class:`~ctrkit.models.embedding_mlp.EmbeddingMLP`'s.

    Args:
        dnn_feature_columns: all feature declarations (the same list DIN takes).
        linear_feature_columns: features (or names) of the wide part; None: all of them;
            ``[]``: no wide part.
        dnn_hidden_units: widths of the deep tower; ``()``: no deep tower (a linear model).
        l2_reg_linear: L2 strength on the wide weights.
    """

    dnn_optional = True  # dnn_hidden_units=() drops the deep tower

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 linear_feature_columns: Optional[Sequence[Any]] = None,
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
        wide = resolve_features(self.features, linear_feature_columns, "linear_feature_columns",
                                allow_empty=True)
        self.linear = (LinearLogit(self._sorted(wide), self.table_of, self.initializer,
                                   l2_reg_linear) if wide else None)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,)."""
        terms = [] if self.linear is None else [self.linear(batch)]
        if self.dnn is not None:
            terms.append(self.deep_logit(self.dnn_input(batch)))
        return self.head(self.sum_logits(batch, terms))
