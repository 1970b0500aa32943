"""LambdaCallback: a callback built from plain functions."""
from __future__ import annotations

from typing import Callable

from ..errors import CallbackError
from ..registry import CALLBACKS
from .base import HOOKS, Callback


@CALLBACKS.register("lambda_callback")
class LambdaCallback(Callback):
    """Call the given functions from the matching hooks.

    Hooks that take an epoch or batch index get ``f(index, logs)``; the others ``f(logs)``.
    ``logs`` is always a dict (possibly empty). Any hook of :class:`Callback` may be given.

    Raises:
        CallbackError: an unknown hook name (the message lists the hooks) or a value that is
            not callable.

    Example:
        >>> losses = []
        >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
    """

    def __init__(self, **hooks: Callable) -> None:
        super().__init__()
        for name, fn in hooks.items():
            if name not in HOOKS:
                raise CallbackError(f"LambdaCallback got an unknown hook '{name}'; the hooks "
                                    f"are {HOOKS}.")
            if fn is None:
                continue
            if not callable(fn):
                raise CallbackError(f"LambdaCallback({name}={fn!r}) must be a function.")
            setattr(self, name, fn)
