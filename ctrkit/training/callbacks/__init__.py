"""Callbacks for ``fit``/``evaluate``/``predict`` (Keras protocol)."""
from .base import Callback, CallbackList, check_callbacks
from .history import History
from .progbar import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "check_callbacks"]
