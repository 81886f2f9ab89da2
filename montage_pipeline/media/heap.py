"""Hand the memory a finished media pass freed back to the system.

A render or a soundtrack frees hundreds of MB of frames and sample blocks when it ends, but glibc's
allocator keeps freed heap pages (in every thread's arena: each encoder thread has its own) for reuse,
so the process stays that large. When the week's steps share one process (the in-process executor, a
backfill run), the next step's peak would sit on top of that. `malloc_trim(0)` returns the free pages;
elsewhere than glibc (musl, macOS) it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc
        return None


def give_back_freed_memory() -> None:
    """Return the allocator's free pages to the system (cheap: a few ms)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
