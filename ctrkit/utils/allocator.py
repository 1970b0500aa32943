"""Keep freed activation memory in the process during training (glibc only, switchable).

A DIN training step allocates and frees tens of MB of activations. With glibc's default
malloc settings, each free of the heap's top returns that memory to the OS (the trim
threshold adapts to about twice the largest freed block), so the next step faults the same
pages in again (what that costs is measured in ``docs/performance.md``). ``tune()`` raises
glibc's thresholds once
per process (blocks up to 32 MB come from the heap; the heap is trimmed only when 256 MB lie
free at its top), so a step reuses the previous step's pages; the peak RSS stays the same,
since the heap's high-water mark is set by a step's live activations either way. ``fit`` calls
:func:`release` at its end, which hands all free heap memory back to the OS (``malloc_trim``).
``predict``/``evaluate`` tune too (glibc's adaptive thresholds otherwise make some predict
runs fault their pages in again).

This is process-wide (it is how glibc is configured, like the ``MALLOC_*_`` environment
variables). It is skipped where the C library is not glibc, when the user configured malloc
(``MALLOC_*`` variables or ``GLIBC_TUNABLES``), when another allocator is preloaded, and when
``CTRKIT_MALLOC_TUNING=0`` is set.
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import Optional

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20

_state = {"tuned": None, "libc": None}


def _glibc() -> Optional[ctypes.CDLL]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    if not all(hasattr(libc, f) for f in ("gnu_get_libc_version", "mallopt", "malloc_trim")):
        return None
    return libc


def user_configured() -> Optional[str]:
    """Why tuning is left to the user (a reason), or None."""
    if os.environ.get("CTRKIT_MALLOC_TUNING", "1").strip() == "0":
        return "CTRKIT_MALLOC_TUNING=0"
    for key in os.environ:
        if key.startswith("MALLOC_"):
            return f"{key} is set"
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES sets glibc.malloc"
    if "malloc" in os.environ.get("LD_PRELOAD", ""):
        return "another allocator is preloaded"
    return None


def tune() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; True when they are in effect."""
    if _state["tuned"] is None:
        libc = None if user_configured() else _glibc()
        _state["tuned"] = bool(libc is not None
                               and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                               and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
        _state["libc"] = libc if _state["tuned"] else None
    return _state["tuned"]


def release() -> None:
    """Return the heap's free memory to the OS (after training); a no-op unless tuned."""
    if _state["libc"] is not None:
        _state["libc"].malloc_trim(0)
