"""Name -> factory registries.

Every name lookup in ctrkit (models, layers, activations, metrics, losses, optimizers,
regularizers, callbacks) goes through one :class:`Registry` class, so wrong names fail the same
helpful way everywhere::

    >>> from ctrkit.registry import MODELS
    >>> MODELS.get("dinn")
    Traceback (most recent call last):
    ...
    ctrkit.errors.UnknownNameError: Unknown model 'dinn'. Did you mean 'din'? Registered models: [...]
"""
from __future__ import annotations

import contextlib
import difflib
import fnmatch
from typing import Any, Callable, Dict, Iterator, List, Optional, TypeVar

from .errors import DuplicateNameError, UnknownNameError

T = TypeVar("T")


class Registry:
    """A case-insensitive mapping from names to classes or callables.

    Args:
        kind: what the registry holds, singular ("model", "activation"); used in messages.

    Example:
        >>> r = Registry("thing")
        >>> @r.register("mine")
        ... class Mine: pass
        >>> r.get("Mine") is Mine
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, Any] = {}

    @staticmethod
    def _key(name: str) -> str:
        if not isinstance(name, str) or not name:
            raise UnknownNameError(f"A registry name must be a non-empty string, got {name!r}.")
        return name.lower()

    def register(self, name: Optional[str] = None, obj: Any = None, *, override: bool = False):
        """Register ``obj`` under ``name``; without ``obj`` return a decorator.

        The decorator returns the object unchanged. ``name`` defaults to the object's
        ``__name__`` lower-cased.

        Raises:
            DuplicateNameError: ``name`` is taken and ``override`` is False.
        """

        def _do(o: T) -> T:
            key = self._key(name if name is not None else getattr(o, "__name__", ""))
            if key in self._items and not override and self._items[key] is not o:
                raise DuplicateNameError(
                    f"The {self.kind} name '{key}' is already registered "
                    f"(to {self._items[key]!r}). Pass override=True to replace it, or choose "
                    f"another name.")
            self._items[key] = o
            return o

        if obj is not None:
            return _do(obj)
        return _do

    def unregister(self, name: str) -> None:
        """Remove ``name`` (raises :class:`UnknownNameError` if absent)."""
        self.get(name)
        del self._items[self._key(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def get(self, name: str) -> Any:
        """Return the factory registered under ``name``.

        Raises:
            UnknownNameError: naming the closest registered name and listing all of them.
        """
        key = self._key(name)
        if key in self._items:
            return self._items[key]
        names = self.list()
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownNameError(
            f"Unknown {self.kind} '{name}'.{hint} Registered {self._plural()}: {names}")

    def _plural(self) -> str:
        return self.kind + ("es" if self.kind.endswith(("s", "x", "ch", "sh")) else "s")

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Look ``name`` up and call it with the given arguments."""
        return self.get(name)(*args, **kwargs)

    def list(self, pattern: Optional[str] = None) -> List[str]:
        """Sorted registered names, optionally filtered by a shell-style ``pattern``."""
        names = sorted(self._items)
        if pattern is not None:
            names = [n for n in names if fnmatch.fnmatch(n, pattern.lower())]
        return names

    def items(self) -> Iterator:
        return iter(sorted(self._items.items()))

    @contextlib.contextmanager
    def scope(self) -> Iterator["Registry"]:
        """Context manager: anything registered or removed inside is undone on exit."""
        saved = dict(self._items)
        try:
            yield self
        finally:
            self._items.clear()
            self._items.update(saved)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"


MODELS = Registry("model")
LAYERS = Registry("layer")
ACTIVATIONS = Registry("activation")
METRICS = Registry("metric")
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")
REGULARIZERS = Registry("regularizer")
CALLBACKS = Registry("callback")
#: fitted data encoders (``to_dict()``/``from_dict()``/``transform()``) saved with a model.
ENCODERS = Registry("encoder")

REGISTRIES = {r.kind: r for r in (MODELS, LAYERS, ACTIVATIONS, METRICS, LOSSES, OPTIMIZERS,
                                  REGULARIZERS, CALLBACKS, ENCODERS)}


def register_model(name: Optional[str] = None, *, override: bool = False) -> Callable[[T], T]:
    """Decorator registering a model class: ``@ctrkit.register_model("mymodel")``.

    Args:
        name: the registered name (default: the class name, lower-cased).
        override: replace a model already registered under ``name``.

    Returns:
        A decorator that registers the class and returns it unchanged.

    Raises:
        DuplicateNameError: ``name`` is taken and ``override`` is False.

    Example:
        >>> import ctrkit
        >>> with ctrkit.MODELS.scope():               # tests: nothing leaks out
        ...     @ctrkit.register_model("tiny")
        ...     class Tiny(ctrkit.BaseModel):
        ...         def forward(self, batch):
        ...             return self.head(batch["user"].float())
        ...     "tiny" in ctrkit.list_models()
        True
    """
    return MODELS.register(name, override=override)


