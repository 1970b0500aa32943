"""PNN (Qu et al., 2016): the MLP sees the field embeddings and their pairwise inner (IPNN)
and/or outer (OPNN) products."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch

from ..errors import ConfigError
from ..features import Feature
from ..layers.interaction import InnerProduct, OuterProduct
from ..registry import MODELS, register_model  # noqa: F401  (MODELS: round-2 name)
from .embedding_mlp import EmbeddingMLP


@register_model("pnn")
class PNN(EmbeddingMLP):
    """PNN: ``MLP([fields (linear signal), inner products, outer products, dense])``.

    ``use_inner`` alone is IPNN, ``use_outer`` alone OPNN, both PNN*; with neither the MLP sees
    the field embeddings only (DeepCTR-Torch accepts all four).

    The shared arguments (``dnn_*``, ``l2_reg_*``, ``init_std``, ``seed``, ...) are
    :class:`~ctrkit.models.embedding_mlp.EmbeddingMLP`'s.

    Args:
        dnn_feature_columns: all feature declarations (the same list DIN takes); every
            sparse/sequence feature needs the same embedding_dim.
        use_inner: add the F·(F−1)/2 pairwise inner products.
        use_outter: DeepCTR's spelling of ``use_outer``.
        use_outer: add the F·(F−1)/2 outer-product scores
            (:class:`~ctrkit.layers.interaction.OuterProduct`).
        kernel_type: the outer product's kernel: ``'mat'``, ``'vec'`` or ``'num'``.

    Raises:
        ConfigError: fields of different embedding_dim, an unknown ``kernel_type``, or
            ``use_outer`` and ``use_outter`` given with different values.
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 dnn_hidden_units: Sequence[int] = (256, 128),
                 dnn_activation: Union[str, type] = "relu", dnn_dropout: float = 0.0,
                 dnn_use_bn: bool = False, l2_reg_dnn: float = 0.0,
                 l2_reg_embedding: float = 1e-6, init_std: Optional[float] = None,
                 seed: Optional[int] = 1024, task: str = "binary", device: Any = "cpu",
                 gpus: Any = None, use_inner: bool = True, use_outter: Optional[bool] = None,
                 share_history_embeddings: bool = True,
                 embedding_regularizer: Any = "l2", init: Any = "ctrkit",
                 use_outer: Optional[bool] = None, kernel_type: str = "mat") -> None:
        if use_outer is not None and use_outter is not None and bool(use_outer) != bool(use_outter):
            raise ConfigError(f"PNN got use_outer={use_outer!r} and use_outter={use_outter!r}; "
                              f"they are the same flag (use_outter is DeepCTR's spelling), pass "
                              f"one.")
        outer = bool(use_outer if use_outer is not None else (use_outter or False))
        super().__init__(dnn_feature_columns, dnn_hidden_units, dnn_activation, dnn_dropout,
                         dnn_use_bn, l2_reg_dnn, l2_reg_embedding, init_std, seed, task, device,
                         gpus, share_history_embeddings, embedding_regularizer, init)
        self.check_equal_dims("PNN")
        self.use_inner, self.use_outer = bool(use_inner), outer
        num_fields = len(self.fields)
        self.product = InnerProduct(num_fields) if self.use_inner else None
        self.outer_product = (OuterProduct(num_fields, self.fields[0].embedding_dim, kernel_type)
                              if outer else None)
        width = sum(m.num_pairs for m in (self.product, self.outer_product) if m is not None)
        self.build_dnn(self.field_dim + width + self.dense_dim)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,)."""
        fields = self.field_embeddings(batch)
        parts = list(fields)
        if self.product is not None or self.outer_product is not None:
            stacked = torch.stack(fields, dim=1)
            parts += [m(stacked) for m in (self.product, self.outer_product) if m is not None]
        return self.head(self.deep_logit(self.dnn_input(batch, parts)))
