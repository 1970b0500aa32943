"""Callbacks for ``fit``/``evaluate``/``predict`` (Keras protocol)."""
from .backup_and_restore import BackupAndRestore
from .base import Callback, CallbackList, check_callbacks
from .history import History
from .progbar import ProgbarLogger

__all__ = ["BackupAndRestore", "Callback", "CallbackList", "History", "ProgbarLogger",
           "check_callbacks"]
