"""Round 2's per-predict cache of weight-derived constants, now retired (names kept).

DIN's inference scoring used to fold its weights into constants once per ``predict`` call and
reuse them across batches inside :func:`frozen_weights`. It bought 4-5% on predict
(``docs/performance.md``), below the 10% that pays for a second inference path; DIN now
scores through one function in training and inference and computes what it needs per batch.
The names stay importable for code written against round 2: :func:`frozen_weights` is an empty
scope and :func:`derived` always computes.

    >>> import torch
    >>> with frozen_weights() as scope:
    ...     derived(object(), "twice", [torch.ones(2)], lambda: 2).__add__(1)
    3
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch


class FrozenWeights:
    """The (empty) scope :func:`frozen_weights` yields."""

    def clear(self) -> None:
        """Nothing is cached, so nothing to forget."""


@contextmanager
def frozen_weights() -> Iterator[FrozenWeights]:
    """An empty scope (round 2 cached derived constants inside it)."""
    yield FrozenWeights()


def derived(owner: object, name: str, sources: Sequence[torch.Tensor],
            compute: Callable[[], Any]) -> Any:
    """``compute()`` (round 2 reused it inside :func:`frozen_weights`)."""
    return compute()


__all__ = ["FrozenWeights", "frozen_weights", "derived"]
