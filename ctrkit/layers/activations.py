"""Activation factory: every activation is looked up by name in ``ACTIVATIONS``.

A registered entry is a callable ``factory(dim) -> nn.Module``. ``create_activation`` also takes
an ``nn.Module`` subclass (instantiated with ``dim`` when its constructor asks for it) or an
instance (used as is).
"""
from __future__ import annotations

import inspect
from typing import Any, Union

from torch import nn

from ..errors import ConfigError
from ..registry import ACTIVATIONS

ACTIVATIONS.register("relu", lambda dim: nn.ReLU())
ACTIVATIONS.register("sigmoid", lambda dim: nn.Sigmoid())
ACTIVATIONS.register("tanh", lambda dim: nn.Tanh())
ACTIVATIONS.register("prelu", lambda dim: nn.PReLU())
ACTIVATIONS.register("leaky_relu", lambda dim: nn.LeakyReLU())
ACTIVATIONS.register("gelu", lambda dim: nn.GELU())
ACTIVATIONS.register("linear", lambda dim: nn.Identity())

_DIM_ARGS = ("dim", "num_features", "emb_size", "hidden_size")


def create_activation(act: Union[str, type, nn.Module, None], dim: int) -> nn.Module:
    """Build one activation module for a layer of width ``dim``.

    Args:
        act: a registered name (case-insensitive, e.g. ``"relu"``, ``"Dice"``), an
            ``nn.Module`` subclass, an instance, or ``None`` for identity.
        dim: the layer width (used by per-unit activations such as Dice).

    Raises:
        UnknownNameError: the name is not registered (lists the registered names).

    Example:
        >>> create_activation("relu", 8)
        ReLU()
        >>> create_activation("dice", 8)
        Dice(dim=8, eps=1e-08, momentum=0.1)
    """
    if act is None:
        return nn.Identity()
    if isinstance(act, str):
        return ACTIVATIONS.get(act)(dim)
    if isinstance(act, nn.Module):
        return act
    if isinstance(act, type) and issubclass(act, nn.Module):
        params = list(inspect.signature(act.__init__).parameters)[1:]
        if params and params[0] in _DIM_ARGS:
            return act(dim)
        return act()
    raise ConfigError(f"activation must be a name, an nn.Module class or instance, got {act!r}.")


def activation_takes_mask(module: Any) -> bool:
    """True for activations (like Dice) whose statistics can skip padded positions."""
    return getattr(module, "accepts_mask", False)
