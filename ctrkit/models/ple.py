"""PLE (Tang et al., RecSys 2020): Progressive Layered Extraction, stacked CGC levels."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..features import Feature
from ..registry import register_model
from .multitask_base import MultiTaskModel, common_args, gate, positive


@register_model("ple")
class PLE(MultiTaskModel):
    """Progressive Layered Extraction: ``num_levels`` Customized Gate Control (CGC) levels.

    Each level has ``specific_expert_num`` experts per task and ``shared_expert_num`` shared
    experts. Task ``t``'s gate mixes its own and the shared experts into task ``t``'s output
    of the level; below the last level a shared gate mixes every expert into the shared
    output. Level 0 reads the shared input; level ``k`` reads the outputs of level ``k-1``
    (task ``t``'s experts and gate read task ``t``'s output, the shared ones the shared
    output). Each task's last output feeds its tower.

    Args:
        dnn_feature_columns: the feature declarations.
        shared_expert_num: shared experts per level.
        specific_expert_num: experts per task per level.
        num_levels: CGC levels (1: one CGC, the paper's single-level model).
        expert_dnn_hidden_units: each expert's MLP.
        gate_dnn_hidden_units: each gate's MLP before its linear softmax layer (() for none).
        tower_dnn_hidden_units: each task's tower MLP (then a linear logit).
        task_names: two or more task names (DeepCTR-Torch's default ``('ctr', 'ctcvr')``).
            The other arguments (``task_types``, ``dnn_*``, ``l2_reg_*``, ``init_std``,
            ``history_feature_list``, ``att_*``, ...) are
            :class:`~ctrkit.models.multitask_base.MultiTaskModel`'s.

    Raises:
        ConfigError: a count below 1, empty ``expert_dnn_hidden_units``.

    Example:
        >>> import ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("ple", [SparseFeat("user", 10, 4)], num_levels=2,
        ...                      expert_dnn_hidden_units=(8,), task_names=("ctr", "cvr"))
        >>> model(model.example_batch(3)).shape
        torch.Size([3, 2])
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature], shared_expert_num: int = 1,
                 specific_expert_num: int = 1, num_levels: int = 2,
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
        self.shared_expert_num = positive("shared_expert_num", shared_expert_num)
        self.specific_expert_num = positive("specific_expert_num", specific_expert_num)
        self.num_levels = positive("num_levels", num_levels)
        if not list(expert_dnn_hidden_units):
            raise ConfigError("expert_dnn_hidden_units must list at least one layer width.")
        width = int(list(expert_dnn_hidden_units)[-1])
        n_tasks = len(self.task_names)

        def experts(level: int, count: int) -> nn.ModuleList:
            return nn.ModuleList(self.mlp(self.input_dim if level == 0 else width,
                                          expert_dnn_hidden_units, "expert_dnn_hidden_units")
                                 for _ in range(count))

        # [level][task][expert], [level][expert]
        self.specific_experts = nn.ModuleList(
            nn.ModuleList(experts(lv, self.specific_expert_num) for _ in range(n_tasks))
            for lv in range(self.num_levels))
        self.shared_experts = nn.ModuleList(experts(lv, self.shared_expert_num)
                                            for lv in range(self.num_levels))
        mixed = self.specific_expert_num + self.shared_expert_num
        self.specific_gates = nn.ModuleList(
            nn.ModuleList(gate(self, self.input_dim if lv == 0 else width,
                               gate_dnn_hidden_units, mixed) for _ in range(n_tasks))
            for lv in range(self.num_levels))
        everything = n_tasks * self.specific_expert_num + self.shared_expert_num
        # the last level needs no shared output
        self.shared_gates = nn.ModuleList(
            gate(self, self.input_dim if lv == 0 else width, gate_dnn_hidden_units, everything)
            for lv in range(self.num_levels - 1))
        self.towers(width, tower_dnn_hidden_units)

    def cgc(self, inputs: List[torch.Tensor], level: int) -> List[torch.Tensor]:
        """One CGC level: ``inputs`` (each task's, then the shared one) -> its outputs (each
        task's, then the shared one below the last level)."""
        shared = [e(inputs[-1]) for e in self.shared_experts[level]]
        specific = [[e(inputs[t]) for e in task_experts]
                    for t, task_experts in enumerate(self.specific_experts[level])]
        outs = []
        for t, g in enumerate(self.specific_gates[level]):
            stack = torch.stack(specific[t] + shared, dim=1)  # (B, E_t, D)
            outs.append(torch.bmm(g(inputs[t]).unsqueeze(1), stack).squeeze(1))
        if level < self.num_levels - 1:
            stack = torch.stack([e for task in specific for e in task] + shared, dim=1)
            outs.append(torch.bmm(self.shared_gates[level](inputs[-1]).unsqueeze(1),
                                  stack).squeeze(1))
        return outs

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B, T)."""
        x = self.shared_input(batch)
        inputs = [x] * (len(self.task_names) + 1)
        for level in range(self.num_levels):
            inputs = self.cgc(inputs, level)
        return self.head(self.tower_logits(inputs[:len(self.task_names)]))


__all__ = ["PLE"]
