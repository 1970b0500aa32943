"""Old import paths of modules that moved, kept working.

Round 3 gave Keras's nouns their own top-level homes (``ctrkit.callbacks``, ``ctrkit.metrics``,
``ctrkit.strategies``, ...). Code written against the old paths (``ctrkit.training.callbacks``,
``ctrkit.training.distributed``, ...) still imports: a finder on ``sys.meta_path`` answers an old
name with the module object of its new home, so both names are one module (one class per name,
``isinstance`` holds across them) and nothing is loaded twice.

    >>> import importlib
    >>> old = importlib.import_module("ctrkit.training.callbacks.early_stopping")
    >>> old is importlib.import_module("ctrkit.callbacks.early_stopping")
    True
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Dict, Optional, Sequence

# old module (or package prefix) -> new module; a package entry covers its submodules too
MOVED: Dict[str, str] = {
    "ctrkit.training.callbacks": "ctrkit.callbacks",
    "ctrkit.training.metrics": "ctrkit.metrics.base",
    "ctrkit.training.gauc": "ctrkit.metrics.gauc",
    "ctrkit.training.exact_auc": "ctrkit.metrics.exact_auc",
    "ctrkit.training.approx_auc": "ctrkit.metrics.approx_auc",
    "ctrkit.training.prediction_store": "ctrkit.metrics.prediction_store",
    "ctrkit.training.losses": "ctrkit.losses",
    "ctrkit.training.optimizers": "ctrkit.optimizers",
    "ctrkit.training.regularizers": "ctrkit.regularizers",
    "ctrkit.training.allocator": "ctrkit.utils.allocator",
    "ctrkit.training.distributed": "ctrkit.strategies",
    "ctrkit.training.torchrec_strategy": "ctrkit.strategies.torchrec",
}


def new_name(old: str) -> Optional[str]:
    """The new home of module ``old``, or None when it did not move.

    Example:
        >>> new_name("ctrkit.training.callbacks.history")
        'ctrkit.callbacks.history'
        >>> new_name("ctrkit.training.trainer") is None
        True
    """
    for prefix, target in MOVED.items():
        if old == prefix:
            return target
        if old.startswith(prefix + "."):
            return target + old[len(prefix):]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        # already executed under its new name; importlib stamped the alias spec on it: undo that
        module.__spec__ = self.spec


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Resolve an old module path to the already-imported module of its new home."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        target_name = new_name(fullname)
        if target_name is None:
            return None
        module = importlib.import_module(target_name)
        return importlib.machinery.ModuleSpec(fullname, _Alias(module),
                                              is_package=hasattr(module, "__path__"))


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
