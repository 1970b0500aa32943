"""Data-parallel training across processes with ``torch.distributed`` (DDP).

A script that calls ``fit`` trains data-parallel when it is launched with ``torchrun``::

    torchrun --nproc_per_node=2 train.py          # one machine, two processes

The trainer asks :func:`plan` for a :class:`LocalPlan` (one process: exactly today's loop) or a
:class:`DDPPlan`, and calls the same few methods on either:

- ``rows(order, step)``: the rows this process trains on at ``step``. Every rank draws the same
  permutation ``order`` per epoch from the model's seeded generator (synchronised from rank 0);
  global step ``s`` covers ``order[s*B*W:(s+1)*B*W]`` for per-rank batch ``B`` and world size
  ``W``, split as evenly as possible, rank ``r`` taking the ``r``-th part. A last global step
  with fewer than ``W`` rows is folded into the one before, so no rank is ever empty and every
  rank runs the same number of steps (DDP all-reduces every step).
- ``train_loss(batch, y, w)``: the forward/backward graph, through ``DistributedDataParallel``.
  Each rank's data loss (and auxiliary loss, see ``BaseModel.add_auxiliary_loss``) is scaled by
  ``local_n * W / global_n``, so DDP's gradient average is the gradient of the mean loss over the
  global batch (an auxiliary loss: the row-weighted mean of the ranks' values): ``W`` processes with batch ``B`` follow one
  process with batch ``W*B`` up to float rounding, except for batch statistics (Dice, BatchNorm),
  which stay per rank, and MBA's per-batch set of ids, which is per rank too.
- ``batch_loss``/``stop``: the step's loss over all ranks (the mean over the global batch) and
  an all-ranks OR of ``model.stop_training`` (after every step and epoch), so every callback
  sees the same batch logs and a stop on any rank stops all ranks at the same point: no rank is
  left waiting in an all-reduce.
- ``end_epoch(store)``: the logits (and labels, weights, groups) of every rank, placed at
  their rows' positions in ``order``, so epoch metrics (AUC, GAUC, logloss) are computed exactly over all rows (never an
  average of per-rank AUCs); rank 0's buffers (Dice/BatchNorm running statistics) are
  broadcast so every rank validates with the same model.

``predict``/``evaluate`` (and validation) of a model compiled for DDP are collective: each rank
predicts a contiguous shard and every rank returns all rows in their original order. Call them
on every rank, or inside ``with local():`` to predict on one process alone. Before the first
``fit`` has initialised the process group they run locally on every rank.

Only rank 0 prints and writes files: callbacks whose class sets ``rank_zero_only = True``
(progress bar, CSVLogger, ModelCheckpoint) are dropped on the other ranks, which also run with
``verbose=0``. Callbacks that decide (EarlyStopping, ReduceLROnPlateau) run on every rank and
decide identically, because every rank sees identical logs.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError

#: values of ``compile(strategy=...)``: None detects a torchrun launch, 'ddp' demands one,
#: 'torchrec' (or a :class:`~ctrkit.training.torchrec_strategy.TorchRec`) shards the tables.
STRATEGIES = (None, "ddp", "torchrec")

_local_only = False


def check_strategy(strategy: Any) -> Any:
    """``strategy`` if it is one of :data:`STRATEGIES` (``'torchrec'`` becomes ``TorchRec()``)
    or a :class:`~ctrkit.training.torchrec_strategy.TorchRec`.

    Raises:
        ConfigError: any other value.
    """
    from .torchrec_strategy import TorchRec  # no torchrec import: the options class only
    if isinstance(strategy, TorchRec):
        return strategy
    if strategy == "torchrec":
        return TorchRec()
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be None (data-parallel when launched with torchrun), "
                          f"'ddp' or 'torchrec' (sharded embedding tables), got {strategy!r}.")
    return strategy


def is_sharded(model) -> bool:
    """True when ``model``'s embedding tables live elsewhere (sharded by strategy='torchrec')."""
    return getattr(getattr(model, "embeddings", None), "backend", None) is not None


