"""core.memory: a child process's own peak resident set; new threads sharing the heap arena; large buffers unmapped when freed."""
import subprocess
import sys

from upstream_merged.core.memory import own_peak_rss


def test_a_child_reports_its_own_peak_not_the_parents_resident_size():
    """ru_maxrss of a fresh child starts at its parent's resident size on Linux; own_peak_rss must not report that."""
    code = "import json; from upstream_merged.core.memory import own_peak_rss; print(json.dumps(own_peak_rss()))"
    ballast = bytearray(2_000_000_000)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # resident, not just reserved
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    child = int(done.stdout.strip().splitlines()[-1])
    assert own_peak_rss() >= 2_000_000_000  # this process did hold the ballast
    del ballast
    assert 1_000_000 < child < 1_500_000_000  # the child imports upstream_merged, never held the parent's 2 GB


ARENAS = """
import ctypes, sys, threading
from upstream_merged.core.memory import share_the_heap_with_new_threads
applied = share_the_heap_with_new_threads() if sys.argv[1] == "share" else None
def allocate():
    held = [bytearray(1 << 16) for _ in range(64)]  # malloc'ed by this thread
threading.Thread(target=allocate).start()
for thread in threading.enumerate():
    if thread is not threading.current_thread():
        thread.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" block per heap arena, on stderr
print(applied)
"""


def arenas_after_a_thread_allocates(mode: str) -> tuple:
    done = subprocess.run([sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr.count("Arena "), done.stdout.strip().splitlines()[-1]


def test_after_share_the_heap_a_new_thread_allocates_from_the_existing_arena():
    default, _ = arenas_after_a_thread_allocates("default")
    shared, applied = arenas_after_a_thread_allocates("share")
    assert default == 2  # the main arena and the thread's own
    assert (shared, applied) == (1, "True")


MAPPED = """
import ctypes, sys
from upstream_merged.core.memory import unmap_large_buffers

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = Info
libc.free(libc.malloc(31 << 20))  # a mapped buffer freed: glibc's dynamic threshold rises to 31 MiB
applied = unmap_large_buffers() if sys.argv[1] == "unmap" else None
before = libc.mallinfo2().hblkhd
buffer = libc.malloc(30 << 20)
print((libc.mallinfo2().hblkhd - before) >> 20, applied)
libc.free(buffer)
"""


def mapped_mib_of_a_30_mib_buffer(mode: str) -> tuple:
    done = subprocess.run([sys.executable, "-c", MAPPED, mode], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    mapped, applied = done.stdout.split()[-2:]
    return int(mapped), applied


def test_after_unmap_large_buffers_a_buffer_over_the_threshold_is_mapped_on_its_own():
    assert mapped_mib_of_a_30_mib_buffer("default") == (0, "None")  # from the heap, where its hole would stay
    assert mapped_mib_of_a_30_mib_buffer("unmap") == (30, "True")