def register_layer(name: Optional[str] = None, *, override: bool = False) -> Callable[[T], T]:
    """Decorator registering a layer class (an ``nn.Module``) in ``LAYERS``.

    Args:
        name: the registered name (default: the class name, lower-cased).
        override: replace a layer already registered under ``name``.

    Example:
        >>> import torch
        >>> from ctrkit.registry import LAYERS
        >>> with LAYERS.scope():
        ...     @register_layer("double")
        ...     class Double(torch.nn.Module):
        ...         def forward(self, x):
        ...             return 2 * x
        ...     LAYERS.get("double")()(torch.ones(2)).tolist()
        [2.0, 2.0]
    """
    return LAYERS.register(name, override=override)


def register_activation(name: Optional[str] = None, *, override: bool = False) -> Callable[[T], T]:
    """Decorator registering an activation factory ``f(dim) -> nn.Module`` (or a module class).

    Models then accept its name in ``dnn_activation``/``att_activation``.

    Args:
        name: the registered name (default: the object's name, lower-cased).
        override: replace an activation already registered under ``name``.

    Example:
        >>> import torch
        >>> from ctrkit.registry import ACTIVATIONS
        >>> from ctrkit.layers import create_activation
        >>> with ACTIVATIONS.scope():
        ...     _ = register_activation("softplus")(lambda dim: torch.nn.Softplus())
        ...     create_activation("softplus", 4)
        Softplus(beta=1.0, threshold=20.0)
    """
    return ACTIVATIONS.register(name, override=override)


def register_metric(name: Optional[str] = None, obj: Any = None, *, override: bool = False):
    """Register a metric (a :class:`~ctrkit.metrics.Metric` or ``f(y_true, y_pred) -> float``).

    Args:
        name: the name ``compile(metrics=[...])`` accepts.
        obj: the metric; without it, a decorator.
        override: replace a metric already registered under ``name``.

    Example:
        >>> import numpy as np
        >>> from ctrkit.registry import METRICS
        >>> from ctrkit.metrics import Metric, get_metric
        >>> mean_ctr = Metric("mean_ctr", lambda y, p, **kw: float(np.mean(p)), direction="min")
        >>> with METRICS.scope():
        ...     _ = register_metric("mean_ctr", mean_ctr)
        ...     get_metric("mean_ctr")(np.array([0, 1]), np.array([0.25, 0.75]))
        0.5
    """
    return METRICS.register(name, obj, override=override)


def register_loss(name: Optional[str] = None, obj: Any = None, *, override: bool = False):
    """Register a loss ``f(y_pred, y_true) -> scalar tensor`` for ``compile(loss=name)``.

    Args:
        name: the name ``compile`` accepts.
        obj: the loss; without it, a decorator.
        override: replace a loss already registered under ``name``.

    Example:
        >>> import torch
        >>> from ctrkit.registry import LOSSES
        >>> with LOSSES.scope():
        ...     _ = register_loss("l1", lambda pred, y: (pred - y).abs().mean())
        ...     LOSSES.get("l1")(torch.tensor([0.5]), torch.tensor([1.0])).item()
        0.5
    """
    return LOSSES.register(name, obj, override=override)


def register_optimizer(name: Optional[str] = None, obj: Any = None, *, override: bool = False):
    """Register an optimizer class (``cls(params, lr=...)``) for ``compile(optimizer=name)``.

    Args:
        name: the name ``compile`` accepts.
        obj: the optimizer class; without it, a decorator.
        override: replace an optimizer already registered under ``name``.

    Example:
        >>> import torch
        >>> from ctrkit.registry import OPTIMIZERS
        >>> with OPTIMIZERS.scope():
        ...     _ = register_optimizer("asgd", torch.optim.ASGD)
        ...     OPTIMIZERS.get("ASGD") is torch.optim.ASGD
        True
    """
    return OPTIMIZERS.register(name, obj, override=override)


def register_regularizer(name: Optional[str] = None, obj: Any = None, *, override: bool = False):
    """Register a :class:`~ctrkit.regularizers.Regularizer` class for ``embedding_regularizer=name``.

    Args:
        name: the name models accept in ``embedding_regularizer``.
        obj: the class; without it, a decorator.
        override: replace a regularizer already registered under ``name``.

    Example:
        >>> from ctrkit.registry import REGULARIZERS
        >>> from ctrkit.regularizers import WholeTableL2
        >>> with REGULARIZERS.scope():
        ...     _ = register_regularizer("my_l2", WholeTableL2)
        ...     "my_l2" in REGULARIZERS.list()
        True
    """
    return REGULARIZERS.register(name, obj, override=override)
