"""Optimizers by name, with DeepCTR-Torch's default learning rates."""
from __future__ import annotations

from typing import Any, Iterable, Optional, Union

import torch

from ..errors import ConfigError
from ..registry import OPTIMIZERS

#: named optimizers built with ``fused=True`` when torch supports it for the parameters.
FUSED = ("adam", "adamw")

DEFAULT_LR = {"sgd": 0.01, "adam": 0.001, "adamw": 0.001, "adagrad": 0.01, "rmsprop": 0.01}

OPTIMIZERS.register("sgd", torch.optim.SGD)
OPTIMIZERS.register("adam", torch.optim.Adam)
OPTIMIZERS.register("adamw", torch.optim.AdamW)
OPTIMIZERS.register("adagrad", torch.optim.Adagrad)
OPTIMIZERS.register("rmsprop", torch.optim.RMSprop)


def create_optimizer(spec: Union[str, type, torch.optim.Optimizer], params: Iterable[torch.nn.Parameter],
                     lr: Optional[float] = None, **kwargs: Any) -> torch.optim.Optimizer:
    """Build an optimizer from a name, a ``torch.optim.Optimizer`` class or instance.

    ``lr=None`` takes the named optimizer's default (DeepCTR's: sgd/adagrad/rmsprop 0.01,
    adam/adamw 0.001). ``'adam'``/``'adamw'`` use torch's fused kernel where it is available
    (pass ``fused=False`` through a torch optimizer class or instance to opt out). An instance
    is used as given (``lr``, if passed, overrides its groups).
    """
    if lr is not None and not float(lr) > 0:
        raise ConfigError(f"lr must be > 0, got {lr!r}.")
    if isinstance(spec, torch.optim.Optimizer):
        if lr is not None:
            for g in spec.param_groups:
                g["lr"] = float(lr)
        return spec
    if isinstance(spec, str):
        cls = OPTIMIZERS.get(spec)
        lr = DEFAULT_LR.get(spec.lower(), 0.001) if lr is None else lr
        params = list(params)
        if spec.lower() in FUSED and "fused" not in kwargs and "foreach" not in kwargs:
            # torch's fused Adam/AdamW kernel: the same update up to float rounding, ~3x faster
            # per step than the default loop on CPU. Fall back where it is not supported.
            try:
                return cls(params, lr=float(lr), fused=True, **kwargs)
            except (RuntimeError, ValueError, TypeError):
                pass
        return cls(params, lr=float(lr), **kwargs)
    if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
        return spec(params, **({"lr": float(lr)} if lr is not None else {}), **kwargs)
    raise ConfigError(f"optimizer must be a name {OPTIMIZERS.list()}, a torch.optim.Optimizer "
                      f"class or instance, got {spec!r}.")
