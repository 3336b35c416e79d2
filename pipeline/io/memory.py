"""Handing memory the engine has freed back to the operating system as a scene streams.

Each chunk allocates tens of MB (its pixels, the valid-pixel table) and frees them once
written. glibc keeps such freed blocks in its heaps for reuse, and with a reader thread per
core those heaps grow and fragment, so peak RSS climbs well above the memory actually in use.
`malloc_trim` returns the free pages; once a chunk, its cost is small beside the chunk's work
(figures in docs/engine.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


def release_freed_memory() -> None:
    """Return free heap pages to the operating system (glibc only; elsewhere nothing)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
