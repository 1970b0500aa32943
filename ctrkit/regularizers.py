"""Public regularizer API."""
from .registry import register_regularizer
from .training.regularizers import Regularizer, WholeTableL2, create_regularizer

__all__ = ["Regularizer", "WholeTableL2", "create_regularizer", "register_regularizer"]
