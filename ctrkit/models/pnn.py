"""Inner-product PNN (Qu et al., 2016): the MLP sees the field embeddings and all their
pairwise inner products."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch

from ..errors import ConfigError
from ..features import Feature
from ..layers.interaction import InnerProduct
from ..registry import MODELS
from .embedding_mlp import EmbeddingMLP


@MODELS.register("pnn")
class PNN(EmbeddingMLP):
    """IPNN: ``MLP([fields (linear signal), <v_i, v_j> for i < j, dense])``.

    The shared arguments (``dnn_*``, ``l2_reg_*``, ``init_std``, ``seed``, ...) are
    :class:`~ctrkit.models.embedding_mlp.EmbeddingMLP`'s.

    Args:
        dnn_feature_columns: all feature declarations (the same list DIN takes); every
            sparse/sequence feature needs the same embedding_dim.
        use_inner: the inner-product layer (the only product implemented; False is an error).
        use_outter: DeepCTR's outer-product option; not implemented (True is an error).

    Raises:
        ConfigError: fields of different embedding_dim, or an unsupported product option.
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 dnn_hidden_units: Sequence[int] = (256, 128),
                 dnn_activation: Union[str, type] = "relu", dnn_dropout: float = 0.0,
                 dnn_use_bn: bool = False, l2_reg_dnn: float = 0.0,
                 l2_reg_embedding: float = 1e-6, init_std: Optional[float] = None,
                 seed: Optional[int] = 1024, task: str = "binary", device: Any = "cpu",
                 gpus: Any = None, use_inner: bool = True, use_outter: bool = False,
                 share_history_embeddings: bool = True,
                 embedding_regularizer: Any = "l2", init: Any = "ctrkit") -> None:
        if not use_inner or use_outter:
            raise ConfigError("PNN implements the inner product only: use use_inner=True, "
                              "use_outter=False.")
        super().__init__(dnn_feature_columns, dnn_hidden_units, dnn_activation, dnn_dropout,
                         dnn_use_bn, l2_reg_dnn, l2_reg_embedding, init_std, seed, task, device,
                         gpus, share_history_embeddings, embedding_regularizer, init)
        self.check_equal_dims("PNN")
        self.product = InnerProduct(len(self.fields))
        self.build_dnn(self.field_dim + self.product.num_pairs + self.dense_dim)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,)."""
        fields = self.field_embeddings(batch)
        products = self.product(torch.stack(fields, dim=1))
        return self.head(self.deep_logit(self.dnn_input(batch, fields + [products])))
