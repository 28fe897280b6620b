"""Telling glibc's allocator what to do with freed memory (hand it back between phases, or keep it for reuse), and reading
this process's own peak resident set."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
import sys
from pathlib import Path
from functools import lru_cache
from typing import Callable, Optional

# mallopt parameter numbers (glibc malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
M_ARENA_MAX = -8


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


def _set_allocator(*settings: tuple) -> bool:
    """Apply glibc ``mallopt`` (option, value) settings in order; True if every one applied (False without glibc)."""
    mallopt = _libc_function("mallopt")
    return mallopt is not None and all(mallopt(option, value) == 1 for option, value in settings)


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
    return _set_allocator((M_MMAP_THRESHOLD, mmap_threshold), (M_TRIM_THRESHOLD, trim_threshold), (M_TOP_PAD, top_pad))


def share_the_heap_with_new_threads() -> bool:
    """Make threads that start allocating from now on use the existing heap arenas; True if glibc took the setting.

    glibc gives each new thread that allocates its own arena (up to eight per core), and each arena keeps the
    buffers its thread freed for reuse: a helper thread that runs a forward holds a second forward's worth of
    freed activations. The limit is one arena, read when the next thread first allocates and kept for the
    life of the process (glibc never re-reads it): later threads share arenas too. Threads that already
    have an arena keep it.
    """
    return _set_allocator((M_ARENA_MAX, 1))


def unmap_large_buffers(threshold: int = 24 << 20, trim_threshold: int = 64 << 20) -> bool:
    """Have glibc map every buffer of ``threshold`` bytes or more on its own and unmap it when freed; True if it took both.

    By default glibc raises its mmap threshold to the size of each mapped buffer freed (up to 32 MiB), so a
    forward's largest activations (a 5 s clip's first CNN layer: 31.25 MiB each) soon come from the heap,
    where two threads' allocations interleave and the holes they leave stay resident. The trim threshold
    (free bytes at the heap's top kept for reuse) is set as well: left at its 128 KiB default, the heap
    would be handed back and faulted in again at every forward. Process-wide and kept for the life of the
    process (glibc's dynamic threshold is off from then on).
    """
    return _set_allocator((M_MMAP_THRESHOLD, threshold), (M_TRIM_THRESHOLD, trim_threshold))


def own_peak_rss() -> int:
    """This process's peak resident set in bytes: VmHWM of its own address space.

    Not ``getrusage().ru_maxrss``: Linux carries the parent's resident size at fork into the child's
    ru_maxrss across execve, so a child of a parent holding 2.4 GB reports at least 2.4 GB whatever it
    does itself (a benchmark's parent may hold models). VmHWM belongs to the new image. Elsewhere,
    ru_maxrss (bytes on macOS, KiB on Linux and the BSDs).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
