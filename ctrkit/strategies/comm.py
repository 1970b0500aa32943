"""The few collectives every strategy uses: who am I, sum, gather rows, gather predictions.

Nothing here knows a strategy; everything works (as a no-op) in a single process.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch

from ..errors import ConfigError

_local_only = False


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


def is_local_only() -> bool:
    """True inside a :func:`local` block."""
    return _local_only


def init_process_group(device: torch.device) -> None:
    """Initialise the default process group from torchrun's environment, if not done yet.

    gloo for a CPU model, NCCL (with ``cuda:LOCAL_RANK`` as this process's device) for CUDA.
    Under ``torchrun --max-restarts=N`` the group's keys carry the restart count, so a
    restarted attempt never reads the addresses of the one that died.

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
    backend = "nccl" if device.type == "cuda" else "gloo"
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None:
        dist.init_process_group(backend)
        return
    # torchrun --max-restarts keeps its store across restarts: the dead attempt's addresses
    # would still be there, and the new ranks would connect to them. One prefix per attempt.
    store, rank, world_size = next(dist.rendezvous("env://"))
    dist.init_process_group(backend, store=dist.PrefixStore(f"ctrkit/attempt{attempt}", store),
                            rank=rank, world_size=world_size)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over all processes (itself in one process)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    out = t.to(comm_device()).clone()
    dist.all_reduce(out)
    return out.to(t.device)


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
                       equal_batches: Optional[Callable[[Dict[str, torch.Tensor]], Any]] = None
                       ) -> Dict[str, torch.Tensor]:
    """Predict a contiguous shard of ``source`` per rank; every rank gets all rows, in order.

    Args:
        predict: ``source_shard -> {name: (rows,) CPU tensor}`` (logits, labels, ...).
        source: the :class:`~ctrkit.training.data_adapters.DataAdapter` to predict.
        equal_batches: with sharded tables, whose lookups are collective, every rank must run
            the same number of forwards: this is the model (``x -> outputs``). Before each
            batch the ranks agree whether any still has one; a rank that ran out runs the
            model on one row of its last batch instead (the output is dropped), until all
            are done. Works for any source whose shards are readable: in memory, Parquet.

    Returns:
        each column over all rows, in their original order (rank 0's shard first).
    """
    rank, W = world()
    part = _Shard(source.shard(rank, W), equal_batches, source)
    mine = predict(part)
    if not isinstance(mine, dict):  # bounded-memory metrics: their accumulators are summed
        return mine.reduce(all_reduce_sum)
    comm = comm_device()
    n_local = len(mine["logits"])
    counts = [int(c) for c in all_gather_ints(n_local, comm)]
    out = {k: torch.cat(all_gather_rows(v, counts, comm)) for k, v in mine.items()}
    if getattr(part, "interleaved", False):  # batch i of the stream was on rank i % W
        sizes: List[Any] = [None] * W
        torch.distributed.all_gather_object(sizes, part.sizes)
        where = _interleaved_positions(sizes)
        for k, v in out.items():
            col = torch.empty_like(v)
            col[where] = v
            out[k] = col
    return out


def _interleaved_positions(sizes: List[List[int]]) -> torch.Tensor:
    """Stream positions of the rows gathered in rank order, when rank r held batches
    r, r + W, r + 2W, ... of the stream with ``sizes[r]`` rows each."""
    W = len(sizes)
    starts, pos = {}, 0
    for k in range(max(len(s) for s in sizes)):
        for r in range(W):
            if k < len(sizes[r]):
                starts[r, k] = pos
                pos += sizes[r][k]
    parts = [torch.arange(starts[r, k], starts[r, k] + n) for r in range(W)
             for k, n in enumerate(sizes[r])]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def any_rank(flag: bool) -> bool:
    """True when ``flag`` is True on at least one rank (a collective; ``flag`` alone in one
    process)."""
    if world()[1] == 1:
        return bool(flag)
    t = torch.tensor([float(bool(flag))], device=comm_device())
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


class _Shard:
    """This rank's shard of a predict/evaluate source, counting its batches' sizes; with
    ``forward`` (sharded tables) its batches go on, as forwards of one row whose output nobody
    sees, until every rank's shard is done (see :func:`gather_predictions`). Everything else
    is the shard's."""

    def __init__(self, part, forward: Optional[Callable[[Dict[str, torch.Tensor]], Any]],
                 whole) -> None:
        self._part, self._forward, self._whole = part, forward, whole
        self.sizes: List[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._part, name)

    def batches(self, batch_size: int):
        self.sizes = []
        last = None
        it = iter(self._part.batches(batch_size))
        while True:
            batch = next(it, None)
            if self._forward is None:
                if batch is None:
                    return
            elif not any_rank(batch is not None):
                return
            if batch is not None:
                last = batch
                self.sizes.append(batch.size)
                yield batch
                continue
            if last is None:  # an empty shard: one row of the whole source stands in
                last = next(iter(self._whole.batches(1)))
            device = getattr(self._forward, "device", torch.device("cpu"))
            self._forward({k: v[:1].to(device) for k, v in last.x.items()})


def all_gather_ints(value: int, comm: torch.device) -> List[int]:
    """Every rank's ``value``, in rank order (a collective)."""
    t = torch.tensor([value], dtype=torch.int64, device=comm)
    bufs = [torch.empty_like(t) for _ in range(world()[1])]
    torch.distributed.all_gather(bufs, t)
    return [int(b.item()) for b in bufs]


def comm_device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
