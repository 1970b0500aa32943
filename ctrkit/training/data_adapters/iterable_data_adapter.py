"""Any iterable of batches: generators, ``torch.utils.data.DataLoader``, lists of batches."""
from __future__ import annotations

import collections.abc
from typing import Any, Iterator, Mapping, Optional, Sequence

from ...errors import ConfigError, InputError
from .array_data_adapter import ArrayDataAdapter
from .data_adapter import Batch, DataAdapter
from .prefetch import Prefetcher


def _unpack(item: Any, need_y: bool, where: str):
    """``(x, y, w)`` of one yielded item: ``x_batch``, ``(x_batch,)``, ``(x_batch, y_batch)``
    or ``(x_batch, y_batch, w_batch)``."""
    if isinstance(item, Mapping):
        item = (item,)
    if not isinstance(item, (tuple, list)) or not 1 <= len(item) <= 3 or not isinstance(
            item[0], Mapping):
        raise InputError(
            f"{where} is a {type(item).__name__}; each batch must be (x_batch, y_batch) or "
            f"(x_batch, y_batch, sample_weight_batch) with x_batch a dict of arrays keyed by "
            f"feature name" + ("" if need_y else " (or x_batch alone, to predict)") + ".")
    x = item[0]
    y = item[1] if len(item) > 1 else None
    w = item[2] if len(item) > 2 else None
    if need_y and y is None:
        raise InputError(f"{where} has no labels; yield (x_batch, y_batch) to fit or "
                         f"evaluate.")
    return x, y, w


