"""Train/eval mode of a model shared by threads: inference passes never leave it in the wrong mode.

``predict``, ``evaluate`` and ``explain`` switch a model to eval mode and restore its mode
after. Done naively, two threads predicting with one model (a threaded server) race: the first
to finish restores train mode while the other is still predicting, whose remaining batches then
silently use batch statistics (Dice, batch norm) and dropout. Here concurrent inference passes
share one eval-mode section: the first to enter switches to eval, the last to leave restores
the mode the model had. ``fit`` is exclusive: it is refused while another thread runs an
inference pass or another fit on the same model, and an inference pass from another thread is
refused while a fit runs (inside fit's own thread, e.g. validation or a callback's
``predict``, inference nests as before).

The state lives beside the model (a weak-keyed table), not on it, so models stay picklable and
deep-copyable.
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Iterator, Optional

from ..errors import ConfigError


class _ModeState:
    __slots__ = ("depth", "was_training", "fit_thread", "fit_depth")

    def __init__(self) -> None:
        self.depth = 0                      # inference passes running (all threads)
        self.was_training = False           # the mode to restore when the last one leaves
        self.fit_thread: Optional[int] = None
        self.fit_depth = 0                  # fit calls running in fit_thread (nested: a callback's fit)


_LOCK = threading.Lock()
_STATES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _state(model) -> _ModeState:
    st = _STATES.get(model)
    if st is None:
        st = _STATES[model] = _ModeState()
    return st


def _refuse(what: str, running: str) -> ConfigError:
    return ConfigError(
        f"{what} was called from another thread while {running} runs on this model. One "
        f"model cannot train and predict at the same time (predict switches it to eval mode, "
        f"fit to train mode); wait for it to finish, or predict with a copy "
        f"(copy.deepcopy(model)).")


@contextlib.contextmanager
def inference(model, what: str = "predict") -> Iterator[None]:
    """Eval mode for one inference pass, shared with concurrent passes (see the module doc)."""
    me = threading.get_ident()
    with _LOCK:
        st = _state(model)
        if st.fit_thread is not None and st.fit_thread != me:
            raise _refuse(what, "fit")
        if st.depth == 0:
            st.was_training = model.training
            model.eval()
        st.depth += 1
    try:
        yield
    finally:
        with _LOCK:
            st.depth -= 1
            if st.depth == 0:
                model.train(st.was_training)


@contextlib.contextmanager
def training(model) -> Iterator[None]:
    """Mark ``fit`` as running on ``model`` in this thread (see the module doc)."""
    me = threading.get_ident()
    with _LOCK:
        st = _state(model)
        if st.fit_thread is not None and st.fit_thread != me:
            raise _refuse("fit", "fit")
        if st.depth and st.fit_thread is None:
            raise _refuse("fit", "predict (or evaluate, explain)")
        st.fit_thread, st.fit_depth = me, st.fit_depth + 1
    try:
        yield
    finally:
        with _LOCK:
            st.fit_depth -= 1
            if st.fit_depth == 0:
                st.fit_thread = None


__all__ = ["inference", "training"]
