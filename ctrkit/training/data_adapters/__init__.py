"""Sources of validated batches for the Trainer, one adapter per kind of input.

See :mod:`.data_adapter` for the contract; :func:`get_data_adapter` chooses the adapter once
per ``fit``/``evaluate``/``predict`` call.
"""
from __future__ import annotations

import collections.abc
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ...data.parquet import ParquetDataset
from ...errors import ConfigError, InputError
from .array_data_adapter import ArrayDataAdapter
from .data_adapter import Batch, DataAdapter
from .iterable_data_adapter import IterableDataAdapter
from .parquet_data_adapter import ParquetDataAdapter


def is_batch_source(x: Any) -> bool:
    """True for inputs read batch by batch: a :class:`DataAdapter`, a
    :class:`ctrkit.data.ParquetDataset`, or any iterable that is not an array container (a
    generator, an iterator, a ``torch.utils.data.DataLoader``, a list of ``(x_batch,
    y_batch)`` tuples or of ``x_batch`` dicts; a list of arrays is arrays in feature order)."""
    if isinstance(x, DataAdapter) or getattr(type(x), "ctrkit_batch_source", False):
        return True
    if isinstance(x, list) and x:
        # a list of arrays in feature order, or a list of batches: told apart by its items
        first = x[0]
        return isinstance(first, collections.abc.Mapping) or (
            isinstance(first, (tuple, list)) and bool(first)
            and isinstance(first[0], collections.abc.Mapping))
    if isinstance(x, (collections.abc.Mapping, list, tuple, str, bytes, np.ndarray,
                      torch.Tensor)) or x is None:
        return False
    if hasattr(x, "columns") or hasattr(x, "to_numpy"):  # pandas DataFrame / Series
        return False
    return isinstance(x, collections.abc.Iterable)


def get_data_adapter(model, x: Any, y: Any = None, sample_weight: Any = None, *,
                     groups: Sequence[str] = (), need_y: bool = True,
                     steps: Optional[int] = None, what: str = "x") -> DataAdapter:
    """The adapter for ``x`` (already passed through the model's encoders when in memory).

    Args:
        model: the model (its features, task and ``encode_inputs`` validate streamed batches).
        x, y, sample_weight: the user's data.
        groups: extra columns to carry (e.g. the GAUC group).
        need_y: labels are required (fit/evaluate) or not (predict/explain).
        steps: batches per pass of an iterable (Keras' ``steps_per_epoch``/``steps``).
        what: the argument's name for error messages.

    Raises:
        InputError: bad data, or ``y``/``sample_weight`` given beside a batch source.
    """
    if isinstance(x, DataAdapter):
        return x
    if is_batch_source(x):
        if y is not None or sample_weight is not None:
            raise InputError(
                f"{what} is a batch source ({type(x).__name__}), which carries its own labels "
                f"and weights; pass y=None and sample_weight=None (yield (x_batch, y_batch, "
                f"w_batch), or name the columns in ParquetDataset(label=..., weight=...)).")
        if isinstance(x, ParquetDataset):
            if steps is not None:
                raise ConfigError(
                    f"steps_per_epoch/steps apply to an iterable of batches; a ParquetDataset "
                    f"has a known size ({len(x)} rows): one epoch is one pass. Drop steps.")
            return ParquetDataAdapter(x, model, groups=groups, need_y=need_y, what=what)
        make = getattr(x, "data_adapter", None)
        if make is not None:  # a user's batch source that builds its own adapter
            return make(model, groups=groups, need_y=need_y, steps=steps, what=what)
        return IterableDataAdapter(model, x, groups=groups, need_y=need_y, steps=steps,
                                   what=what)
    return ArrayDataAdapter.from_arrays(model.features, model.task, x, y, sample_weight,
                                        groups=groups, need_y=need_y)


__all__ = ["ArrayDataAdapter", "Batch", "DataAdapter", "IterableDataAdapter", "ParquetDataAdapter",
           "get_data_adapter", "is_batch_source"]
