"""Handing freed heap memory back to the operating system between the phases of a merge."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache
from typing import Callable, Optional


@lru_cache(maxsize=1)
def _malloc_trim() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)
    except OSError:
        return None


def release_free_memory() -> bool:
    """Return the allocator's free pages to the OS after a garbage collection; True if it could trim.

    glibc keeps freed tensors below its (self-raising) mmap threshold in its heaps, where they count
    towards the resident set until reused; a merge's phases allocate differently shaped tensors, so
    without a trim one phase's freed activations stay resident under the next phase's peak.
    """
    gc.collect()  # frees tensors held only by reference cycles, so their pages can go too
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
