"""Trainer, callbacks, metrics, losses, optimizers and regularizers."""
from .trainer import Trainer

__all__ = ["Trainer"]
