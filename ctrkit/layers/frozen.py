"""Constants derived from weights, computed once per inference call instead of once per batch.

In eval mode without autograd, a layer can fold its weights into cheaper constants (DIN's
unit merges its first layer's blocks and Dice's running statistics). Computing them costs tens
of small ops, which on a 1024-row predict batch is several percent of the time. Inside
:func:`frozen_weights` (the predict/evaluate/explain loops) :func:`derived` keeps them across
batches. Every reuse is checked against the source tensors' version counters and storage, so a
weight changed in place (or replaced) in the middle of the loop, e.g. by a callback, is seen.
Outside the scope :func:`derived` just computes.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import torch

_CACHE: ContextVar[Optional[Dict[Tuple[int, str], Tuple[tuple, Any]]]] = ContextVar(
    "ctrkit_frozen_weights", default=None)


@contextmanager
def frozen_weights() -> Iterator[None]:
    """Scope in which :func:`derived` values are reused across batches (checked, see above)."""
    token = _CACHE.set({})
    try:
        yield
    finally:
        _CACHE.reset(token)


def derived(owner: object, name: str, sources: Sequence[torch.Tensor],
            compute: Callable[[], Any]) -> Any:
    """``compute()``, reused inside :func:`frozen_weights` while no tensor of ``sources`` (the
    weights it reads) has changed."""
    cache = _CACHE.get()
    if cache is None:
        return compute()
    stamp = tuple((t._version, t.data_ptr()) for t in sources)
    key = (id(owner), name)
    hit = cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    value = compute()
    cache[key] = (stamp, value)
    return value
