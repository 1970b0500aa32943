"""Public regularizer API."""
from .registry import register_regularizer
from .training.regularizers import MBA, Regularizer, WholeTableL2, create_regularizer

__all__ = ["Regularizer", "WholeTableL2", "MBA", "create_regularizer", "register_regularizer"]