class IterableDataAdapter(DataAdapter):
    """Batches from an iterable the user made (it decides batch sizes and order).

    Each yielded batch is encoded with the model's encoders and validated exactly as
    in-memory arrays are (an error names the batch). The first batch is read when the adapter
    is made, so a wrong schema fails before the first step. A background thread reads and
    validates the next batches while the model computes.

    Epochs (Keras semantics): without ``steps`` an epoch is one pass (``iter(data)`` again
    per epoch; an iterator that is used up raises). With ``steps`` an epoch is the next
    ``steps`` batches of one iterator kept across epochs, restarted when a re-iterable
    (DataLoader, list) ends; a used-up one-shot iterator raises.

    Args:
        model: supplies features, task and ``encode_inputs``.
        data: the iterable; groups: extra columns to carry (GAUC's group);
        need_y: labels required; steps: batches per epoch/pass; what: name for errors;
        prefetch: batches read ahead in the reader thread (0: inline).
    """

    uses_batch_size = False

    def __init__(self, model, data: Any, *, groups: Sequence[str] = (), need_y: bool = True,
                 steps: Optional[int] = None, what: str = "x", prefetch: int = 2) -> None:
        self.model, self.data, self.groups, self.need_y = model, data, tuple(groups), need_y
        self.what, self.steps_per_pass, self.prefetch = what, steps, prefetch
        self.one_shot = isinstance(data, collections.abc.Iterator)
        #: a :func:`ctrkit.data.shard_by_rank` share: this rank's batches already (batch i of
        #: the stream on rank i % W)
        self.splits_between_ranks = bool(getattr(data, "ctrkit_rank_shard", False))
        self.interleaved = self.splits_between_ranks
        n = None
        if steps is None and not self.one_shot:
            try:
                n = len(data)
            except TypeError:
                n = None
        self._n_batches = steps if steps is not None else n
        self._index = 0  # batches read so far (for error messages)
        self._passes = 0
        self._live: Optional[Iterator] = iter(data)
        try:
            first = next(self._live)
        except StopIteration:
            raise InputError(f"{what} yielded no batches.") from None
        self._first = self._validate(first)  # schema errors before the first step
        self._first_raw = first
        self.has_targets = self._first.y is not None
        self.has_weights = self._first.w is not None
        self._reader: Optional[Prefetcher] = None

    # ------------------------------------------------------------------ reading
    def _validate(self, item: Any) -> Batch:
        where = f"batch {self._index} of {self.what}"
        self._index += 1
        x, y, w = _unpack(item, self.need_y, where)
        if not self.need_y:
            y = w = None
        if self._index > 1 and (w is not None) != self.has_weights:
            raise InputError(f"{where} {'has' if w is not None else 'lacks'} sample weights but "
                             f"the first batch {'lacks' if w is not None else 'has'} them; "
                             f"yield the same tuple shape every time.")
        try:
            cols = ArrayDataAdapter.from_arrays(
                self.model.features, self.model.task, self.model.encode_inputs(x), y, w,
                groups=self.groups if self.need_y else (), need_y=self.need_y,
                check_weights=False)
        except InputError as e:
            raise type(e)(f"In {where}: {e}") from e
        return Batch(cols.x.tensors, cols.y, cols.w)

    def _raw(self, steps: Optional[int]) -> Iterator[Any]:
        """The raw items of one epoch/pass."""
        self._passes += 1
        taken = 0
        if self._first_raw is not None:  # the batch read up front comes first
            item, self._first_raw = self._first_raw, None
            yield item
            taken += 1
        elif steps is None:
            self._live = None if self.one_shot else iter(self.data)
        restarted = False
        while steps is None or taken < steps:
            if self._live is None:
                if self.one_shot or restarted:
                    break
                self._live, restarted = iter(self.data), True
            try:
                item = next(self._live)
            except StopIteration:
                self._live = None
                if steps is None:
                    break
                continue
            restarted = False
            yield item
            taken += 1
        if taken == 0 or (steps is not None and taken < steps):
            raise InputError(
                f"{self.what} ran out of batches: pass {self._passes} got {taken}"
                + (f" of steps={steps}" if steps is not None else "") + ". "
                + ("It is an iterator, which runs once: pass a re-iterable (a DataLoader, a "
                   "list of batches, a ctrkit.data.ParquetDataset) or a generator that never "
                   "ends together with steps_per_epoch."
                   if self.one_shot else "It yields fewer batches than asked for; lower "
                   "steps_per_epoch/steps."))

    def _read(self, steps: Optional[int]) -> Iterator[Batch]:
        if self._first is not None:
            first, self._first = self._first, None
            raw = self._raw(steps)
            next(raw)  # the first item, validated already
            yield first
            for item in raw:
                yield self._validate(item)
            return
        for item in self._raw(steps):
            yield self._validate(item)

    def _stream(self, steps: Optional[int]) -> Iterator[Batch]:
        reader = Prefetcher(lambda: self._read(steps), self.prefetch)
        self._reader = reader
        try:
            yield from reader
        finally:
            reader.close()
            self._reader = None

    # ------------------------------------------------------------------ contract
    def steps(self, batch_size: int) -> Optional[int]:
        return self._n_batches

    def train_batches(self, plan, shuffle: bool, generator) -> Iterator[Batch]:
        return self._stream(self.steps_per_pass)

    def batches(self, batch_size: int) -> Iterator[Batch]:
        return self._stream(self.steps_per_pass)

    def shard(self, rank: int, world_size: int) -> "DataAdapter":
        if self.splits_between_ranks and not self.data.drop_last:
            return self  # this rank's batches; gather_predictions restores the stream order
        if self.splits_between_ranks:
            raise ConfigError(
                f"predict/evaluate need every row once, but {self.what} was split with "
                f"shard_by_rank(..., drop_last=True), which drops the last batches of a pass; "
                f"pass ctrkit.data.shard_by_rank(data, drop_last=False) instead.")
        raise ConfigError(
            f"predict/evaluate under torchrun split their input between processes, which "
            f"a plain iterable of batches cannot be; wrap it in "
            f"ctrkit.data.shard_by_rank(data, drop_last=False) on every rank, predict it on "
            f"one process inside `with ctrkit.strategies.local():`, or pass a "
            f"ctrkit.data.ParquetDataset.")

    def prepare_regularizer(self, regularizer, model) -> None:
        from ...regularizers import Regularizer
        if type(regularizer).prepare is not Regularizer.prepare and getattr(
                regularizer, "strength", 0.0):
            raise ConfigError(
                f"The '{type(regularizer).__name__}' regularizer counts ids over the whole "
                f"training set before the first step, which a one-pass iterable cannot "
                f"give; train from a ctrkit.data.ParquetDataset (it makes a counting pass) "
                f"or use embedding_regularizer='l2'.")

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
