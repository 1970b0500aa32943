"""A user's iterable of batches split between the processes of a torchrun launch."""
from __future__ import annotations

import os
from typing import Any, Iterator, Optional

from ..errors import ConfigError


class RankShard:
    """This process's share of an iterable of batches (see :func:`shard_by_rank`).

    Iterating it iterates ``data`` (again, for each epoch, if ``data`` is re-iterable) and
    keeps batch ``i`` of the pass when ``i % world_size == rank``. Batches go out in groups of
    ``world_size``: with ``drop_last`` an incomplete last group is dropped on every rank, so
    every rank yields the same number of batches.

    Attributes:
        data, rank, world_size, drop_last: as given.

    Example:
        >>> shard = RankShard(list(range(5)), rank=0, world_size=2, drop_last=True)
        >>> list(shard), len(shard)              # batch 4 (an incomplete group) dropped
        ([0, 2], 2)
    """

    #: what the data adapters look for: the rows are already split between the ranks
    ctrkit_rank_shard = True

    def __init__(self, data: Any, rank: int, world_size: int, drop_last: bool) -> None:
        self.data, self.rank, self.world_size = data, rank, world_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[Any]:
        W, rank = self.world_size, self.rank
        mine, have = None, False
        for i, item in enumerate(self.data):
            if i % W == rank:
                mine, have = item, True
                if not self.drop_last:
                    yield item
                    have = False
            if i % W == W - 1 and have:
                yield mine
                have = False

    def __len__(self) -> int:
        n = len(self.data)  # TypeError for data without a length, as for any iterable
        if self.drop_last:
            return n // self.world_size
        return n // self.world_size + (1 if self.rank < n % self.world_size else 0)


def shard_by_rank(data: Any, rank: Optional[int] = None, world_size: Optional[int] = None, *,
                  drop_last: bool = True) -> RankShard:
    """Split an iterable of batches (a DataLoader, a list, a generator) between processes, the
    way ``DistributedSampler`` splits a data set: batch ``i`` goes to rank ``i % world_size``.

    Under torchrun, ``fit``/``evaluate``/``predict`` accept a generic iterable only through
    this helper (a ``ParquetDataset`` splits itself, by files and row groups). The contract:

    - every rank must iterate the same stream (same order: seed a shuffling DataLoader's
      ``generator`` alike on every rank); each rank reads every batch and keeps its own, so
      reading is not divided, only the computation (Parquet divides both);
    - ``drop_last=True`` (for ``fit``): every rank runs the same number of steps, so no rank
      waits for another in a collective; the last ``len % world_size`` batches of each pass
      (fewer than ``world_size``) are dropped, as ``DistributedSampler(drop_last=True)``
      drops rows;
    - ``drop_last=False`` (for ``evaluate``/``predict``, which refuse ``drop_last=True``):
      every batch once; ranks may get one batch more than others (the collective passes
      agree batch by batch), and ``predict`` returns the rows in the stream's order on every
      rank.

    Args:
        data: the iterable of batches, each ``(x_batch, y_batch[, w_batch])`` or ``x_batch``.
        rank, world_size: this process and how many there are (default: torchrun's ``RANK``
            and ``WORLD_SIZE``, or the initialised process group's).
        drop_last: drop an incomplete last group of batches (see above).

    Returns:
        a :class:`RankShard` to pass to ``fit``/``evaluate``/``predict``.

    Raises:
        ConfigError: ``rank`` not in ``0..world_size-1``.

    Example:
        >>> batches = [({"user": [i]}, [0.0]) for i in range(5)]
        >>> [b[0]["user"][0] for b in shard_by_rank(batches, rank=1, world_size=2)]
        [1, 3]
        >>> len(shard_by_rank(batches, rank=0, world_size=2, drop_last=False))
        3
    """
    if world_size is None or rank is None:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            env_rank, env_world = dist.get_rank(), dist.get_world_size()
        else:
            env_rank = int(os.environ.get("RANK", "0"))
            env_world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = env_rank if rank is None else rank
        world_size = env_world if world_size is None else world_size
    if int(world_size) < 1 or not 0 <= int(rank) < int(world_size):
        raise ConfigError(f"shard_by_rank: rank must be in 0..world_size-1, got rank={rank} "
                          f"and world_size={world_size}.")
    return RankShard(data, int(rank), int(world_size), bool(drop_last))


__all__ = ["RankShard", "shard_by_rank"]
