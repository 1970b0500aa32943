"""The DIN plug-in: registers the model 'din', the activation 'dice', and its attention layers."""
from .attention import AttentionPooling, LocalActivationUnit, masked_softmax, segment_softmax
from .dice import Dice
from .model import DIN, find_history_pairs, shared_history_table_of

__all__ = ["DIN", "Dice", "AttentionPooling", "LocalActivationUnit", "find_history_pairs",
           "shared_history_table_of", "masked_softmax", "segment_softmax"]
