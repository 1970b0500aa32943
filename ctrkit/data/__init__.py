"""Data preparation: categorical encoders, behaviour sequences from event logs, time splits."""
from .encoders import OOV_ID, PAD_ID, CategoricalEncoder
from .sequences import build_behavior_sequences, history_positions, take_rows, time_split

__all__ = ["CategoricalEncoder", "PAD_ID", "OOV_ID", "build_behavior_sequences",
           "history_positions", "take_rows", "time_split"]
