"""Telling glibc's allocator what to do with freed memory: hand it back between phases, or keep it for reuse."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache
from typing import Callable, Optional

# mallopt parameter numbers (glibc malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


@lru_cache(maxsize=None)
def _libc_function(name: str) -> Optional[Callable[..., int]]:
    """A function of glibc's allocator (``malloc_trim``, ``mallopt``), or None where the C library has none."""
    library = ctypes.util.find_library("c")
    if not library:
        return None
    try:
        return getattr(ctypes.CDLL(library), name, None)
    except OSError:
        return None


def release_free_memory() -> bool:
    """Return the allocator's free pages to the OS after a garbage collection; True if it could trim.

    glibc keeps freed tensors below its (self-raising) mmap threshold in its heaps, where they count
    towards the resident set until reused; a merge's phases allocate differently shaped tensors, so
    without a trim one phase's freed activations stay resident under the next phase's peak.
    """
    gc.collect()  # frees tensors held only by reference cycles, so their pages can go too
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


def keep_freed_memory_in_the_heap(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30,
                                  top_pad: int = 256 << 20) -> bool:
    """Ask glibc to reuse freed buffers instead of unmapping them; True where every setting applied.

    A loop that frees and reallocates the same large buffers (training steps) otherwise has them mmap'ed
    and unmapped each time, and the page faults cost CPU time on every iteration. Buffers up to
    ``mmap_threshold`` bytes come from the heap, which is trimmed only past ``trim_threshold`` free bytes
    and grows ``top_pad`` bytes at a time. Costs resident memory: not for memory-bound runs.
    """
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    settings = ((M_MMAP_THRESHOLD, mmap_threshold), (M_TRIM_THRESHOLD, trim_threshold), (M_TOP_PAD, top_pad))
    return all(mallopt(option, value) == 1 for option, value in settings)