def launched_with_torchrun() -> bool:
    """True when the environment names more than one process (``WORLD_SIZE`` > 1).

    Example:
        >>> launched_with_torchrun()       # a plain `python` run; torchrun sets WORLD_SIZE
        False
    """
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def world() -> Tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, ``(0, 1)`` without one.

    Example:
        >>> world()
        (0, 1)
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_rank_zero() -> bool:
    """True in a single process and on rank 0: guard your own file writes with it.

    Example:
        >>> is_rank_zero()
        True
        >>> if is_rank_zero():             # e.g. before model.save / history.plot
        ...     print("only one process writes")
        only one process writes
    """
    return world()[0] == 0


@contextlib.contextmanager
def local() -> Iterator[None]:
    """Within this block ``predict``/``evaluate`` run on this process alone (not collective).

    Example:
        >>> import ctrkit
        >>> from ctrkit.datasets import make_synthetic
        >>> x, y, features = make_synthetic(n_rows=64, maxlen=4, embedding_dim=4)
        >>> model = ctrkit.build("base", features)
        >>> if is_rank_zero():
        ...     with local():              # under torchrun: this rank alone predicts
        ...         p = model.predict(x)
        >>> p.shape
        (64, 1)
    """
    global _local_only
    before, _local_only = _local_only, True
    try:
        yield
    finally:
        _local_only = before


def uses_ddp(model) -> bool:
    """True when ``predict``/``evaluate`` of ``model`` should shard across the process group."""
    trainer = getattr(model, "trainer", None)
    if _local_only or trainer is None or world()[1] == 1:
        return False
    return getattr(trainer, "strategy", None) is not None or launched_with_torchrun()


def init_process_group(device: torch.device) -> None:
    """Initialise the default process group from torchrun's environment, if not done yet.

    gloo for a CPU model, NCCL (with ``cuda:LOCAL_RANK`` as this process's device) for CUDA.

    Raises:
        ConfigError: torch.distributed is unavailable, or the environment does not name the
            processes (not launched with torchrun).
    """
    dist = torch.distributed
    if not dist.is_available():
        raise ConfigError("strategy='ddp' needs torch.distributed, which this PyTorch build "
                          "lacks; install a PyTorch build with distributed support.")
    if dist.is_initialized():
        return
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
               if k not in os.environ]
    if missing:
        raise ConfigError(f"strategy='ddp' but {missing} are not set: launch the script with "
                          f"torchrun, e.g. `torchrun --nproc_per_node=2 train.py`, or call "
                          f"torch.distributed.init_process_group yourself before fit.")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


