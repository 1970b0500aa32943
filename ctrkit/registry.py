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
    """Decorator registering a model class: ``@ctrkit.register_model("mymodel")``."""
    return MODELS.register(name, override=override)


def register_layer(name: Optional[str] = None, *, override: bool = False) -> Callable[[T], T]:
    return LAYERS.register(name, override=override)


def register_activation(name: Optional[str] = None, *, override: bool = False) -> Callable[[T], T]:
    return ACTIVATIONS.register(name, override=override)


def register_metric(name: Optional[str] = None, obj: Any = None, *, override: bool = False):
    return METRICS.register(name, obj, override=override)


def register_loss(name: Optional[str] = None, obj: Any = None, *, override: bool = False):
    return LOSSES.register(name, obj, override=override)


def register_optimizer(name: Optional[str] = None, obj: Any = None, *, override: bool = False):
    return OPTIMIZERS.register(name, obj, override=override)


def register_regularizer(name: Optional[str] = None, obj: Any = None, *, override: bool = False):
    return REGULARIZERS.register(name, obj, override=override)
