"""Optimizers by name, with DeepCTR-Torch's default learning rates."""
from __future__ import annotations

import inspect
from typing import Any, Iterable, Optional, Union

import torch

from .errors import ConfigError
from .registry import OPTIMIZERS

#: named optimizers built with ``fused=True`` when torch supports it for the parameters.
FUSED = ("adam", "adamw")

#: default learning rates: DeepCTR-Torch's for sgd/adagrad/rmsprop; Adam/AdamW 3e-3, not
#: DeepCTR's/Keras's 1e-3, chosen by measurement (docs/defaults.md).
DEFAULT_LR = {"sgd": 0.01, "adam": 0.003, "adamw": 0.003, "adagrad": 0.01, "rmsprop": 0.01}


_GUARDED = ("step", "zero_grad", "add_param_group", "state_dict", "load_state_dict")


def _unguarded_step(raw):
    def step(self, *args: Any, **kwargs: Any) -> Any:
        prev = torch.is_grad_enabled()  # what step's guard does besides the dynamo calls
        torch.set_grad_enabled(bool(self.defaults.get("differentiable", False)))
        try:
            return raw(self, *args, **kwargs)
        finally:
            torch.set_grad_enabled(prev)

    step.__doc__ = raw.__doc__
    return step


def _eager(base: type) -> type:
    """``base`` (a torch optimizer class) with its methods run without importing dynamo.

    torch wraps ``Optimizer.step``, ``zero_grad``, ``add_param_group``, ``state_dict`` and
    ``load_state_dict`` in guards for ``torch.compile`` whose first call imports
    ``torch._dynamo`` and with it sympy: tens of MB of resident memory (see
    ``docs/performance.md``) in a process that never compiles anything. The subclass calls the same functions underneath the guards, found once
    here (same arithmetic, same state and ``state_dict`` as ``base``; step hooks and LR
    schedulers work as usual). A method this torch does not guard is inherited unchanged.
    """
    methods = {}
    for name in _GUARDED:
        guarded = getattr(base, name)
        raw = inspect.unwrap(guarded)
        if raw is not guarded:
            methods[name] = _unguarded_step(raw) if name == "step" else raw
    return type(base.__name__, (base,), {
        **methods, "__module__": __name__, "__qualname__": base.__name__,
        "__doc__": f"``torch.optim.{base.__name__}`` without torch.compile guards (see "
                   f"_eager): the same updates and state."})


SGD, Adam, AdamW, Adagrad, RMSprop = (_eager(c) for c in (
    torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.Adagrad, torch.optim.RMSprop))

for _cls in (SGD, Adam, AdamW, Adagrad, RMSprop):
    OPTIMIZERS.register(_cls.__name__.lower(), _cls)


def create_optimizer(spec: Union[str, type, torch.optim.Optimizer], params: Iterable[torch.nn.Parameter],
                     lr: Optional[float] = None, **kwargs: Any) -> torch.optim.Optimizer:
    """Build an optimizer from a name, a ``torch.optim.Optimizer`` class or instance.

    ``lr=None`` takes the named optimizer's default (DeepCTR's for sgd/adagrad/rmsprop: 0.01;
    adam/adamw 0.003, where DeepCTR and Keras use 0.001: see docs/defaults.md). ``'adam'``/``'adamw'`` use torch's fused kernel where it is available
    (pass ``fused=False`` through a torch optimizer class or instance to opt out). An instance
    is used as given (``lr``, if passed, overrides its groups).
    """
    if lr is not None:
        try:
            lr_value = None if isinstance(lr, bool) else float(lr)
        except (TypeError, ValueError):
            lr_value = None
        if lr_value is None:
            raise ConfigError(
                f"lr (learning_rate) must be a number > 0, got {lr!r}. A learning-rate schedule "
                f"is a callback: fit(callbacks=[LearningRateScheduler(lambda epoch, lr: ...)]).")
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
            # torch's fused Adam/AdamW kernel: the same update up to float rounding, faster per
            # step than the default loop on CPU. Fall back where it is not supported.
            try:
                return cls(params, lr=float(lr), fused=True, **kwargs)
            except (RuntimeError, ValueError, TypeError):
                pass
        return cls(params, lr=float(lr), **kwargs)
    if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
        return spec(params, **({"lr": float(lr)} if lr is not None else {}), **kwargs)
    raise ConfigError(f"optimizer must be a name {OPTIMIZERS.list()}, a torch.optim.Optimizer "
                      f"class or instance, got {spec!r}.")
