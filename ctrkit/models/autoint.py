"""AutoInt (Song et al., CIKM 2019, arXiv 1810.11921): multi-head self-attention over the
field embeddings ("interacting layers"), optionally beside a deep MLP."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..features import Feature
from ..registry import LAYERS, MODELS, register_model  # noqa: F401  (MODELS: round-2 name)
from .embedding_mlp import EmbeddingMLP


@LAYERS.register("interacting_layer")
class InteractingLayer(nn.Module):
    """One interacting layer (the paper's equations 5-8).

    For each head h and field m: ``α_{m,k} = softmax_k(<W_Q e_m, W_K e_k>)`` over all fields
    k, ``ẽ_m^h = Σ_k α_{m,k} W_V e_k``; the heads are concatenated and, with ``use_res``,
    ``e_m^{Res} = ReLU(ẽ_m ⊕ W_Res e_m)`` (without it ``ReLU(ẽ_m)``). The paper uses no
    1/√d scaling; ``scaling=True`` adds it.

    Args:
        input_dim: width of each field's input vector.
        att_embedding_size: d, the width of one head.
        head_num: number of heads.
        use_res: the residual connection (``att_res``).
        scaling: divide the inner products by √d.

    Shapes: (B, F, input_dim) -> (B, F, d · head_num).
    """

    def __init__(self, input_dim: int, att_embedding_size: int = 8, head_num: int = 2,
                 use_res: bool = True, scaling: bool = False) -> None:
        super().__init__()
        if int(att_embedding_size) < 1 or int(head_num) < 1:
            raise ConfigError(f"att_embedding_size and att_head_num must be positive, got "
                              f"{att_embedding_size!r} and {head_num!r}.")
        self.d, self.heads = int(att_embedding_size), int(head_num)
        out = self.d * self.heads
        self.w_query = nn.Parameter(torch.empty(input_dim, out))
        self.w_key = nn.Parameter(torch.empty(input_dim, out))
        self.w_value = nn.Parameter(torch.empty(input_dim, out))
        self.w_res = nn.Parameter(torch.empty(input_dim, out)) if use_res else None
        for p in self.parameters():
            nn.init.xavier_normal_(p)
        self.scaling = bool(scaling)
        self.output_dim = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f, _ = x.shape

        def heads(w: torch.Tensor) -> torch.Tensor:  # (B, F, H·d) -> (B, H, F, d)
            return (x @ w).reshape(b, f, self.heads, self.d).transpose(1, 2)

        q, k, v = heads(self.w_query), heads(self.w_key), heads(self.w_value)
        scores = q @ k.transpose(-1, -2)                        # (B, H, F, F)
        if self.scaling:
            scores = scores / self.d ** 0.5
        out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, f, -1)
        if self.w_res is not None:
            out = out + x @ self.w_res
        return torch.relu(out)


@register_model("autoint")
class AutoInt(EmbeddingMLP):
    """AutoInt: ``att_layer_num`` interacting layers over the fields (sparse embeddings and
    pooled sequences, all of one embedding_dim), flattened, beside an MLP over all inputs;
    one linear layer maps both to the logit. Without an MLP the dense values enter that
    linear layer directly (they are never dropped).

    Args:
        dnn_feature_columns: all feature declarations.
        att_layer_num, att_embedding_size, att_head_num, att_res: the interacting layers
            (DeepCTR's names and defaults 3, 8, 2, True).
        att_scaling: divide attention logits by √d (the paper does not).
        linear_feature_columns: features (or names) of an added linear (wide) logit, as
            DeepCTR-Torch's AutoInt has; None or ``[]`` (default): none.
        l2_reg_linear: L2 strength on the linear weights.
        dnn_hidden_units: the MLP (``()``: none).
        Other arguments: see :class:`~ctrkit.models.embedding_mlp.EmbeddingMLP`.

    Raises:
        ConfigError: fields of different embedding_dim, no interacting layer and no MLP.
    """

    def __init__(self, dnn_feature_columns: Sequence[Feature], att_layer_num: int = 3,
                 att_embedding_size: int = 8, att_head_num: int = 2, att_res: bool = True,
                 dnn_hidden_units: Sequence[int] = (256, 128),
                 dnn_activation: Union[str, type] = "relu", l2_reg_dnn: float = 0.0,
                 l2_reg_embedding: float = 1e-5, dnn_use_bn: bool = False,
                 dnn_dropout: float = 0.0, init_std: Optional[float] = None,
                 seed: Optional[int] = 1024, task: str = "binary", device: Any = "cpu",
                 gpus: Any = None, att_scaling: bool = False,
                 share_history_embeddings: bool = True,
                 embedding_regularizer: Any = "l2", init: Any = "ctrkit",
                 linear_feature_columns: Optional[Sequence[Any]] = None,
                 l2_reg_linear: float = 1e-5) -> None:
        units = tuple(int(u) for u in dnn_hidden_units)
        if isinstance(att_layer_num, bool) or int(att_layer_num) < 0:
            raise ConfigError(f"att_layer_num must be an integer >= 0, got {att_layer_num!r}.")
        if not units and not att_layer_num:
            raise ConfigError("att_layer_num=0 and dnn_hidden_units=() leave no network; keep "
                              "at least one interacting layer or one hidden layer.")
        super().__init__(dnn_feature_columns, units or (1,), dnn_activation, dnn_dropout,
                         dnn_use_bn, l2_reg_dnn, l2_reg_embedding, init_std, seed, task, device,
                         gpus, share_history_embeddings, embedding_regularizer, init)
        self.use_dnn = bool(units)
        if not self.use_dnn:
            del self.dnn
        self.int_layers = nn.ModuleList()
        width = None
        if att_layer_num:
            self.check_equal_dims("AutoInt")
            width = self.fields[0].embedding_dim
            for _ in range(int(att_layer_num)):
                layer = InteractingLayer(width, att_embedding_size, att_head_num, att_res,
                                         att_scaling)
                self.int_layers.append(layer)
                width = layer.output_dim
        out = (len(self.fields) * width if att_layer_num else 0)
        out += units[-1] if units else self.dense_dim
        self.dnn_linear = nn.Linear(out, 1, bias=False)
        self.initializer.output_(self.dnn_linear)
        self.linear = self.optional_linear(linear_feature_columns, l2_reg_linear)

    def forward(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """``batch`` of B rows -> logits (B,)."""
        fields = self.field_embeddings(batch)
        parts = []
        if len(self.int_layers):
            x = torch.stack(fields, dim=1)
            for layer in self.int_layers:
                x = layer(x)
            parts.append(x.flatten(1))
        if self.use_dnn:
            parts.append(self.dnn(self.dnn_input(batch, fields)))
        else:
            parts += self.dense_values(batch, self.dense)
        logit = self.dnn_linear(torch.cat(parts, dim=-1)).squeeze(-1)
        if self.linear is not None:
            logit = logit + self.linear(batch)
        return self.head(logit)
