"""Data-parallel training through ``DistributedDataParallel``: :class:`DDPPlan`."""
from __future__ import annotations

import os
from typing import Any, Iterator, List, Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from .base import LocalPlan
from .comm import (all_gather_ints, all_gather_rows, all_reduce_sum, init_process_group,
                   step_bounds)


#: dense embedding-gradient bytes per step above which DDP prints a hint to use TorchRec.
#: Measured (benchmarks/bench_sharded.py, 2 CPU processes, DIN, batch 2048, item table x 16):
#: at 12 MB TorchRec ran at 0.74x DDP's rows/s, at 31 MB 1.16x, at 61 MB 2.65x, at 244 MB 18x.
TORCHREC_HINT_BYTES = 64 * 2 ** 20


def torchrec_hint(model) -> Optional[str]:
    """The hint DDP prints (rank 0, ``verbose`` > 0) when every step would all-reduce more
    than :data:`TORCHREC_HINT_BYTES` of dense embedding gradients, else None.

    Args:
        model: the model (only its table shapes are read; deferred tables count too).

    Returns:
        the hint, or None below the cut-over.

    Example:
        >>> import ctrkit
        >>> from ctrkit.strategies.torchrec import sharded_init
        >>> with sharded_init():                     # shapes only: nothing allocated
        ...     big = ctrkit.build("base", [ctrkit.SparseFeat("item", 10 ** 7, 16)])
        >>> torchrec_hint(big)[:40]
        'strategy=DDP all-reduces 610 MiB of dens'
    """
    size = sum(rows * dim * 4 for rows, dim in model.embeddings.specs.values())
    if size < TORCHREC_HINT_BYTES:
        return None
    return (f"strategy=DDP all-reduces {size / 2 ** 20:.0f} MiB of dense embedding gradients "
            f"every step (every row of every table, whatever the batch looks up); above "
            f"{TORCHREC_HINT_BYTES / 2 ** 20:.0f} MiB compile(strategy='torchrec') trained "
            f"faster in ctrkit's measurements (docs/scaling.md), and holds 1/W of each table "
            f"per process.")


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
                f"in-memory arrays or a ctrkit.data.ParquetDataset, or wrap the iterable in "
                f"ctrkit.data.shard_by_rank(data) on every rank.")
        init_process_group(model.device)
        dist = torch.distributed
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        W = self.world_size
        self.comm = model.device if dist.get_backend() == "nccl" else torch.device("cpu")
        if n is not None and n < W:
            raise ConfigError(f"fit on {W} processes needs at least {W} training rows (one per "
                              f"process), got {n}.")
        if model.device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            if model.device != device:
                model.to(device)
                model.device = device
        if n is not None:
            self._check_same_data(n, source.fingerprint())
        # Same permutations on every rank even with seed=None: rank 0's generator wins.
        state = model.rng.get_state().to(self.comm)
        dist.broadcast(state, 0)
        model.rng.set_state(state.cpu())
        if n is None:  # each rank streams its own share (shard_by_rank): sizes agreed per step
            self._init_stream(trainer)
            return
        self.lo = step_bounds(n, batch_size, W)
        self.steps = len(self.lo)
        self.local_rows = sum(lo[self.rank + 1] - lo[self.rank] for lo in self.lo)
        self.done = 0
        self.ddp = self._wrap(trainer)

    def _init_stream(self, trainer) -> None:
        """A source that is this rank's own stream (no row count): the ranks agree on every
        step's batch sizes as they go (:meth:`batches`)."""
        steps = all_gather_ints(-1 if self.steps is None else self.steps, self.comm)
        if len(set(steps)) > 1:
            raise ConfigError(
                f"Under torchrun every rank must run the same number of steps, but the ranks' "
                f"iterables have {steps} batches; split one stream with "
                f"ctrkit.data.shard_by_rank(data) (drop_last=True, the default, evens them).")
        self.lo, self.sizes, self.done = None, [], 0
        self.ddp = self._wrap(trainer)

    def batches(self, source, shuffle: bool, generator: torch.Generator):
        it = super().batches(source, shuffle, generator)
        return it if self.lo is not None else self._agreed(it)

    def _agreed(self, it):
        """The batches of a per-rank stream; before each step the ranks exchange their batch
        sizes (0: ran out), so all stop together and DDP's loss scale is known."""
        self.sizes, self.done = [], 0
        step = 0
        while True:
            batch = next(it, None)
            n = 0 if batch is None else batch.size
            sizes = all_gather_ints(n, self.comm)
            if not any(sizes):
                return
            if not all(sizes):
                raise ConfigError(
                    f"Under torchrun every rank needs a batch at every step, but at step {step} "
                    f"ranks {[r for r, s in enumerate(sizes) if not s]} ran out while others "
                    f"had batches. Split one stream with ctrkit.data.shard_by_rank(data) "
                    f"(drop_last=True evens the ranks) on every rank.")
            self.sizes.append(sizes)
            self._scale = n * self.world_size / sum(sizes)
            self.done = step = step + 1
            yield batch

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
            hint = torchrec_hint(self.trainer.model) if verbose else None
            if hint is not None:
                print(hint)
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
        if self.lo is None:  # per-rank streams: the rows in rank order (metrics need no order)
            counts = [sum(s[r] for s in self.sizes) for r in range(self.world_size)]
            out = {k: torch.cat(all_gather_rows(v, counts, self.comm)) for k, v in result.items()}
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
