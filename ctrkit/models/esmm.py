"""ESMM (Ma et al., SIGIR 2018): pCTCVR = pCTR x pCVR over the entire impression space."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn

from ..features import Feature
from ..registry import register_model
from .multitask_base import MultiTaskModel, common_args, gate, positive


@register_model("esmm")
class ESMM(MultiTaskModel):
    """Entire Space Multi-task Model: a CTR tower and a CVR tower on the shared input; the
    model's two outputs are ``pCTR`` and ``pCTCVR = pCTR * pCVR``, trained on the click label
    and the click-and-convert label of every impression (the paper's setup). pCVR itself is the
    sigmoid of the second column of :meth:`ctr_cvr_logits`.

    The second output's logit is ``logit(pCTR * pCVR)``, computed in log space, so its
    sigmoid equals the product (to float rounding) and binary cross-entropy on logits
    stays stable. The towers carry their own output biases (the head adds none).

    Args:
        dnn_feature_columns: the feature declarations.
        tower_dnn_hidden_units: each tower's MLP (DeepCTR-Torch's (256, 128)).
        task_names: two or more task names (DeepCTR-Torch's default ``('ctr', 'ctcvr')``).
            The other arguments (``task_types``, ``dnn_*``, ``l2_reg_*``, ``init_std``,
            ``history_feature_list``, ``att_*``, ...) are
            :class:`~ctrkit.models.multitask_base.MultiTaskModel`'s.

    Raises:
        ConfigError: not exactly two tasks, or a task that is not binary.

    Example:
        >>> import ctrkit
        >>> from ctrkit import SparseFeat
        >>> model = ctrkit.build("esmm", [SparseFeat("user", 10, 4)], tower_dnn_hidden_units=(8,))
        >>> model.task_names
        ('ctr', 'ctcvr')
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 tower_dnn_hidden_units: Sequence[int] = (256, 128),
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
        from ..errors import ConfigError
        if len(self.task_names) != 2 or set(self.task_types) != {"binary"}:
            raise ConfigError(f"ESMM has exactly two binary tasks (pCTR, then pCTCVR), got "
                              f"task_names={tuple(task_names)!r}, "
                              f"task_types={tuple(self.task_types)!r}.")
        self.set_tasks(self.task_names, self.task_types, use_bias=False)
        self.towers(self.input_dim, tower_dnn_hidden_units)
        self.tower_bias = nn.Parameter(torch.zeros(2))

    def ctr_cvr_logits(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, 2): the CTR tower's and the CVR tower's logits."""
        x = self.shared_input(batch)
        return self.tower_logits([x, x]) + self.tower_bias

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B, 2): pCTR's and pCTCVR's."""
        z = self.ctr_cvr_logits(batch)
        # log(pCTR * pCVR) < 0, kept off 0 where both sigmoids round to 1 (logit finite)
        log_ctcvr = torch.nn.functional.logsigmoid(z).sum(dim=-1).clamp(max=-1e-30)
        ctcvr_logit = log_ctcvr - torch.log(-torch.expm1(log_ctcvr))
        return self.head(torch.stack([z[:, 0], ctcvr_logit], dim=-1))


__all__ = ["ESMM"]
