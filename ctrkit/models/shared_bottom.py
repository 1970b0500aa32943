"""Shared-Bottom (Caruana 1997): one shared MLP, one tower per task."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn

from ..features import Feature
from ..registry import register_model
from .multitask_base import MultiTaskModel, common_args, gate, positive


@register_model("shared_bottom")
class SharedBottom(MultiTaskModel):
    """Shared-Bottom: the shared input through one bottom MLP, then one tower per task.

    Args:
        dnn_feature_columns: the feature declarations.
        bottom_dnn_hidden_units: the shared bottom MLP.
        tower_dnn_hidden_units: each task's tower MLP (then a linear logit).
        task_names: two or more task names (DeepCTR-Torch's default ``('ctr', 'ctcvr')``).
            The other arguments (``task_types``, ``dnn_*``, ``l2_reg_*``, ``init_std``,
            ``history_feature_list``, ``att_*``, ...) are
            :class:`~ctrkit.models.multitask_base.MultiTaskModel`'s.

    Example:
        >>> import ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("shared_bottom", [SparseFeat("user", 10, 4)],
        ...                      bottom_dnn_hidden_units=(8,), task_names=("ctr", "cvr"))
        >>> model.task_names, model(model.example_batch(3)).shape
        (('ctr', 'cvr'), torch.Size([3, 2]))
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 bottom_dnn_hidden_units: Sequence[int] = (256, 128),
                 tower_dnn_hidden_units: Sequence[int] = (64,),
                 l2_reg_linear: float = 1e-5, l2_reg_embedding: float = 1e-5,
                 l2_reg_dnn: float = 0.0, init_std: Optional[float] = None,
                 seed: Optional[int] = 1024, dnn_dropout: float = 0.0,
                 dnn_activation: Union[str, type] = "relu", dnn_use_bn: bool = False,
                 task_types: Sequence[str] = ("binary", "binary"),
                 task_names: Sequence[str] = ("ctr", "ctcvr"), device: Any = "cpu",
                 gpus: Any = None, history_feature_list: Optional[Sequence[str]] = None,
                 att_hidden_size: Sequence[int] = (64, 16),
                 att_activation: Union[str, type] = "dice",
                 att_weight_normalization: bool = False, init: Any = "ctrkit",
                 embedding_regularizer: Any = "l2") -> None:
        super().__init__(dnn_feature_columns, **common_args(locals()))
        self.bottom_dnn = self.mlp(self.input_dim, bottom_dnn_hidden_units,
                                   "bottom_dnn_hidden_units")
        width = int(list(bottom_dnn_hidden_units)[-1]) if list(bottom_dnn_hidden_units) \
            else self.input_dim
        self.towers(width, tower_dnn_hidden_units)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B, T)."""
        shared = self.bottom_dnn(self.shared_input(batch))
        return self.head(self.tower_logits([shared] * len(self.task_names)))


__all__ = ["SharedBottom"]
