"""The DIEN plug-in: registers the model 'dien' and the layer 'attentional_gru'."""
from .gru import AttentionalGRU, gru_packed, pack_positions
from .model import DIEN

__all__ = ["DIEN", "AttentionalGRU", "gru_packed", "pack_positions"]
