"""DCN (Wang et al., ADKDD 2017) and DCN-V2 (Wang et al., WWW 2021, arXiv 2008.13535).

Both feed ``x0 = [field embeddings, pooled sequences, dense values]`` (the Embedding&MLP input)
to a cross network and a deep MLP. A cross layer ``l`` maps ``x_l`` (B, D) to

- DCN (``cross_parameterization='vector'``): ``x_{l+1} = x0 · (x_l · w_l) + b_l + x_l``;
- DCN-V2 (``'matrix'``): ``x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l``, and with ``low_rank=r``
  ``W_l = U_l V_lᵀ`` (U, V of shape (D, r)): ``x0 ⊙ (U_l (V_lᵀ x_l) + b_l) + x_l``;
- DCN-Mix (``'matrix'``, ``low_rank=r``, ``num_experts=K``; the paper's equations 4-5):
  ``x_{l+1} = Σ_i G_i(x_l) E_i(x_l) + x_l`` with experts
  ``E_i(x) = x0 ⊙ (U_l^i tanh(C_l^i tanh(V_l^iᵀ x)) + b_l)`` (C of shape (r, r)) and the
  gates ``G(x) = softmax_i(g_l^iᵀ x)``.

``model_structure='parallel'`` concatenates the cross output and the MLP output before the
logit layer (the paper's Figure 1 right); ``'stacked'`` feeds the cross output to the MLP
(left). ``dnn_hidden_units=()`` keeps the cross network alone, ``cross_num=0`` the MLP alone.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..features import Feature
from ..layers.mlp import MLP
from ..registry import LAYERS, MODELS, register_model  # noqa: F401  (MODELS: round-2 name)
from .embedding_mlp import EmbeddingMLP

PARAMETERIZATIONS = ("vector", "matrix")
STRUCTURES = ("parallel", "stacked")


@LAYERS.register("cross_network")
class CrossNetwork(nn.Module):
    """A stack of ``num_layers`` cross layers (DCN's vector form or DCN-V2's matrix form).

    Args:
        input_dim: D, the width of x0.
        num_layers: the number of cross layers (``cross_num``).
        parameterization: ``'vector'`` (DCN, one (D,) weight per layer) or ``'matrix'``
            (DCN-V2, one (D, D) weight per layer).
        low_rank: with ``'matrix'``, factor each weight as ``U Vᵀ`` of rank ``low_rank``
            (None: full rank).
        l2_reg: strength of the L2 penalty on the cross weights (``l2_reg_cross``).
        num_experts: K: a mixture of K low-rank experts per layer (DCN-Mix; needs
            ``low_rank``); None: one plain (low-rank) matrix.

    Weights of a mixture layer l: ``kernels[l]`` U (K, D, r), ``kernels_v[l]`` V (K, D, r),
    ``kernels_c[l]`` C (K, r, r), ``gates[l]`` (K, D), ``biases[l]`` (D,) shared by the
    experts (as in the paper's equation 5).

    Shapes: (B, D) -> (B, D).

    Raises:
        ConfigError: an unknown parameterization, a negative layer count, a low rank that is
            not a positive integer (or is given with ``'vector'``), or ``num_experts`` that is
            not a positive integer or comes without ``low_rank``.
    """

    def __init__(self, input_dim: int, num_layers: int = 2, parameterization: str = "matrix",
                 low_rank: Optional[int] = None, l2_reg: float = 0.0,
                 num_experts: Optional[int] = None) -> None:
        super().__init__()
        if parameterization not in PARAMETERIZATIONS:
            raise ConfigError(f"cross_parameterization must be one of {list(PARAMETERIZATIONS)}, "
                              f"got {parameterization!r}.")
        if isinstance(num_layers, bool) or int(num_layers) < 0:
            raise ConfigError(f"cross_num must be an integer >= 0, got {num_layers!r}.")
        if low_rank is not None:
            if parameterization != "matrix":
                raise ConfigError("low_rank factors DCN-V2's matrix weights; it needs "
                                  "cross_parameterization='matrix'.")
            if isinstance(low_rank, bool) or int(low_rank) < 1:
                raise ConfigError(f"low_rank must be a positive integer or None, got {low_rank!r}.")
        if num_experts is not None:
            if isinstance(num_experts, bool) or int(num_experts) < 1:
                raise ConfigError(f"num_experts must be a positive integer or None, got "
                                  f"{num_experts!r}.")
            if low_rank is None:
                raise ConfigError("num_experts mixes low-rank experts (DCN-Mix); it needs "
                                  "low_rank=r with cross_parameterization='matrix'.")
        d, n = int(input_dim), int(num_layers)
        self.parameterization, self.low_rank = parameterization, low_rank
        self.num_experts = None if num_experts is None else int(num_experts)
        self.l2_reg = float(l2_reg)
        if self.num_experts is not None:
            k, r = self.num_experts, int(low_rank)
            self.kernels = nn.ParameterList(nn.Parameter(torch.empty(k, d, r)) for _ in range(n))
            self.kernels_v = nn.ParameterList(nn.Parameter(torch.empty(k, d, r))
                                              for _ in range(n))
            self.kernels_c = nn.ParameterList(nn.Parameter(torch.empty(k, r, r))
                                              for _ in range(n))
            self.gates = nn.ParameterList(nn.Parameter(torch.empty(k, d)) for _ in range(n))
            for w in list(self.kernels) + list(self.kernels_v) + list(self.kernels_c):
                for expert in w:  # each expert's (D, r) or (r, r) matrix as a plain weight
                    nn.init.xavier_normal_(expert)
            for w in self.gates:
                nn.init.xavier_normal_(w)
        elif parameterization == "vector":
            self.kernels = nn.ParameterList(nn.Parameter(torch.empty(d, 1)) for _ in range(n))
        elif low_rank is None:
            self.kernels = nn.ParameterList(nn.Parameter(torch.empty(d, d)) for _ in range(n))
        else:
            r = int(low_rank)
            self.kernels = nn.ParameterList(nn.Parameter(torch.empty(d, r)) for _ in range(n))
            self.kernels_v = nn.ParameterList(nn.Parameter(torch.empty(d, r)) for _ in range(n))
            for v in self.kernels_v:
                nn.init.xavier_normal_(v)
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(d)) for _ in range(n))
        if self.num_experts is None:
            for k in self.kernels:
                nn.init.xavier_normal_(k)
        self.num_layers = n

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for i in range(self.num_layers):
            w, b = self.kernels[i], self.biases[i]
            if self.parameterization == "vector":
                x = x0 * (x @ w) + b + x                         # (B, D) * (B, 1)
            elif self.num_experts is not None:
                x = self._mixture(i, x0, x) + x
            elif self.low_rank is None:
                x = x0 * torch.addmm(b, x, w.t()) + x            # W x_l + b, rows as vectors
            else:
                x = x0 * torch.addmm(b, x @ self.kernels_v[i], w.t()) + x  # U (Vᵀ x_l) + b
        return x

    def _mixture(self, i: int, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Σ_k G_k(x) E_k(x) of layer i, all experts at once: (B, D)."""
        v = torch.tanh(torch.einsum("bd,kdr->bkr", x, self.kernels_v[i]))
        c = torch.tanh(torch.einsum("bkr,kqr->bkq", v, self.kernels_c[i]))
        experts = x0.unsqueeze(1) * (torch.einsum("bkq,kdq->bkd", c, self.kernels[i])
                                     + self.biases[i])         # (B, K, D)
        gate = torch.softmax(x @ self.gates[i].t(), dim=1)      # (B, K)
        return torch.einsum("bk,bkd->bd", gate, experts)

    def l2_penalty(self) -> torch.Tensor:
        """``l2_reg * Σ ||W||²`` over the cross weights (U, V and C; not the biases nor the
        gates)."""
        weights = (list(self.kernels) + list(getattr(self, "kernels_v", []))
                   + list(getattr(self, "kernels_c", [])))
        return self.l2_reg * sum((w ** 2).sum() for w in weights)


@register_model("dcnv2")
class DCNv2(EmbeddingMLP):
    """DCN-V2: a cross network of full-rank (or low-rank) matrix cross layers and a deep MLP.

    Args:
        dnn_feature_columns: all feature declarations (the same list DIN takes).
        cross_num: number of cross layers (0: the deep part alone).
        cross_parameterization: ``'matrix'`` (DCN-V2) or ``'vector'`` (DCN).
        low_rank: rank of the factored cross weights (None: full rank; DCN-V2's low-rank
            variant).
        num_experts: with ``low_rank``: each cross layer mixes this many low-rank experts
            (DCN-Mix, DeepCTR's ``DCNMix``); None (default): no mixture.
        model_structure: ``'parallel'`` or ``'stacked'`` (cross network, then the MLP).
        dnn_hidden_units: the MLP (``()``: the cross network alone).
        l2_reg_cross: L2 strength on the cross weights.
        linear_feature_columns: features (or names) of an added linear (wide) logit, as
            DeepCTR-Torch's DCN has; None or ``[]`` (default): none.
        l2_reg_linear: L2 strength on the linear weights.
        Other arguments: see :class:`~ctrkit.models.embedding_mlp.EmbeddingMLP`.

    Raises:
        ConfigError: an unknown structure or parameterization, or neither a cross network nor
            an MLP.

    Example:
        >>> model = ctrkit.build("dcnv2", features, low_rank=8)   # doctest: +SKIP
        >>> mix = ctrkit.build("dcnv2", features, low_rank=8, num_experts=4)  # doctest: +SKIP
    """

    default_parameterization = "matrix"

    def __init__(self, dnn_feature_columns: Sequence[Feature], cross_num: int = 2,
                 cross_parameterization: Optional[str] = None, low_rank: Optional[int] = None,
                 model_structure: str = "parallel",
                 dnn_hidden_units: Sequence[int] = (128, 128),
                 dnn_activation: Union[str, type] = "relu", dnn_dropout: float = 0.0,
                 dnn_use_bn: bool = False, l2_reg_cross: float = 1e-5, l2_reg_dnn: float = 0.0,
                 l2_reg_embedding: float = 1e-5, init_std: Optional[float] = None,
                 seed: Optional[int] = 1024, task: str = "binary", device: Any = "cpu",
                 gpus: Any = None, share_history_embeddings: bool = True,
                 embedding_regularizer: Any = "l2", init: Any = "ctrkit",
                 num_experts: Optional[int] = None,
                 linear_feature_columns: Optional[Sequence[Any]] = None,
                 l2_reg_linear: float = 1e-5) -> None:
        if model_structure not in STRUCTURES:
            raise ConfigError(f"model_structure must be one of {list(STRUCTURES)}, got "
                              f"{model_structure!r}.")
        units = tuple(int(u) for u in dnn_hidden_units)
        if not units and not cross_num:
            raise ConfigError("cross_num=0 and dnn_hidden_units=() leave no network; keep at "
                              "least one cross layer or one hidden layer.")
        # the MLP is (re)built below for its real input width
        super().__init__(dnn_feature_columns, units or (1,), dnn_activation, dnn_dropout,
                         dnn_use_bn, l2_reg_dnn, l2_reg_embedding, init_std, seed, task, device,
                         gpus, share_history_embeddings, embedding_regularizer, init)
        d = self.field_dim + self.dense_dim
        self.cross = CrossNetwork(d, cross_num, cross_parameterization
                                  or self.default_parameterization, low_rank, l2_reg_cross,
                                  num_experts)
        self.model_structure = model_structure
        self.use_dnn = bool(units)
        if self.use_dnn:
            self.dnn = MLP(d, units, dnn_activation, dnn_dropout, dnn_use_bn, l2_reg_dnn,
                           self.initializer)
        else:
            del self.dnn
        parallel = model_structure == "parallel" or not self.use_dnn or not cross_num
        out_dim = ((d if cross_num else 0) + (units[-1] if units else 0)) if parallel else units[-1]
        self.parallel = parallel
        self.dnn_linear = nn.Linear(out_dim, 1, bias=False)
        self.initializer.output_(self.dnn_linear)
        self.linear = self.optional_linear(linear_feature_columns, l2_reg_linear)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,)."""
        x0 = self.dnn_input(batch)
        if not self.parallel:  # stacked: x0 -> cross network -> MLP
            logit = self.dnn_linear(self.dnn(self.cross(x0))).squeeze(-1)
        else:
            parts = []
            if self.cross.num_layers:
                parts.append(self.cross(x0))
            if self.use_dnn:
                parts.append(self.dnn(x0))
            logit = self.dnn_linear(torch.cat(parts, dim=-1)).squeeze(-1)
        if self.linear is not None:
            logit = logit + self.linear(batch)
        return self.head(logit)


@register_model("dcn")
class DCN(DCNv2):
    """DCN (v1): the same model with DCN's vector cross layers
    (``cross_parameterization='vector'``); see :class:`DCNv2` for the arguments."""

    default_parameterization = "vector"
