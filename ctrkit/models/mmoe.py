"""MMoE (Ma et al., KDD 2018): shared experts, one softmax gate and one tower per task."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn

from ..features import Feature
from ..registry import register_model
from .multitask_base import MultiTaskModel, common_args, gate, positive


@register_model("mmoe")
class MMOE(MultiTaskModel):
    """Multi-gate Mixture-of-Experts: ``num_experts`` expert MLPs on the shared input; each
    task's gate (an MLP, then a softmax over the experts) mixes the experts' outputs into
    its tower.

    Args:
        dnn_feature_columns: the feature declarations.
        num_experts: experts (> 1).
        expert_dnn_hidden_units: each expert's MLP.
        gate_dnn_hidden_units: each gate's MLP before its linear softmax layer (() for none).
        tower_dnn_hidden_units: each task's tower MLP (then a linear logit).
        task_names: two or more task names (DeepCTR-Torch's default ``('ctr', 'ctcvr')``).
            The other arguments (``task_types``, ``dnn_*``, ``l2_reg_*``, ``init_std``,
            ``history_feature_list``, ``att_*``, ...) are
            :class:`~ctrkit.models.multitask_base.MultiTaskModel`'s.

    Raises:
        ConfigError: ``num_experts`` < 2, empty ``expert_dnn_hidden_units``.

    Example:
        >>> import ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("mmoe", [SparseFeat("user", 10, 4)], num_experts=2,
        ...                      expert_dnn_hidden_units=(8,), task_names=("ctr", "cvr"))
        >>> model(model.example_batch(3)).shape
        torch.Size([3, 2])
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature], num_experts: int = 3,
                 expert_dnn_hidden_units: Sequence[int] = (256, 128),
                 gate_dnn_hidden_units: Sequence[int] = (64,),
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
        self.num_experts = positive("num_experts", num_experts)
        if self.num_experts < 2:
            from ..errors import ConfigError
            raise ConfigError(f"num_experts must be > 1 (one expert is Shared-Bottom: use "
                              f"'shared_bottom'), got {num_experts!r}.")
        if not list(expert_dnn_hidden_units):
            from ..errors import ConfigError
            raise ConfigError("expert_dnn_hidden_units must list at least one layer width.")
        self.expert_dnn = nn.ModuleList(
            self.mlp(self.input_dim, expert_dnn_hidden_units, "expert_dnn_hidden_units")
            for _ in range(self.num_experts))
        self.gates = nn.ModuleList(gate(self, self.input_dim, gate_dnn_hidden_units,
                                        self.num_experts) for _ in self.task_names)
        self.towers(int(list(expert_dnn_hidden_units)[-1]), tower_dnn_hidden_units)

    def gate_weights(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, E): each task's softmax weights over the experts."""
        x = self.shared_input(batch)
        return torch.stack([g(x) for g in self.gates], dim=1)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B, T)."""
        x = self.shared_input(batch)
        experts = torch.stack([e(x) for e in self.expert_dnn], dim=1)  # (B, E, D)
        mixed = [torch.bmm(g(x).unsqueeze(1), experts).squeeze(1) for g in self.gates]
        return self.head(self.tower_logits(mixed))


__all__ = ["MMOE"]