class LocalPlan:
    """One process: the rows, losses and logits of the plain loop, unchanged.

    Args:
        trainer: the Trainer; source: the training :class:`DataAdapter` (or its row count);
        batch_size: rows per step.
    """

    rank, world_size = 0, 1

    def __init__(self, trainer, source, batch_size: int) -> None:
        self.trainer, self.batch_size = trainer, batch_size
        self.source = source
        self.n = source.num_rows
        #: steps per epoch on this process (None: until the source runs out)
        self.steps = source.steps(batch_size)
        #: rows this process trains on per epoch, when known (sizes the prediction store)
        self.local_rows = self.n

    def callbacks(self, callbacks: List[Any], verbose: int) -> Tuple[List[Any], int]:
        return callbacks, verbose

    def batches(self, source, shuffle: bool, generator: torch.Generator):
        """This process's batches of one epoch (the source decides which rows, in what order)."""
        return source.train_batches(self, shuffle, generator)

    def rows(self, order: torch.Tensor, step: int) -> torch.Tensor:
        return order[slice(*self.local_bounds(step))]

    def local_bounds(self, step: int) -> Tuple[int, int]:
        """Positions ``[lo, hi)`` of this process's rows of ``step`` in the epoch's order
        (called once per step, in the training thread, before its loss)."""
        return step * self.batch_size, min((step + 1) * self.batch_size, self.n)

    def share(self) -> Tuple[int, List[int]]:
        """``(start, sizes)``: this process reads the epoch's rows ``start:start+sum(sizes)``
        (a contiguous part of the sequence every process agrees on) in batches of ``sizes``,
        one per step. For sources that split themselves (Parquet)."""
        n, b = self.n, self.batch_size
        return 0, [b] * (n // b) + ([n % b] if n % b else [])

    def train_loss(self, batch, y, w):
        return self.trainer.train_loss(batch, y, w)

    def batch_loss(self, loss: float, rows: int, aux: Optional[float] = None
                   ) -> Tuple[float, int, Optional[float], int]:
        """``(loss, rows, auxiliary loss or None, rows that had one)`` of the step."""
        return loss, rows, aux, (rows if aux is not None else 0)

    def stop(self, flag: bool) -> bool:
        return flag

    def end_epoch(self, store):
        """The epoch's stored columns (logits, labels, ...) of every process (or its
        bounded-memory :class:`StreamingMetrics`)."""
        return store.result()

    def close(self) -> None:
        """Release what the plan holds (nothing here)."""


class _TrainStep(nn.Module):
    """The training forward as one module, so DDP sees the loss *and* the regularizer graph."""

    def __init__(self, trainer) -> None:
        super().__init__()
        self.model = trainer.model  # a child module: the parameters are the user's, shared
        self._train_loss = trainer.train_loss

    def forward(self, batch, y, w, scale: float):
        return self._train_loss(batch, y, w, scale)


class DDPPlan(LocalPlan):
    """``W`` processes: rank ``r`` trains its slice of every global step through DDP.

    The source's row count and fingerprint (the label sum) check that all ranks got the same data.
    """

    def __init__(self, trainer, source, batch_size: int) -> None:
        super().__init__(trainer, source, batch_size)
        model = trainer.model
        n = self.n
        if not (source.in_memory or getattr(source, "splits_between_ranks", False)):
            raise ConfigError(
                f"fit under torchrun splits the rows between processes, which "
                f"{type(source).__name__} input cannot do (an iterable is one stream); pass "
                f"in-memory arrays or a ctrkit.data.ParquetDataset.")
        init_process_group(model.device)
        dist = torch.distributed
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        W = self.world_size
        if n < W:
            raise ConfigError(f"fit on {W} processes needs at least {W} training rows (one per "
                              f"process), got {n}.")
        if model.device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            if model.device != device:
                model.to(device)
                model.device = device
        # Collectives run on the model's device for NCCL, on the CPU for gloo.
        self.comm = model.device if dist.get_backend() == "nccl" else torch.device("cpu")
        self._check_same_data(n, source.fingerprint())
        # Same permutations on every rank even with seed=None: rank 0's generator wins.
        state = model.rng.get_state().to(self.comm)
        dist.broadcast(state, 0)
        model.rng.set_state(state.cpu())
        self.lo = step_bounds(n, batch_size, W)
        self.steps = len(self.lo)
        self.local_rows = sum(lo[self.rank + 1] - lo[self.rank] for lo in self.lo)
        self.done = 0
        self.ddp = self._wrap(trainer)

    def _wrap(self, trainer) -> nn.Module:
        """The module whose forward is one rank's training step (here: DDP over the model)."""
        model = trainer.model
        kwargs = {"device_ids": [model.device.index]} if model.device.type == "cuda" else {}
        # Constructing DDP broadcasts rank 0's parameters and buffers: identical start.
        # Gradients as views of DDP's buckets: no second copy of the (dense) table gradients.
        return nn.parallel.DistributedDataParallel(_TrainStep(trainer),
                                                   gradient_as_bucket_view=True, **kwargs)

    def _synced_buffers(self) -> Iterator[torch.Tensor]:
        """The buffers every rank must share (rank 0's are broadcast at each epoch end)."""
        return self.trainer.model.buffers()

    def _check_same_data(self, n: int, label_sum: float) -> None:
        """Every rank must pass all the rows (the same ones): rows are split here, not by you."""
        both = self._all_reduce([n, -n, label_sum, -label_sum], torch.distributed.ReduceOp.MAX)
        if both[0] != -both[1] or both[2] != -both[3]:
            raise ConfigError(
                f"Every process must pass the same, complete training data to fit (ctrkit "
                f"splits the rows between processes itself), but the processes disagree: "
                f"{int(-both[1])}..{int(both[0])} rows, label sums {float(-both[3])}.."
                f"{float(both[2])}. Load the whole data set on every rank.")

    def callbacks(self, callbacks: List[Any], verbose: int) -> Tuple[List[Any], int]:
        if self.rank == 0:
            return callbacks, verbose
        return [c for c in callbacks if not getattr(c, "rank_zero_only", False)], 0

    def local_bounds(self, step: int) -> Tuple[int, int]:
        self.done = step + 1
        lo = self.lo[step]
        self._scale = (lo[self.rank + 1] - lo[self.rank]) * self.world_size / (lo[-1] - lo[0])
        return lo[self.rank], lo[self.rank + 1]

    def share(self) -> Tuple[int, List[int]]:
        """Rank ``r`` reads the ``r``-th contiguous part of the epoch's rows, as many rows as
        the step bounds give it (so every rank runs every step, with DDP's batch sizes)."""
        sizes = [[lo[r + 1] - lo[r] for lo in self.lo] for r in range(self.world_size)]
        return sum(sum(s) for s in sizes[:self.rank]), sizes[self.rank]

    def train_loss(self, batch, y, w):
        return self.ddp(batch, y, w, self._scale)

    def _all_reduce(self, values: List[float], op) -> torch.Tensor:
        t = torch.tensor(values, dtype=torch.float64, device=self.comm)
        torch.distributed.all_reduce(t, op=op)
        return t.cpu()

    def batch_loss(self, loss: float, rows: int, aux: Optional[float] = None
                   ) -> Tuple[float, int, Optional[float], int]:
        # one all-reduce for both, also when only some ranks' batches had an auxiliary loss
        a_rows = float(rows) if aux is not None else 0.0
        total = self._all_reduce([loss * rows, float(rows), (aux or 0.0) * a_rows, a_rows],
                                 torch.distributed.ReduceOp.SUM)
        aux_out = float(total[2] / total[3]) if total[3] > 0 else None
        return float(total[0] / total[1]), int(total[1]), aux_out, int(total[3])

    def stop(self, flag: bool) -> bool:
        stop = bool(self._all_reduce([float(bool(flag))], torch.distributed.ReduceOp.MAX)[0])
        self.trainer.model.stop_training = stop  # the same on every rank from here on
        return stop

    def end_epoch(self, store):
        """Every rank's stored rows, each at its position in the epoch's order (or the
        accumulators of bounded-memory metrics, summed over ranks)."""
        result = store.result()
        if not isinstance(result, dict):
            out = result.reduce(all_reduce_sum)
            self._sync_buffers()
            return out
        counts = [sum(lo[r + 1] - lo[r] for lo in self.lo[:self.done])
                  for r in range(self.world_size)]
        positions = torch.cat([torch.cat([torch.arange(lo[r], lo[r + 1])
                                          for lo in self.lo[:self.done]])
                               for r in range(self.world_size)])
        total = sum(counts)
        out = {}
        for key, local in result.items():
            parts = all_gather_rows(local, counts, self.comm)
            col = torch.empty(total, dtype=local.dtype)
            col[positions] = torch.cat(parts)
            out[key] = col
        self._sync_buffers()
        return out

    def _sync_buffers(self) -> None:
        # Running statistics were updated by each rank's own batches; validate with rank 0's.
        for buf in self._synced_buffers():
            tmp = buf.detach().to(self.comm)
            torch.distributed.broadcast(tmp, 0)
            buf.data.copy_(tmp)

    def close(self) -> None:
        self.ddp = None  # drops DDP's hooks on the parameters


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over all processes (itself in one process)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    comm = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")
    out = t.to(comm).clone()
    dist.all_reduce(out)
    return out.to(t.device)


class TorchRecPlan(DDPPlan):
    """``W`` processes with the embedding tables sharded by TorchRec (see
    :mod:`ctrkit.training.torchrec_strategy`); rows, losses, stops and gathered metrics as
    :class:`DDPPlan`, the dense parameters through DDP, the tables through the shards."""

    #: the prefix of the sharded collection's parameters and buffers in ``_TrainStep``
    SHARDED = "model.embeddings.backend."

    def _wrap(self, trainer) -> nn.Module:
        from . import torchrec_strategy
        model = trainer.model
        torchrec_strategy.shard(trainer, trainer.strategy, model.device)
        step = _TrainStep(trainer)
        ignore = [k for k, _ in list(step.named_parameters()) + list(step.named_buffers())
                  if k.startswith(self.SHARDED)]
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            step, ignore)
        kwargs = {"device_ids": [model.device.index]} if model.device.type == "cuda" else {}
        return nn.parallel.DistributedDataParallel(step, gradient_as_bucket_view=True, **kwargs)

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


