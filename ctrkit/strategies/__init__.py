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
decide identically, because every rank sees identical logs."""
from __future__ import annotations

from typing import Any, Optional

from ..errors import ConfigError
from .base import LocalPlan, is_sharded, uses_ddp
from .comm import (all_gather_rows, all_reduce_sum, gather_predictions, init_process_group,
                   is_rank_zero, launched_with_torchrun, local, step_bounds, world)
from .comm import comm_device
from .ddp import DDPPlan
from .torchrec import TorchRec, TorchRecPlan, full_state_dict

#: values of ``compile(strategy=...)``: None detects a torchrun launch, 'ddp' demands one,
#: 'torchrec' (or a :class:`~ctrkit.strategies.torchrec.TorchRec`) shards the tables.
STRATEGIES = (None, "ddp", "torchrec")


def check_strategy(strategy: Any) -> Any:
    """``strategy`` if it is one of :data:`STRATEGIES` (``'torchrec'`` becomes ``TorchRec()``)
    or a :class:`~ctrkit.strategies.torchrec.TorchRec`.

    Raises:
        ConfigError: any other value.
    """
    if isinstance(strategy, TorchRec):
        return strategy
    if strategy == "torchrec":
        return TorchRec()
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be None (data-parallel when launched with torchrun), "
                          f"'ddp' or 'torchrec' (sharded embedding tables), got {strategy!r}.")
    return strategy


def model_state(model) -> Optional[dict]:
    """``model.state_dict()`` as one process would hold it: with sharded tables, the shards
    gathered (a collective: call it on every rank; ranks other than 0 get None)."""
    if is_sharded(model):
        return full_state_dict(model, comm_device())
    return model.state_dict()


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


__all__ = ["STRATEGIES", "DDPPlan", "LocalPlan", "TorchRec", "TorchRecPlan", "all_gather_rows",
           "all_reduce_sum", "check_strategy", "gather_predictions", "init_process_group",
           "is_rank_zero", "is_sharded", "launched_with_torchrun", "local", "model_state", "plan",
           "step_bounds", "uses_ddp", "world"]
