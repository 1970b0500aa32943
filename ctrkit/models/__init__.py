"""Built-in models; importing this package registers them."""
from .base import BaseModel
from . import din  # noqa: F401  (registers 'din', 'dice', attention layers)

__all__ = ["BaseModel"]
