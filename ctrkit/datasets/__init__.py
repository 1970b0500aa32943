"""Built-in data sets: a synthetic behaviour generator (the default)."""
from .synthetic import make_synthetic

__all__ = ["make_synthetic"]
