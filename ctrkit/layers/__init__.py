"""Reusable layers: embedding tables, masked pooling, MLP, activations, prediction head."""
from .activations import create_activation
from .embedding import EmbeddingTables
from .head import PredictionHead
from .mlp import MLP
from .pooling import SequencePooling, masked_pool, sequence_mask

__all__ = ["create_activation", "EmbeddingTables", "PredictionHead", "MLP", "SequencePooling",
           "masked_pool", "sequence_mask"]
