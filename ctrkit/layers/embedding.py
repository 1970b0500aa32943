"""Embedding tables keyed by table name, shared by every feature that maps to the same table."""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..features import DenseFeat, Feature
from ..registry import LAYERS


@LAYERS.register("embedding_tables")
class EmbeddingTables(nn.Module):
    """One ``nn.Embedding`` per table; features look up their table by name.

    Args:
        features: the declarations (dense features are ignored).
        table_of: feature name -> table name (defaults to each feature's ``embedding_name``).
        init_std: standard deviation of the normal initialisation.

    Shapes: ``lookup(feature, ids)`` maps (B,) -> (B, E) and (B, T) -> (B, T, E).

    Raises:
        ConfigError: two features mapped to one table declare different embedding_dim.
    """

    def __init__(self, features: Iterable[Feature], table_of: Mapping[str, str] = None,
                 init_std: float = 1e-4) -> None:
        super().__init__()
        specs: Dict[str, Tuple[int, int, str]] = {}
        self.table_of: Dict[str, str] = {}
        for f in features:
            if isinstance(f, DenseFeat):
                continue
            table = (table_of or {}).get(f.name, f.embedding_name)
            self.table_of[f.name] = table
            if table in specs:
                vocab, dim, first = specs[table]
                if dim != f.embedding_dim:
                    raise ConfigError(
                        f"Features '{first}' and '{f.name}' share embedding table '{table}' but "
                        f"have embedding_dim {dim} vs {f.embedding_dim}; give them the same "
                        f"embedding_dim or separate embedding_names.")
                specs[table] = (max(vocab, f.vocabulary_size), dim, first)
            else:
                specs[table] = (f.vocabulary_size, f.embedding_dim, f.name)
        self.tables = nn.ModuleDict(
            {t: nn.Embedding(v, d) for t, (v, d, _) in specs.items()})
        for emb in self.tables.values():
            nn.init.normal_(emb.weight, mean=0.0, std=init_std)

    def table(self, feature: str) -> nn.Embedding:
        return self.tables[self.table_of[feature]]

    def lookup(self, feature: str, ids: torch.Tensor) -> torch.Tensor:
        return self.tables[self.table_of[feature]](ids)
