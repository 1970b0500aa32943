"""One switch for "a graph is being captured": the layers' static-shape paths.

Some layers run faster with data-dependent shapes (DIN packs the valid history positions with
``nonzero``; DIEN packs its GRU steps). An exported graph needs shapes that depend on the batch
size only, so those layers also have a dense path (every position scored, padding masked after)
that computes the same function. :func:`is_tracing` is the one place that chooses: it is true
inside :func:`tracing` (what :func:`ctrkit.export.export_model` opens), under ``torch.export``
(and so the ONNX exporter built on it) and under ``torch.jit.trace``.

Example:
    >>> from ctrkit.layers.tracing import is_tracing, tracing
    >>> is_tracing()
    False
    >>> with tracing():
    ...     is_tracing()
    True
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import torch

_TRACING: ContextVar[bool] = ContextVar("ctrkit_tracing", default=False)


def is_tracing() -> bool:
    """True while a graph is captured for export: layers must take their static-shape path."""
    return (_TRACING.get() or torch.jit.is_tracing()
            or bool(torch.compiler.is_exporting()))


@contextmanager
def tracing() -> Iterator[None]:
    """Within the block, :func:`is_tracing` is true (layers use their dense, export path)."""
    token = _TRACING.set(True)
    try:
        yield
    finally:
        _TRACING.reset(token)


__all__ = ["is_tracing", "tracing"]
