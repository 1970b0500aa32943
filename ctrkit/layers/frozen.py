"""Constants derived from weights, computed once per inference call instead of once per batch.

In eval mode without autograd, a layer can fold its weights into cheaper constants (DIN's
unit merges its first layer's blocks and Dice's running statistics). Computing them costs tens
of small ops, which on a 1024-row predict batch is several percent of the time. Inside
:func:`frozen_weights` (the predict/evaluate/explain loops) :func:`derived` keeps them across
batches.

Staleness is guarded twice:

- the loop that opens the scope calls :meth:`FrozenWeights.clear` whenever user code (a
  callback) ran since the last batch, so anything a callback changes is seen, including
  edits through ``.data`` (which bypass version counters) and plain attributes such as
  ``Dice.eps``;
- every reuse is checked against the source tensors' version counters and storage, so an
  in-place change made any other way (a layer updating its own buffer) is seen too.

Weights created under ``torch.inference_mode()`` have no version counter; for those
:func:`derived` just computes. Outside the scope it also just computes.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import torch


class FrozenWeights:
    """The cache of one :func:`frozen_weights` scope."""

    def __init__(self) -> None:
        self.values: Dict[Tuple[int, str], Tuple[tuple, Any]] = {}

    def clear(self) -> None:
        """Forget every derived value (call it after user code may have changed weights)."""
        self.values.clear()


_SCOPE: ContextVar[Optional[FrozenWeights]] = ContextVar("ctrkit_frozen_weights", default=None)


@contextmanager
def frozen_weights() -> Iterator[FrozenWeights]:
    """Scope in which :func:`derived` values are reused across batches (checked, see above)."""
    scope = FrozenWeights()
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def derived(owner: object, name: str, sources: Sequence[torch.Tensor],
            compute: Callable[[], Any]) -> Any:
    """``compute()``, reused inside :func:`frozen_weights` while no tensor of ``sources`` (the
    weights it reads) has changed."""
    scope = _SCOPE.get()
    if scope is None or any(t.is_inference() for t in sources):
        return compute()
    stamp = tuple((t._version, t.data_ptr()) for t in sources)
    key = (id(owner), name)
    hit = scope.values.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    value = compute()
    scope.values[key] = (stamp, value)
    return value