def step_bounds(n: int, batch_size: int, world_size: int) -> List[List[int]]:
    """Where each rank's rows lie in the epoch's permutation, step by step.

    Global step ``s`` covers positions ``[s*B*W, (s+1)*B*W)``; rank ``r`` takes
    ``[bounds[s][r], bounds[s][r + 1])``, split as evenly as possible. A last step with fewer
    than ``W`` rows joins the step before, so no rank is ever empty (needs ``n >= W``).

    Args:
        n: training rows; batch_size: rows per rank and step (B); world_size: processes (W).

    Returns:
        one list of ``W + 1`` increasing positions per global step.

    Example:
        >>> step_bounds(11, 2, 2)      # steps of 4 rows; the 3-row tail splits 1 / 2
        [[0, 2, 4], [4, 6, 8], [8, 9, 11]]
    """
    per_step = batch_size * world_size
    starts = list(range(0, n, per_step))
    sizes = [min(per_step, n - s) for s in starts]
    if len(sizes) > 1 and sizes[-1] < world_size:  # a tail that cannot feed every rank
        tail = sizes.pop()
        starts.pop()
        sizes[-1] += tail
    return [[start + size * r // world_size for r in range(world_size + 1)]
            for start, size in zip(starts, sizes)]


def all_gather_rows(local: torch.Tensor, counts: List[int], comm: torch.device
                    ) -> List[torch.Tensor]:
    """Every rank's ``local`` rows (rank r holds ``counts[r]``), padded for the collective.

    Returns:
        one CPU tensor per rank, trimmed to its count.
    """
    width = max(counts)
    padded = torch.zeros((width,) + tuple(local.shape[1:]), dtype=local.dtype, device=comm)
    padded[:len(local)] = local.to(comm)
    bufs = [torch.empty_like(padded) for _ in counts]
    torch.distributed.all_gather(bufs, padded)
    return [b[:c].cpu() for b, c in zip(bufs, counts)]


def gather_predictions(predict: Callable[[Any], Dict[str, torch.Tensor]], source,
                       equal_batches: bool = False) -> Dict[str, torch.Tensor]:
    """Predict a contiguous shard of ``source`` per rank; every rank gets all rows, in order.

    Args:
        predict: ``source_shard -> {name: (rows,) CPU tensor}`` (logits, labels, ...).
        source: the :class:`~ctrkit.training.data_adapters.DataAdapter` to predict.
        equal_batches: every rank must run the same number of batches (sharded tables look
            ids up collectively): shards are padded to one size by repeating a row.

    Returns:
        each column over all rows, in their original order (rank 0's shard first).
    """
    rank, W = world()
    if equal_batches:
        mine = _predict_equal_shard(predict, source, rank, W)
    else:
        mine = predict(source.shard(rank, W))
    if not isinstance(mine, dict):  # bounded-memory metrics: their accumulators are summed
        return mine.reduce(all_reduce_sum)
    dist = torch.distributed
    comm = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")
    n_local = len(mine["logits"])
    counts = [int(c) for c in _all_gather_ints(n_local, comm)]
    return {k: torch.cat(all_gather_rows(v, counts, comm)) for k, v in mine.items()}


def _predict_equal_shard(predict, source, rank: int, world_size: int
                         ) -> Dict[str, torch.Tensor]:
    """``predict`` on this rank's contiguous part of ``source``, padded to ``ceil(n/W)`` rows
    (the padding's outputs are dropped), so every rank runs the same batches.

    Raises:
        ConfigError: a source that cannot be indexed by row (not in memory).
    """
    if not getattr(source, "in_memory", False) or not hasattr(source, "subset"):
        raise ConfigError(
            f"predict/evaluate of a model with sharded tables (strategy='torchrec') needs "
            f"in-memory input, so that every process runs the same number of batches; got "
            f"{type(source).__name__}. Pass arrays/DataFrames, or save the model on every rank "
            f"and predict with ctrkit.load(...) on one process.")
    n = source.num_rows
    lo, hi = n * rank // world_size, n * (rank + 1) // world_size
    rows = torch.arange(lo, hi)
    width = -(-n // world_size)
    if len(rows) < width:
        fill = rows[-1:] if len(rows) else torch.zeros(1, dtype=torch.long)
        rows = torch.cat([rows, fill.expand(width - len(rows))])
    return {k: v[:hi - lo] for k, v in predict(source.subset(rows)).items()}


def _all_gather_ints(value: int, comm: torch.device) -> List[int]:
    t = torch.tensor([value], dtype=torch.int64, device=comm)
    bufs = [torch.empty_like(t) for _ in range(world()[1])]
    torch.distributed.all_gather(bufs, t)
    return [int(b.item()) for b in bufs]


def model_state(model) -> Optional[dict]:
    """``model.state_dict()`` as one process would hold it: with sharded tables, the shards
    gathered (a collective: call it on every rank; ranks other than 0 get None)."""
    if is_sharded(model):
        from .torchrec_strategy import full_state_dict
        return full_state_dict(model, _comm_device())
    return model.state_dict()


def _comm_device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def plan(trainer, train, batch_size: int) -> LocalPlan:
    """The plan for one ``fit`` on ``train`` (the trainer's training
    :class:`~ctrkit.training.data_adapters.DataAdapter`): DDP when the strategy asks for it or
    torchrun launched us, else the plain one-process loop.

    Raises:
        ConfigError: DDP without a torchrun environment, fewer rows than processes, or ranks
            that were given different training data.
    """
    strategy = getattr(trainer, "strategy", None)
    if getattr(strategy, "name", None) == "torchrec":
        return TorchRecPlan(trainer, train, batch_size)
    if is_sharded(trainer.model):
        raise ConfigError("This model's embedding tables were sharded by strategy='torchrec' "
                          "and can only train that way; compile it with strategy='torchrec', "
                          "or save it (on every rank) and ctrkit.load the file to get an "
                          "unsharded model.")
    if strategy == "ddp" or (strategy is None and launched_with_torchrun()):
        return DDPPlan(trainer, train, batch_size)
    return LocalPlan(trainer, train, batch_size)


__all__ = ["STRATEGIES", "DDPPlan", "LocalPlan", "TorchRecPlan", "all_gather_rows",
           "all_reduce_sum", "check_strategy", "gather_predictions", "init_process_group",
           "is_rank_zero", "is_sharded", "launched_with_torchrun", "local", "model_state", "plan",
           "step_bounds", "uses_ddp", "world"]
