"""Multi-layer perceptron with named activations, dropout, batch norm and an L2 penalty."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import LAYERS
from .activations import activation_takes_mask, create_activation
from .init import InitSpec, resolve_init


@LAYERS.register("mlp")
class MLP(nn.Module):
    """Stack of ``Linear -> [BatchNorm] -> activation -> [Dropout]``.

    Args:
        input_dim: width of the input.
        hidden_units: widths of the hidden layers.
        activation: name in the activation registry, an ``nn.Module`` class, or an instance.
        dropout: dropout rate in [0, 1).
        use_bn: batch-normalise each layer's pre-activation.
        l2_reg: strength of the L2 penalty on the weight matrices (not biases), returned by
            :meth:`l2_penalty` and added to the training loss by the trainer.
        init: how the layers start (see :mod:`ctrkit.layers.init`): an Initializer or scheme
            name; None: the scheme of the model being built (default ``'ctrkit'``:
            He-uniform weights, zero biases); a float: DeepCTR's N(0, float) weights.

    Shapes: (N, input_dim) -> (N, hidden_units[-1]).

    Example:
        >>> import torch
        >>> mlp = MLP(12, (32, 8), activation="prelu", dropout=0.1)
        >>> mlp(torch.randn(5, 12)).shape
        torch.Size([5, 8])
    """

    def __init__(self, input_dim: int, hidden_units: Sequence[int], activation: Union[str, type, nn.Module] = "relu",
                 dropout: float = 0.0, use_bn: bool = False, l2_reg: float = 0.0,
                 init: InitSpec = None) -> None:
        super().__init__()
        hidden_units = list(hidden_units)
        if not hidden_units or any(int(h) < 1 for h in hidden_units):
            raise ConfigError(f"hidden_units must be a non-empty list of positive widths, got "
                              f"{hidden_units!r}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {dropout!r}.")
        if float(l2_reg) < 0:
            raise ConfigError(f"l2_reg must be >= 0, got {l2_reg!r}.")
        dims = [int(input_dim)] + [int(h) for h in hidden_units]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm1d(d) for d in dims[1:]) if use_bn else None
        self.activations = nn.ModuleList(create_activation(activation, d) for d in dims[1:])
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.l2_reg = float(l2_reg)
        self.output_dim = dims[-1]
        initializer = resolve_init(init)
        for lin in self.linears:
            initializer.hidden_(lin)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        for i, lin in enumerate(self.linears):
            x = lin(x)
            if self.bns is not None:
                x = self.bns[i](x)
            act = self.activations[i]
            x = act(x, mask) if (mask is not None and activation_takes_mask(act)) else act(x)
            x = self.dropout(x)
        return x

    def l2_penalty(self) -> torch.Tensor:
        """``l2_reg * sum(W**2)`` over the weight matrices (0 when ``l2_reg`` is 0)."""
        if self.l2_reg == 0.0:
            return self.linears[0].weight.new_zeros(())
        return self.l2_reg * sum((lin.weight ** 2).sum() for lin in self.linears)
