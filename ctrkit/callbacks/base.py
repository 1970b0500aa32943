"""The callback protocol: a base class with empty hooks, and the list that calls them in order."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from ..errors import CallbackError


class Callback:
    """Base class for callbacks: override any hook; all of them do nothing by default.

    ``self.model`` is the model being trained (set by :meth:`set_model`) and ``self.params``
    holds ``epochs``, ``steps``, ``batch_size``, ``samples``, ``verbose`` and ``metrics``.
    Batch logs carry ``loss``; epoch logs carry ``loss``, every metric and every ``val_*`` key.
    Stop training by setting ``self.model.stop_training = True``.

    Example:
        >>> class PrintLoss(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(epoch, logs["loss"])
    """

    #: True for callbacks that print or write files: under DDP only rank 0 runs them.
    rank_zero_only: bool = False

    def __init__(self) -> None:
        self.model = None
        self.params: Dict[str, Any] = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: Optional[Dict[str, Any]]) -> None:
        self.params = {} if params is None else params

    def state_dict(self) -> Dict[str, Any]:
        """Plain-data state needed to resume this callback mid-training (counters, best
        value); empty for stateless callbacks. Tensors are allowed (``torch.load``-safe)."""
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None: ...
    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        """Called before each training step; by default calls :meth:`on_batch_begin`, Keras's
        older name for this hook, so a callback that overrides either one is called."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        """Called after each training step; by default calls :meth:`on_batch_end` (Keras's
        older name for this hook)."""
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        """Keras's alias of :meth:`on_train_batch_begin` (training batches only)."""

    def on_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        """Keras's alias of :meth:`on_train_batch_end` (training batches only)."""

    def on_test_begin(self, logs: Optional[Dict[str, Any]] = None) -> None: ...
    def on_test_end(self, logs: Optional[Dict[str, Any]] = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None: ...
    def on_predict_begin(self, logs: Optional[Dict[str, Any]] = None) -> None: ...
    def on_predict_end(self, logs: Optional[Dict[str, Any]] = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None: ...


HOOKS = [name for name in vars(Callback) if name.startswith("on_")]
#: hooks whose first argument is an epoch or batch index (the others take only ``logs``).
INDEXED_HOOKS = frozenset(h for h in HOOKS if "epoch" in h or "batch" in h)


class CallbackList:
    """Calls each hook on every callback, in list order.

    Every callback of one call receives the same ``logs`` dict (a new empty dict when the
    caller passes none), so a key one callback adds (``lr``) is seen by the later ones.

    Example:
        >>> class Mark(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         logs["seen"] = logs.get("seen", 0) + 1
        >>> logs = {}
        >>> CallbackList([Mark(), Mark()]).on_epoch_end(0, logs)
        >>> logs
        {'seen': 2}
    """

    def __init__(self, callbacks: Optional[Iterable[Callback]] = None) -> None:
        self.callbacks: List[Callback] = list(check_callbacks(callbacks))
        self.model = None
        self.params: Dict[str, Any] = {}

    def append(self, callback: Callback) -> None:
        """Add ``callback`` at the end (after a ``set_model``/``set_params``, it gets those too).

        Raises:
            CallbackError: ``callback`` is not a :class:`Callback`.
        """
        (callback,) = check_callbacks([callback])
        if self.model is not None:
            callback.set_model(self.model)
        if self.params:
            callback.set_params(self.params)
        self.callbacks.append(callback)

    def set_model(self, model) -> None:
        self.model = model
        for c in self.callbacks:
            c.set_model(model)

    def set_params(self, params: Optional[Dict[str, Any]]) -> None:
        self.params = {} if params is None else params
        for c in self.callbacks:
            c.set_params(self.params)

    def __getattr__(self, hook: str):
        if hook.startswith("__") or hook not in HOOKS:
            raise AttributeError(hook)
        indexed = hook in INDEXED_HOOKS

        def call(*args: Any, **kwargs: Any) -> None:
            # Keras's forms: hook(logs), hook(logs=...), hook(i, logs), hook(i, logs=...).
            args = list(args)
            if "logs" in kwargs:
                args.append(kwargs.pop("logs"))
            if kwargs:
                raise TypeError(f"CallbackList.{hook}() got unexpected keyword arguments "
                                f"{sorted(kwargs)}; it takes {'(index, logs)' if indexed else '(logs)'}.")
            n_args = 2 if indexed else 1
            if len(args) > n_args or (indexed and not args):
                raise TypeError(f"CallbackList.{hook}() takes "
                                f"{'(index, logs=None)' if indexed else '(logs=None)'}, got "
                                f"{len(args)} positional arguments.")
            if len(args) < n_args or args[n_args - 1] is None:
                args = args[:n_args - 1] + [{}]
            for c in self.callbacks:
                getattr(c, hook)(*args)
        return call

    def __iter__(self):
        return iter(self.callbacks)


def check_callbacks(callbacks: Optional[Iterable[Any]]) -> List[Callback]:
    """Return ``callbacks`` as a list, refusing anything that is not a :class:`Callback`.

    Raises:
        CallbackError: an entry is not a Callback (says how to wrap a function).

    Example:
        >>> len(check_callbacks(Callback())), check_callbacks(None)
        (1, [])
        >>> check_callbacks([print])
        Traceback (most recent call last):
        ...
        ctrkit.errors.CallbackError: callbacks[0] is <built-in function print> (builtin_function_or_method), not a ctrkit.callbacks.Callback. Subclass ctrkit.callbacks.Callback, or wrap functions in LambdaCallback.
    """
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    out = []
    for i, c in enumerate(callbacks):
        if not isinstance(c, Callback):
            raise CallbackError(
                f"callbacks[{i}] is {c!r} ({type(c).__name__}), not a ctrkit.callbacks.Callback. "
                f"Subclass ctrkit.callbacks.Callback, or wrap functions in LambdaCallback.")
        out.append(c)
    return out


def check_non_negative_int(owner: str, name: str, value: Any) -> int:
    """``value`` as an int, or :class:`CallbackError` naming ``owner(name=value)``."""
    if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) < 0:
        raise CallbackError(f"{owner}({name}={value!r}) must be an integer >= 0.")
    return int(value)
