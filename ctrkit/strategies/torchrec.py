"""Sharded embedding tables through TorchRec: ``compile(..., strategy='torchrec')``.

Under ``torchrun`` the model's embedding tables (one per ``embedding_name``, shared by candidate
and history features) move into a TorchRec ``EmbeddingCollection`` (unpooled: DIN's history
needs one vector per position) that TorchRec's planner shards over the processes; each process
holds only its shards. Everything else in the model (attention unit, Dice, MLP) stays
data-parallel through ``DistributedDataParallel``, exactly as with ``strategy='ddp'``.

How a step runs (W processes, the rows of a global batch split as for DDP):

- the model looks its ids up through :meth:`~ctrkit.layers.embedding.EmbeddingTables.lookup_many`
  as always; the tables' backend (:class:`ShardedLookup`) turns the flat ids of each table into
  one ``KeyedJaggedTensor`` (one key per table, jagged: only the ids the model asks for, so
  DIN's packed lookup still never looks padding up) and calls the sharded collection, which
  sends every id to the process that owns its row and the rows back;
- the backward pass sends the row gradients to their owners, where FBGEMM's fused kernel
  applies the embedding optimizer at once (no dense gradient of the table ever exists).
  TorchRec divides the row gradients by W in that all-to-all (its default "gradient
  division", which :func:`shard` checks is on), the same average DDP takes of the dense
  gradients; with the per-rank loss scale of :class:`~ctrkit.strategies.ddp.DDPPlan`
  both are the gradient of the mean loss over the global batch, so W sharded processes with
  batch B follow one process with batch W*B;
- the dense parameters' gradients are averaged by DDP and stepped by the compiled optimizer.

Embedding optimizers are TorchRec's fused ones, named like ctrkit's: ``'sgd'``, ``'adagrad'``,
``'rowwise_adagrad'`` (one accumulator per row: W times less optimizer memory than Adagrad)
and ``'adam'`` (CUDA only: FBGEMM's CPU kernels refuse Adam). The dense part uses the torch
optimizer of the same name (Adagrad for ``'rowwise_adagrad'``).

Install (torchrec's metadata asks for the CUDA ``fbgemm-gpu``, hence ``--no-deps``)::

    pip install fbgemm-gpu-cpu==1.8.0 tensordict torchmetrics==1.0.3 pyre-extensions iopath
    pip install --no-deps torchrec==1.8.0          # or: sh scripts/install_torchrec.sh

``import ctrkit`` never imports torchrec: this module imports it when a fit first shards.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
import zlib
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..optimizers import DEFAULT_LR, create_optimizer
from .comm import is_local_only, world
from .ddp import DDPPlan, _TrainStep

INSTALL = ("pip install fbgemm-gpu-cpu==1.8.0 tensordict torchmetrics==1.0.3 pyre-extensions "
           "iopath && pip install --no-deps torchrec==1.8.0   (or run "
           "scripts/install_torchrec.sh from a ctrkit checkout)")

#: sharding types a table may be constrained to (TorchRec's names). 'data_parallel' is left
#: out: an EmbeddingCollection replicated that way fails in forward (torchrec 1.8 on CPU).
SHARDING_TYPES = ("row_wise", "table_wise", "column_wise", "table_row_wise",
                  "table_column_wise")

#: ctrkit optimizer name -> (FBGEMM EmbOptimType member, torch optimizer for the dense part).
EMBEDDING_OPTIMIZERS = {"sgd": ("EXACT_SGD", "sgd"), "adagrad": ("EXACT_ADAGRAD", "adagrad"),
                        "rowwise_adagrad": ("EXACT_ROWWISE_ADAGRAD", "adagrad"),
                        "adam": ("ADAM", "adam")}
#: refused by FBGEMM's CPU kernels (checked on torchrec 1.8 / fbgemm-gpu-cpu 1.8).
CUDA_ONLY = ("adam",)

#: torch.optim.Adagrad's default eps, used for the fused Adagrad so both make the same steps.
ADAGRAD_EPS = 1e-10


@dataclasses.dataclass(frozen=True)
class TorchRec:
    """``compile(strategy=TorchRec(...))``: shard the embedding tables with TorchRec.

    ``strategy='torchrec'`` is ``TorchRec()``: TorchRec's planner chooses every table's
    placement.

    Args:
        sharding: table name (an ``embedding_name``) -> a sharding type from
            :data:`SHARDING_TYPES` (or a list of allowed ones) that constrains the planner,
            e.g. ``{'item': 'row_wise'}`` to split the big item table's rows over all
            processes. Tables not named are placed by the planner.
        whole_table_l2: what the whole-table embedding L2 (``embedding_regularizer='l2'``,
            every model's default) becomes, since sharded tables are only updated through
            their lookups: ``'rows'`` (default) its row-wise form
            :class:`~ctrkit.regularizers.BatchL2` (the rows the batch looks up; rows it does
            not look up are not shrunk), ``'refuse'`` a ConfigError at ``compile``.

    Raises:
        ConfigError: an unknown sharding type or ``whole_table_l2`` (table names are checked
            at ``fit``).

    Example:
        >>> from ctrkit.strategies.torchrec import TorchRec
        >>> model.compile("adagrad", strategy=TorchRec(sharding={"item": "row_wise"}))  # doctest: +SKIP
    """

    sharding: Mapping[str, Union[str, Sequence[str]]] = dataclasses.field(default_factory=dict)
    whole_table_l2: str = "rows"

    def __post_init__(self) -> None:
        if self.whole_table_l2 not in ("rows", "refuse"):
            raise ConfigError(f"TorchRec(whole_table_l2=...) must be 'rows' (its row-wise form, "
                              f"the default) or 'refuse', got {self.whole_table_l2!r}.")
        if not isinstance(self.sharding, Mapping):
            raise ConfigError(f"TorchRec(sharding=...) must map table names to sharding types, "
                              f"got {self.sharding!r}.")
        clean = {}
        for table, kinds in self.sharding.items():
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            bad = [k for k in kinds if k not in SHARDING_TYPES]
            if not kinds or bad:
                hint = (" ('data_parallel' replicas of an unpooled EmbeddingCollection fail in "
                        "TorchRec 1.8; use strategy='ddp' to replicate every table)"
                        if "data_parallel" in bad else "")
                raise ConfigError(f"TorchRec(sharding=...) gives table '{table}' the sharding "
                                  f"{kinds!r}; allowed: {list(SHARDING_TYPES)}{hint}.")
            clean[str(table)] = tuple(kinds)
        object.__setattr__(self, "sharding", clean)

    name = "torchrec"


def import_torchrec():
    """``torchrec``, or a ConfigError that gives the install command."""
    try:
        with _quiet():
            import torchrec  # noqa: F401
            import torchrec.distributed  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"strategy='torchrec' needs TorchRec, which is not installed ({e}). "
                          f"Install it with: {INSTALL}") from e
    return torchrec


@contextlib.contextmanager
def _quiet():
    """Silence TorchRec's own warnings and planner log lines (not ctrkit's)."""
    loggers = [logging.getLogger(n) for n in ("torchrec", "fbgemm_gpu")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for module in ("torchrec", "fbgemm_gpu", "torch.distributed", "torch.fx"):
                warnings.filterwarnings("ignore", module=module)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def sharded_init():
    """Build models inside this block to never allocate their whole embedding tables: each
    process creates and initialises only its shards when the first ``fit`` with
    ``strategy='torchrec'`` shards them (with the model's initialiser, from a random stream
    seeded by the model's seed, the table and the shard's offsets).

    Without it every process builds the full tables first (the sharded run then starts from
    exactly the weights of an unsharded one, which the equivalence tests rely on), so each
    process's peak memory includes one whole replica. With it the initial rows differ from an
    unsharded model's (same distribution), and the model cannot predict, save or be
    summarised before that first fit.

    Example:
        >>> with sharded_init():                                          # doctest: +SKIP
        ...     model = ctrkit.build("din", features, l2_reg_embedding=0.0)
        >>> model.compile("rowwise_adagrad",                              # doctest: +SKIP
        ...               strategy=TorchRec(sharding={"item": "row_wise"}))
    """
    from ..layers.embedding import deferred_tables
    return deferred_tables()


# ----------------------------------------------------------------------------- compile
def dense_optimizer(trainer, optimizer: Any, lr: Optional[float],
                    clipnorm: Optional[float]) -> torch.optim.Optimizer:
    """Check what ``compile(strategy='torchrec')`` asked for; return the optimizer of the
    dense parameters and remember the embedding optimizer on ``trainer``.

    Raises:
        ConfigError: an optimizer that is not a name TorchRec fuses, Adam on the CPU, clipnorm,
            an embedding regularizer that reads whole tables (the whole-table L2 only with
            ``TorchRec(whole_table_l2='refuse')``), or constraints naming a table
            the model does not have.
    """
    from ..regularizers import WholeTableL2
    model = trainer.model
    if not isinstance(optimizer, str) or optimizer.lower() not in EMBEDDING_OPTIMIZERS:
        raise ConfigError(
            f"strategy='torchrec' updates the embedding tables with TorchRec's fused optimizers, "
            f"chosen by name: one of {sorted(EMBEDDING_OPTIMIZERS)}; got {optimizer!r}.")
    name = optimizer.lower()
    if name in CUDA_ONLY and model.device.type != "cuda":
        raise ConfigError(
            f"optimizer '{name}' with strategy='torchrec' needs CUDA: FBGEMM's CPU kernels "
            f"refuse it. On the CPU use one of 'adagrad', 'rowwise_adagrad' (least optimizer "
            f"memory) or 'sgd'.")
    if clipnorm is not None:
        raise ConfigError("clipnorm cannot be used with strategy='torchrec': the embedding "
                          "gradients never exist as tensors (the fused optimizer applies them "
                          "inside backward), so a global norm cannot be computed. Leave "
                          "clipnorm=None or use strategy='ddp'.")
    tables = model.embeddings.specs
    if not tables:
        raise ConfigError("strategy='torchrec' shards embedding tables, but this model has none "
                          "(only dense features); use strategy='ddp'.")
    unknown = sorted(set(trainer.strategy.sharding) - set(tables))
    if unknown:
        raise ConfigError(f"TorchRec(sharding=...) names tables {unknown}, which this model does "
                          f"not have; its tables (embedding_names) are {sorted(tables)}.")
    reg = model.regularizer
    if reg.strength and (getattr(reg, "sharded_form", None) != "rows" or (
            isinstance(reg, WholeTableL2) and trainer.strategy.whole_table_l2 == "refuse")):
        why = ("TorchRec(whole_table_l2='refuse') was asked for" if isinstance(reg, WholeTableL2)
               else f"{type(reg).__name__} sets no sharded_form='rows' (it reads whole tables)")
        raise ConfigError(
            f"strategy='torchrec' cannot apply the embedding regularizer "
            f"{type(reg).__name__}(l2_reg_embedding={reg.strength}): sharded tables are updated "
            f"only through their lookups, and {why}. Use strategy=TorchRec() (the whole-table "
            f"L2 becomes its row-wise form), embedding_regularizer='mba' or 'batch_l2', or "
            f"train with strategy='ddp'.")
    trainer.embedding_optimizer = (name, float(DEFAULT_LR.get(name, DEFAULT_LR["adagrad"])
                                               if lr is None else lr))
    own = {id(p) for p in model.embeddings.parameters()}
    dense = [p for p in model.parameters() if id(p) not in own]
    return create_optimizer(EMBEDDING_OPTIMIZERS[name][1], dense, trainer.embedding_optimizer[1])


# ----------------------------------------------------------------------------- lookups
class ShardedLookup(nn.Module):
    """The backend of :class:`~ctrkit.layers.embedding.EmbeddingTables` under TorchRec.

    ``forward({table: flat ids (N_t,)}) -> {table: (N_t, E_t)}``: one KeyedJaggedTensor with a
    key per table of the collection (a table the caller does not use gets 0 ids), stride 1 (the
    ids of a table form one jagged row: the lookup is unpooled, so the grouping does not
    matter and every rank may pass a different number of ids). A collective: every process
    must call it the same number of times.

    Args:
        specs: table -> (rows, dim).
        optimizer: (name, lr) of the fused embedding optimizer, to detect a later compile
            that asks for another one.
    """

    def __init__(self, specs: Dict[str, Tuple[int, int]], optimizer: Tuple[str, float]) -> None:
        super().__init__()
        from torchrec import EmbeddingCollection, EmbeddingConfig
        self.keys = sorted(specs)
        self.specs = dict(specs)
        self.optimizer = optimizer
        self.collection = EmbeddingCollection(
            tables=[EmbeddingConfig(name=t, embedding_dim=specs[t][1],
                                    num_embeddings=specs[t][0], feature_names=[t])
                    for t in self.keys],
            device=torch.device("meta"))  # shards are allocated by the sharder, never the whole
        #: while a training step runs (:meth:`recording`): table -> [(ids, rows)] looked up
        self._seen: Optional[Dict[str, List[Tuple[torch.Tensor, torch.Tensor]]]] = None

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Keep the ids and rows of every lookup with autograd inside this block (one training
        step), for :meth:`rows_of`; dropped when it ends."""
        self._seen = {}
        try:
            yield
        finally:
            self._seen = None

    def rows_of(self, table: str, ids: torch.Tensor) -> torch.Tensor:
        """(len(ids), E) rows of ``table`` at ``ids``, taken from this training step's lookups
        (each id from one position where it was looked up), so a penalty on them sends its
        gradient back through the same sharded lookup: the fused optimizer applies it with
        the data loss's, in one update. Row-wise regularizers (MBA) read rows this way.

        Raises:
            ConfigError: outside a training step, or an id the model did not look up in it.
        """
        if self._seen is None:
            raise ConfigError("rows_of() reads the rows a training step looked up, so it works "
                              "only inside a training step under strategy='torchrec' (the "
                              "Trainer computes regularizers there).")
        got = self._seen.get(table, [])
        if not len(ids):
            return ids.new_zeros((0, self.specs[table][1]), dtype=torch.float32)
        seen = torch.cat([i for i, _ in got]) if got else ids.new_empty(0)
        order = torch.argsort(seen, stable=True)
        ordered = seen[order]
        pos = torch.searchsorted(ordered, ids).clamp_max(max(len(ordered) - 1, 0))
        found = (ordered[pos] == ids) if len(ordered) else torch.zeros_like(ids, dtype=torch.bool)
        if not bool(found.all()):
            raise ConfigError(
                f"The embedding regularizer needs rows {ids[~found][:5].tolist()} of table "
                f"'{table}', which the model did not look up in this step; with sharded "
                f"tables (strategy='torchrec') a row-wise penalty can only reach rows the "
                f"forward looked up. Build the model with l2_reg_embedding=0 or use "
                f"strategy='ddp'.")
        return torch.cat([r for _, r in got]).index_select(0, order[pos])

    def forward(self, flat: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        from torchrec import KeyedJaggedTensor
        if is_local_only() and world()[1] > 1:
            raise ConfigError(
                "The embedding tables of this model are sharded over the processes "
                "(strategy='torchrec'), so it cannot predict on one process inside local(): "
                "call predict/evaluate on every rank, or model.save(...) on every rank and "
                "ctrkit.load the file on one process.")
        if torch.is_inference_mode_enabled():
            # FBGEMM's kernels refuse inference tensors: look up without autograd instead
            # (the rows come back as ordinary tensors, which inference code may read).
            with torch.inference_mode(False), torch.no_grad():
                return self.forward({t: v.clone() for t, v in flat.items()})
        some = next(iter(flat.values()))
        empty = some.new_empty(0)
        parts = [flat.get(t, empty) for t in self.keys]
        kjt = KeyedJaggedTensor(keys=self.keys, values=torch.cat(parts),
                                lengths=torch.tensor([len(p) for p in parts], dtype=torch.int64,
                                                     device=some.device))
        with _quiet():
            out = self.collection(kjt)
        rows = {t: out[t].values() for t in flat}
        if self._seen is not None and torch.is_grad_enabled():
            for t in flat:
                self._seen.setdefault(t, []).append((flat[t], rows[t]))
        return rows

    # ------------------------------------------------------------------ state
    def sharded_state(self) -> Dict[str, Any]:
        """``{table: ShardedTensor weight}`` of this process."""
        return {k.split(".")[1]: v for k, v in self.collection.state_dict().items()}

    def optimizer_state(self) -> Dict[str, Any]:
        """``{table: {state name: ShardedTensor}}`` of the fused optimizer (may be empty)."""
        out: Dict[str, Dict[str, Any]] = {}
        for key, st in self.collection.fused_optimizer.state_dict()["state"].items():
            table = key.split(".")[1]
            for name, value in st.items():
                if hasattr(value, "local_shards"):
                    out.setdefault(table, {})[name] = value
        return out


# ----------------------------------------------------------------------------- sharding
def shard(trainer, options: TorchRec, device: torch.device) -> ShardedLookup:
    """Move the model's tables into a sharded EmbeddingCollection (once per model).

    Every rank built the same full tables (same seed), so each copies its own shards from them
    before they are dropped.

    Raises:
        ConfigError: TorchRec is not installed, or the model was already sharded for
            another embedding optimizer.
    """
    model = trainer.model
    tables = model.embeddings
    if isinstance(tables.backend, ShardedLookup):
        if tables.backend.optimizer != trainer.embedding_optimizer:
            raise ConfigError(
                f"The tables were sharded with the fused embedding optimizer "
                f"{tables.backend.optimizer} (name, lr) by an earlier fit, which TorchRec keeps "
                f"for the life of the shards; compile with the same optimizer and lr, or save "
                f"the model and ctrkit.load it to start anew.")
        return tables.backend
    import_torchrec()
    dist = torch.distributed
    with _quiet():
        from fbgemm_gpu.split_embedding_configs import EmbOptimType
        from torchrec.distributed.embedding import EmbeddingCollectionSharder
        from torchrec.distributed.model_parallel import DistributedModelParallel
        from torchrec.distributed.planner import (EmbeddingShardingPlanner, ParameterConstraints,
                                                  Topology)
        from torchrec.distributed.types import ShardingEnv
        from torchrec.distributed.comm_ops import get_gradient_division
        if not get_gradient_division():
            raise ConfigError(
                "torchrec.distributed.comm_ops.set_gradient_division(False) was called: the "
                "row gradients would then be summed over processes instead of averaged like "
                "the dense ones, and training would not follow the global-batch loss. Call "
                "set_gradient_division(True) before fit.")
        world = dist.get_world_size()
        name, lr = trainer.embedding_optimizer
        fused = {"optimizer": getattr(EmbOptimType, EMBEDDING_OPTIMIZERS[name][0]),
                 "learning_rate": lr}
        if name in ("adagrad", "rowwise_adagrad"):
            fused["eps"] = ADAGRAD_EPS
        backend = ShardedLookup(tables.specs, trainer.embedding_optimizer)
        full = None if tables.deferred else {t: emb.weight.detach()
                                             for t, emb in tables.tables.items()}
        constraints = {t: ParameterConstraints(sharding_types=list(kinds),
                                               compute_kernels=["fused"])
                       for t, kinds in options.sharding.items()}
        sharder = EmbeddingCollectionSharder(fused_params=fused)
        planner = EmbeddingShardingPlanner(
            topology=Topology(world_size=world, compute_device=device.type),
            constraints=constraints)
        pg = dist.GroupMember.WORLD
        plan = planner.collective_plan(backend, [sharder], pg)
        # Shards `backend.collection` in place; the data-parallel part is ctrkit's own DDP.
        DistributedModelParallel(backend, env=ShardingEnv.from_process_group(pg), device=device,
                                 plan=plan, sharders=[sharder], init_data_parallel=False,
                                 init_parameters=False)
    for table, st in backend.sharded_state().items():
        for piece in st.local_shards():
            (r0, c0), (nr, nc) = piece.metadata.shard_offsets, piece.metadata.shard_sizes
            if full is not None:
                piece.tensor.copy_(full[table][r0:r0 + nr, c0:c0 + nc])
                continue
            # deferred tables: each shard drawn where it lives, from its own seeded stream
            seed = (zlib.crc32(f"{model.seed}/{table}/{r0}/{c0}".encode())
                    if model.seed is not None else int(torch.seed() % 2 ** 62))
            with torch.random.fork_rng(devices=[]):  # in place: no second copy of the shard
                torch.manual_seed(seed)
                tables.initializer.embedding_(piece.tensor)
    del full
    backend.plan = plan  # for inspection: model.embeddings.backend.plan
    tables.attach(backend)
    return backend


def placement(backend: ShardedLookup) -> Dict[str, Dict[str, Any]]:
    """Where each table lives: ``{table: {'sharding': 'row_wise', 'shards': [(rank,
    (row0, col0), (rows, cols)), ...], 'local': [((row0, col0), (rows, cols)), ...]}}``."""
    out: Dict[str, Dict[str, Any]] = {}
    module_plan = next(iter(backend.plan.plan.values()))
    for table, st in backend.sharded_state().items():
        out[table] = {
            "sharding": module_plan[table].sharding_type,
            "shards": [(m.placement.rank(), tuple(m.shard_offsets), tuple(m.shard_sizes))
                       for m in st.metadata().shards_metadata],
            "local": [(tuple(p.metadata.shard_offsets), tuple(p.metadata.shard_sizes))
                      for p in st.local_shards()]}
    return out


# ----------------------------------------------------------------------------- gather/scatter
def _pieces(st) -> Tuple[Tuple[int, ...], List[Tuple[Tuple[int, ...], Tuple[int, ...]]],
                          List[torch.Tensor]]:
    """(global size, [(offsets, sizes)], [tensors]) of this rank's shards of ShardedTensor st."""
    local = sorted(st.local_shards(), key=lambda p: tuple(p.metadata.shard_offsets))
    return (tuple(st.metadata().size),
            [(tuple(p.metadata.shard_offsets), tuple(p.metadata.shard_sizes)) for p in local],
            [p.tensor.detach() for p in local])


def gather_tensors(sharded: Mapping[str, Any], comm: torch.device
                   ) -> Optional[Dict[str, torch.Tensor]]:
    """The whole tensors of this rank's ShardedTensors ``{key: st}``, on rank 0 (None
    elsewhere). A collective. A key may be missing on ranks that hold none of its shards (as
    in the fused optimizer's state): the keys and shard layouts are exchanged first."""
    dist = torch.distributed
    rank, world = dist.get_rank(), dist.get_world_size()
    mine = {k: _pieces(st) for k, st in sharded.items()}
    layouts: List[Any] = [None] * world
    dist.all_gather_object(layouts, {k: (size, meta) for k, (size, meta, _) in mine.items()})
    keys = sorted({k for lay in layouts for k in lay})
    out: Dict[str, torch.Tensor] = {}
    for key in keys:
        numel = [sum(int(torch.Size(s).numel()) for _, s in lay.get(key, (None, []))[1])
                 for lay in layouts]
        size, _, tensors = mine.get(key, (None, [], []))
        dtype = tensors[0].dtype if tensors else torch.float32
        flat = (torch.cat([t.reshape(-1) for t in tensors]) if tensors
                else torch.empty(0, dtype=dtype))
        dtypes: List[Any] = [None] * world
        dist.all_gather_object(dtypes, str(dtype) if tensors else None)
        dtype = getattr(torch, next(d for d in dtypes if d is not None).split(".")[1])
        buf = torch.zeros(max(max(numel), 1), dtype=dtype, device=comm)
        buf[:len(flat)] = flat.to(comm)
        bufs = [torch.empty_like(buf) for _ in range(world)] if rank == 0 else None
        dist.gather(buf, bufs, dst=0)
        if rank != 0:
            continue
        size = next(lay[key][0] for lay in layouts if key in lay)
        full = torch.zeros(size, dtype=dtype)
        for r, lay in enumerate(layouts):
            cursor = 0
            for offsets, sizes in lay.get(key, (None, []))[1]:
                n = int(torch.Size(sizes).numel())
                region = full
                for dim, (o, s) in enumerate(zip(offsets, sizes)):
                    region = region.narrow(dim, o, s)
                region.copy_(bufs[r][cursor:cursor + n].cpu().reshape(sizes))
                cursor += n
        out[key] = full
    return out if rank == 0 else None


def scatter_full(st, full: torch.Tensor) -> None:
    """Copy this process's shards of ShardedTensor ``st`` out of the whole tensor ``full``."""
    if tuple(full.shape) != tuple(st.metadata().size):
        raise ConfigError(f"A saved sharded tensor has shape {tuple(full.shape)}, but the "
                          f"model's is {tuple(st.metadata().size)}.")
    for piece in st.local_shards():
        region = full
        for dim, (o, s) in enumerate(zip(piece.metadata.shard_offsets,
                                         piece.metadata.shard_sizes)):
            region = region.narrow(dim, o, s)
        piece.tensor.copy_(region)


def table_key(table: str) -> str:
    """The key of a table's weight in an unsharded model's state_dict."""
    return f"embeddings.tables.{table}.weight"


def full_state_dict(model, comm: torch.device) -> Optional[Dict[str, torch.Tensor]]:
    """The state_dict the same model would have unsharded (tables gathered), on rank 0;
    None on the other ranks. A collective: call it on every rank."""
    backend = model.embeddings.backend
    gathered = gather_tensors(backend.sharded_state(), comm)
    if gathered is None:
        return None
    state = {table_key(t): w for t, w in sorted(gathered.items())}
    for k, v in model.state_dict().items():
        if not k.startswith("embeddings.backend."):
            state[k] = v.detach().cpu().clone()
    return state


def load_full_state_dict(model, state: Dict[str, torch.Tensor]) -> None:
    """Load an unsharded state_dict (e.g. a backup) into the sharded model on this rank.

    Raises:
        RuntimeError: missing or unexpected keys or shapes (as ``load_state_dict`` strict).
    """
    backend = model.embeddings.backend
    state = dict(state)
    missing = [table_key(t) for t in backend.keys if table_key(t) not in state]
    if missing:
        raise RuntimeError(f"Missing key(s) in state_dict: {missing}.")
    weights = {t: state.pop(table_key(t)) for t in backend.keys}
    local = {k: v for k, v in model.state_dict().items() if not k.startswith("embeddings.backend.")}
    unexpected = sorted(set(state) - set(local))
    missing = sorted(set(local) - set(state))
    if unexpected or missing:
        raise RuntimeError(f"Missing key(s) in state_dict: {missing}. Unexpected key(s) in "
                           f"state_dict: {unexpected}.")
    shards = backend.sharded_state()
    for t, w in weights.items():
        scatter_full(shards[t], w)
    with torch.no_grad():
        own = dict(model.named_parameters())
        own.update(dict(model.named_buffers()))
        for k, v in state.items():
            if tuple(own[k].shape) != tuple(v.shape):
                raise RuntimeError(f"size mismatch for {k}: {tuple(v.shape)} in the file, "
                                   f"{tuple(own[k].shape)} in the model.")
            own[k].copy_(v)


def full_optimizer_state(model, comm: torch.device) -> Optional[Dict[str, Dict[str, torch.Tensor]]]:
    """The fused embedding optimizer's state, gathered whole on rank 0 (None elsewhere)."""
    state = model.embeddings.backend.optimizer_state()
    flat = gather_tensors({f"{t}/{k}": v for t, s in state.items() for k, v in s.items()}, comm)
    if flat is None:
        return None
    out: Dict[str, Dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        t, k = key.split("/", 1)
        out.setdefault(t, {})[k] = value
    return out


def load_full_optimizer_state(model, state: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
    """Copy this rank's part of a gathered fused-optimizer state into the live state."""
    live = model.embeddings.backend.optimizer_state()  # the tables with shards on this rank
    if any(t not in state or not set(live[t]) <= set(state[t]) for t in live):
        raise RuntimeError(f"The saved embedding optimizer state holds "
                           f"{ {t: sorted(s) for t, s in state.items()} }, the model's "
                           f"{ {t: sorted(s) for t, s in live.items()} }.")
    for t, s in live.items():
        for k, st in s.items():
            scatter_full(st, state[t][k])



class TorchRecPlan(DDPPlan):
    """``W`` processes with the embedding tables sharded by TorchRec (see
    :mod:`ctrkit.strategies.torchrec`); rows, losses, stops and gathered metrics as
    :class:`DDPPlan`, the dense parameters through DDP, the tables through the shards."""

    #: the prefix of the sharded collection's parameters and buffers in ``_TrainStep``
    SHARDED = "model.embeddings.backend."

    def _wrap(self, trainer) -> nn.Module:
        model = trainer.model
        shard(trainer, trainer.strategy, model.device)
        step = _TrainStep(trainer)
        ignore = [k for k, _ in list(step.named_parameters()) + list(step.named_buffers())
                  if k.startswith(self.SHARDED)]
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            step, ignore)
        kwargs = {"device_ids": [model.device.index]} if model.device.type == "cuda" else {}
        return nn.parallel.DistributedDataParallel(step, gradient_as_bucket_view=True, **kwargs)

    def train_loss(self, batch, y, w):
        # the step's looked-up rows are kept for row-wise regularizers (MBA, BatchL2)
        with self.trainer.model.embeddings.backend.recording():
            return super().train_loss(batch, y, w)

    def _synced_buffers(self) -> Iterator[torch.Tensor]:
        return (b for k, b in self.trainer.model.named_buffers()
                if not k.startswith(self.SHARDED[len("model."):]))

    def callbacks(self, callbacks: List[Any], verbose: int) -> Tuple[List[Any], int]:
        # Callbacks that save the model gather the shards, a collective: they run on every
        # rank (and write on rank 0 alone).
        if self.rank == 0:
            return callbacks, verbose
        return [c for c in callbacks if not getattr(c, "rank_zero_only", False)
                or getattr(c, "gathers_model", False)], 0


__all__ = ["CUDA_ONLY", "EMBEDDING_OPTIMIZERS", "INSTALL", "SHARDING_TYPES", "ShardedLookup",
           "TorchRec", "dense_optimizer", "full_state_dict", "gather_tensors", "import_torchrec",
           "load_full_state_dict", "placement", "scatter_full", "shard",
           "sharded_init", "TorchRecPlan"]
