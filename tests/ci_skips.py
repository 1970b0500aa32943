"""CI's rule for skipped tests: in CI a test may skip only for a GPU or for data that is absent by
design; a skip for anything else (an optional extra not installed, a tool missing) means CI is
not exercising a path ctrkit ships, and fails the run.

``tests/conftest.py`` collects every skip reason and applies :func:`disallowed_skips` when the
environment variable ``CI`` is true (``.ci/run`` runs with ``CI=true``).
"""
from __future__ import annotations

import re
from typing import Iterable, List, Tuple

#: skip reasons CI accepts: needs a GPU (CUDA/NCCL), or a real data set that is absent
ALLOWED = (
    re.compile(r"\b(GPU|GPUs|CUDA|NCCL)\b", re.I),
    re.compile(r"not available: set CTRKIT_\w+"),  # real data, read by path (never committed)
    re.compile(r"\bdata\b.*\babsent\b", re.I),
)


def in_ci(environ) -> bool:
    """True when ``CI`` is set to a true value (``true``, ``1``, ``yes``)."""
    return str(environ.get("CI", "")).strip().lower() in ("1", "true", "yes")


def disallowed_skips(skips: Iterable[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """The (test id, reason) pairs whose reason is neither a GPU nor absent data."""
    return [(nodeid, reason) for nodeid, reason in skips
            if not any(p.search(reason) for p in ALLOWED)]
