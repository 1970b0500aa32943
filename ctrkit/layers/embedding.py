"""Embedding tables keyed by table name, shared by every feature that maps to the same table."""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..features import DenseFeat, Feature
from ..registry import LAYERS
from .init import InitSpec, resolve_init


_DEFERRED: ContextVar[bool] = ContextVar("ctrkit_deferred_tables", default=False)


@contextlib.contextmanager
def deferred_tables() -> Iterator[None]:
    """Within this block, :class:`EmbeddingTables` record their tables' shapes but allocate
    nothing; a strategy that places the tables (``strategy='torchrec'``) creates and
    initialises them where they live (see
    :func:`ctrkit.strategies.torchrec.sharded_init`)."""
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


@LAYERS.register("embedding_tables")
class EmbeddingTables(nn.Module):
    """One ``nn.Embedding`` per table; features look up their table by name.

    Args:
        features: the declarations (dense features are ignored).
        table_of: feature name -> table name (defaults to each feature's ``embedding_name``).
        init: how the rows start (see :mod:`ctrkit.layers.init`; None: the model's scheme,
            default N(0, 0.05); a float: N(0, float)).

    Shapes: ``lookup(feature, ids)`` maps (B,) -> (B, E) and (B, T) -> (B, T, E);
    ``lookup_many([(feature, ids), ...])`` does the same for several features at once, with one
    lookup per table.

    This is the one interface through which models read embeddings, so a strategy can move the
    tables elsewhere: ``compile(strategy='torchrec')`` shards them across processes (see
    :mod:`ctrkit.strategies.torchrec`) by attaching a backend with :meth:`attach`; the
    lookups then go through it and the model's code is unchanged.

    Raises:
        ConfigError: two features mapped to one table declare different embedding_dim.

    Example:
        >>> import torch
        >>> from ctrkit import SparseFeat, VarLenSparseFeat
        >>> tables = EmbeddingTables(
        ...     [SparseFeat("item", 10, 4),
        ...      VarLenSparseFeat(SparseFeat("hist_item", 10, 4, embedding_name="item"), 5)])
        >>> list(tables.tables), tables.table_of
        (['item'], {'item': 'item', 'hist_item': 'item'})
        >>> tables.lookup("hist_item", torch.zeros(2, 5, dtype=torch.long)).shape
        torch.Size([2, 5, 4])
    """

    def __init__(self, features: Iterable[Feature], table_of: Mapping[str, str] = None,
                 init: InitSpec = None) -> None:
        super().__init__()
        specs: Dict[str, Tuple[int, int, str]] = {}
        self.table_of: Dict[str, str] = {}
        for f in features:
            if isinstance(f, DenseFeat):
                continue
            # a plain str: a name is a state-dict key, which torch.load(weights_only=True) must
            # read (SparseFeat's implicit embedding_name is a str subclass)
            table = str((table_of or {}).get(f.name, f.embedding_name))
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
        #: table name -> (rows, embedding_dim), also once the tables live elsewhere.
        self.specs: Dict[str, Tuple[int, int]] = {t: (v, d) for t, (v, d, _) in specs.items()}
        #: True when the tables were not allocated (built inside :func:`deferred_tables`).
        self.deferred = _DEFERRED.get()
        self.tables = nn.ModuleDict(
            {} if self.deferred else {t: nn.Embedding(v, d) for t, (v, d, _) in specs.items()})
        #: initialises rows (in place): here, or later where deferred tables are created
        self.initializer = resolve_init(init)
        for emb in self.tables.values():
            self.initializer.embedding_(emb.weight)
        #: a module ``{table: flat ids (N,)} -> {table: rows (N, E)}`` that serves the lookups
        #: instead of ``tables`` (None: the local tables).
        self.backend: Optional[nn.Module] = None

    def attach(self, backend: nn.Module) -> None:
        """Serve every lookup through ``backend`` from now on and drop the local tables.

        ``backend({table: flat int64 ids})`` returns ``{table: (N, E) rows}`` for every table
        it is given (a table may get 0 ids).
        """
        self.backend = backend
        self.tables = nn.ModuleDict()
        self.deferred = False

    def table(self, feature: str) -> nn.Embedding:
        if self.backend is not None:
            raise ConfigError(f"The embedding tables are served by {type(self.backend).__name__} "
                              f"(a distributed strategy), so there is no local nn.Embedding for "
                              f"feature '{feature}'; look ids up with lookup()/lookup_many().")
        return self.tables[self.table_of[feature]]

    def lookup(self, feature: str, ids: torch.Tensor) -> torch.Tensor:
        if self.backend is not None or self.deferred:
            return self.lookup_many([(feature, ids)])[0]
        return self.tables[self.table_of[feature]](ids)

    def lookup_many(self, wanted: List[Tuple[str, torch.Tensor]]) -> List[torch.Tensor]:
        """Embeddings of (feature, ids) pairs, with ONE lookup per table (the ids of all
        features sharing a table are concatenated), so each table's backward builds one
        gradient instead of one per feature. Same values as separate :meth:`lookup` calls.

        Args:
            wanted: (feature name, int64 ids of any shape S) pairs.

        Returns:
            one (*S, E) tensor per pair, in order.

        Raises:
            IndexError: an id outside its table (inputs are range-checked before this).
        """
        if self.deferred:
            raise ConfigError(
                "This model's embedding tables were deferred (built inside sharded_init()) and "
                "exist only once a fit with strategy='torchrec' under torchrun has sharded "
                "them; compile(..., strategy='torchrec') and fit first.")
        by_table: Dict[str, List[int]] = {}
        for i, (name, _) in enumerate(wanted):
            by_table.setdefault(self.table_of[name], []).append(i)
        flat: Dict[str, torch.Tensor] = {}
        for table, idx in by_table.items():
            ids = [wanted[i][1] for i in idx]
            flat[table] = (ids[0].reshape(-1) if len(ids) == 1
                           else torch.cat([v.reshape(-1) for v in ids]))
        if self.backend is not None:
            rows = self.backend(flat)
        else:
            # index_select, not F.embedding: same rows, and its backward (an index_add into
            # the dense gradient) is several times faster than embedding's sort-based one
            rows = {t: self.tables[t].weight.index_select(0, v) for t, v in flat.items()}
        out: List[Optional[torch.Tensor]] = [None] * len(wanted)
        for table, idx in by_table.items():
            emb = rows[table]
            for i, part in zip(idx, emb.split([wanted[i][1].numel() for i in idx])):
                out[i] = part.reshape(*wanted[i][1].shape, emb.shape[-1])
        return out
