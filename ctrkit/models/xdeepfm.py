"""xDeepFM (Lian et al., KDD 2018, arXiv 1803.05170): linear part + Compressed Interaction
Network (CIN) + deep MLP, over the same field embeddings."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..features import Feature
from ..layers.activations import create_activation
from ..layers.init import InitSpec, resolve_init
from ..layers.linear import LinearLogit
from ..registry import LAYERS, MODELS, register_model  # noqa: F401  (MODELS: round-2 name)
from .embedding_mlp import EmbeddingMLP, resolve_features


@LAYERS.register("cin")
class CIN(nn.Module):
    """Compressed Interaction Network (the paper's equation 6 and Figure 4).

    Layer k maps ``X^{k−1}`` (B, H_{k−1}, D) and ``X^0`` (B, m, D) to
    ``X^k_{h,*} = act(Σ_i Σ_j W^{k,h}_{ij} (X^{k−1}_{i,*} ⊙ X^0_{j,*}) + b^k_h)``, h < H_k: a
    1×1 convolution over the m·H_{k−1} element-wise products. With ``split_half``, each layer
    but the last sends half of its H_k maps to the next layer and half to the output (as
    DeepCTR); the output is every output map summed over the D dimension (sum pooling).

    Args:
        num_fields: m.
        layer_size: H_1, H_2, ... (``cin_layer_size``); even except the last with split_half.
        activation: applied to each map (``cin_activation``; 'linear' for the paper's plain
            form).
        split_half: see above.
        l2_reg: L2 strength on the weights (``l2_reg_cin``).
        init: how the convolutions start (see :mod:`ctrkit.layers.init`; None: the model's
            scheme).

    Shapes: (B, m, D) -> (B, output_dim).
    """

    def __init__(self, num_fields: int, layer_size: Sequence[int] = (256, 128),
                 activation: Union[str, type] = "relu", split_half: bool = True,
                 l2_reg: float = 0.0, init: InitSpec = None) -> None:
        super().__init__()
        sizes = [int(s) for s in layer_size]
        if not sizes or any(s < 1 for s in sizes):
            raise ConfigError(f"cin_layer_size must be a non-empty list of positive sizes, got "
                              f"{layer_size!r}.")
        if split_half and any(s % 2 for s in sizes[:-1]):
            raise ConfigError(f"cin_split_half=True halves every CIN layer but the last, so "
                              f"those sizes must be even; got {sizes}.")
        m = int(num_fields)
        self.split_half, self.sizes, self.l2_reg = bool(split_half), sizes, float(l2_reg)
        self.convs = nn.ModuleList()
        self.activations = nn.ModuleList()
        prev, out = m, 0
        for k, h in enumerate(sizes):
            self.convs.append(nn.Conv1d(prev * m, h, kernel_size=1))
            self.activations.append(create_activation(activation, h))
            last = k == len(sizes) - 1
            prev = h // 2 if split_half and not last else h
            out += h // 2 if split_half and not last else h
        self.output_dim = out
        initializer = resolve_init(init)
        for conv in self.convs:
            initializer.interaction_(conv)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        b, m, d = x0.shape
        hidden, pooled = x0, []
        for k, (conv, act) in enumerate(zip(self.convs, self.activations)):
            z = (hidden.unsqueeze(2) * x0.unsqueeze(1)).reshape(b, -1, d)  # (B, H·m, D)
            # the activation acts per map: put maps last for activation layers of width H
            xk = act(conv(z).transpose(1, 2)).transpose(1, 2)             # (B, H_k, D)
            if self.split_half and k < len(self.convs) - 1:
                hidden, direct = xk.split(xk.shape[1] // 2, dim=1)
            else:
                hidden = direct = xk
            pooled.append(direct.sum(-1))
        return torch.cat(pooled, dim=1)

    def l2_penalty(self) -> torch.Tensor:
        return self.l2_reg * sum((c.weight ** 2).sum() for c in self.convs)


@register_model("xdeepfm")
class XDeepFM(EmbeddingMLP):
    """xDeepFM: ``logit = linear + CIN + MLP``; the CIN's fields are the sparse embeddings and
    the pooled sequences (all of one embedding_dim).

    Args:
        dnn_feature_columns: all feature declarations.
        linear_feature_columns: features (or names) of the linear part; None: all of them.
        cin_layer_size, cin_split_half, cin_activation, l2_reg_cin: the CIN (``()``: none).
        dnn_hidden_units: the MLP (``()``: none).
        l2_reg_linear: L2 strength on the linear weights.
        Other arguments: see :class:`~ctrkit.models.embedding_mlp.EmbeddingMLP`.

    Raises:
        ConfigError: fields of different embedding_dim, odd split sizes.
    """

    #: with task_names, the MLP's and the CIN's output layers both become one head per task
    logit_layers = ("dnn_linear", "cin_linear")

    def __init__(self, dnn_feature_columns: Sequence[Feature],
                 linear_feature_columns: Optional[Sequence[Any]] = None,
                 dnn_hidden_units: Sequence[int] = (256, 256),
                 cin_layer_size: Sequence[int] = (256, 128), cin_split_half: bool = True,
                 cin_activation: Union[str, type] = "relu", l2_reg_linear: float = 1e-5,
                 l2_reg_embedding: float = 1e-5, l2_reg_dnn: float = 0.0,
                 l2_reg_cin: float = 0.0, init_std: Optional[float] = None, seed: Optional[int] = 1024,
                 dnn_dropout: float = 0.0, dnn_activation: Union[str, type] = "relu",
                 dnn_use_bn: bool = False, task: str = "binary", device: Any = "cpu",
                 gpus: Any = None, share_history_embeddings: bool = True,
                 embedding_regularizer: Any = "l2", init: Any = "ctrkit") -> None:
        units = tuple(int(u) for u in dnn_hidden_units)
        super().__init__(dnn_feature_columns, units or (1,), dnn_activation, dnn_dropout,
                         dnn_use_bn, l2_reg_dnn, l2_reg_embedding, init_std, seed, task, device,
                         gpus, share_history_embeddings, embedding_regularizer, init)
        lin = resolve_features(self.features, linear_feature_columns, "linear_feature_columns")
        self.linear = LinearLogit(self._sorted(lin), self.table_of, self.initializer, l2_reg_linear)
        self.use_dnn = bool(units)
        if not self.use_dnn:
            del self.dnn, self.dnn_linear
        self.use_cin = len(tuple(cin_layer_size)) > 0
        if self.use_cin:
            self.check_equal_dims("xDeepFM")
            self.cin = CIN(len(self.fields), cin_layer_size, cin_activation, cin_split_half,
                           l2_reg_cin, self.initializer)
            self.cin_linear = nn.Linear(self.cin.output_dim, 1, bias=False)
            self.initializer.output_(self.cin_linear)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,)."""
        fields = self.field_embeddings(batch)
        logit = self.linear(batch)
        if self.use_dnn:
            logit = logit + self.deep_logit(self.dnn_input(batch, fields))
        if self.use_cin:
            logit = logit + self.cin_linear(self.cin(torch.stack(fields, dim=1))).squeeze(-1)
        return self.head(logit)
