"""Two streams of work over the same items on two threads, their heads taking turns.

Item ``j`` of the lead stream runs on a helper thread, item ``j`` of the follow stream on the calling thread;
each stream signals when an item's head is over (``head_done``: a forward's CNN, its activation peak). The
heads take turns: the follow stream starts item ``j`` once the lead's head ``j`` is over, and the lead starts
item ``j + 1`` once the follow's head ``j`` is over, so no two heads ever run at once, whichever stream is the
slower one (with only the first rule, a lead faster than the follow catches up with it, and its next head runs
beside the follow's head). Work that needs both streams' results of item ``j`` comes in two shares, one per
thread (``finish_lead`` on the helper, ``finish_follow`` here), after ``check(j)``, which runs once both are
done. The lead stream runs at most one item ahead, so at most two items' results are held.

A failure on either thread stops both (no thread is left waiting) and is raised here.
:func:`half_the_threads_each` makes the pool whose threads, like the calling thread, run torch ops on half
of torch's threads.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, List

import torch


@contextmanager
def half_the_threads_each(helpers: int, name: str = "side-by-side") -> Iterator[ThreadPoolExecutor]:
    """A pool of ``helpers`` threads; it and the calling thread run torch ops on half of torch's threads (restored after).

    torch's thread count is per thread and a new thread takes the process's setting at its first op, so the
    setting is halved before the pool exists. Inference mode is per thread too: jobs set it for themselves.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // 2))
    pool = ThreadPoolExecutor(helpers, thread_name_prefix=name)
    try:
        yield pool
    finally:
        pool.shutdown()
        torch.set_num_threads(threads)


class _Stopped(Exception):
    """The other thread failed; this one stops where it is."""


def run_staggered(count: int, pool: ThreadPoolExecutor, lead: Callable[[int, Callable[[], None]], None],
                  follow: Callable[[int, Callable[[], None]], None], check: Callable[[int], None],
                  finish_lead: Callable[[int], None], finish_follow: Callable[[int], None],
                  helper_context: Callable[[Callable[[], None]], None] = lambda job: job()) -> None:
    """Run ``count`` items through both streams (see the module doc); ``helper_context(job)`` wraps the helper's work.

    ``lead(j, head_done)`` and ``follow(j, head_done)`` call ``head_done()`` when item ``j``'s head is over
    (an item that never does counts as all head).
    """
    if count == 0:
        return
    lead_head, follow_head, lead_done, checked = ([threading.Event() for _ in range(count)] for _ in range(4))
    failed = threading.Event()
    everything: List[threading.Event] = lead_head + follow_head + lead_done + checked

    def wait(event: threading.Event) -> None:
        event.wait()
        if failed.is_set():
            raise _Stopped

    def stop() -> None:
        failed.set()
        for event in everything:
            event.set()

    def helper() -> None:
        try:
            for j in range(count):
                if j:
                    wait(follow_head[j - 1])
                lead(j, lead_head[j].set)
                lead_head[j].set()  # also when the lead item never reached the end of its head
                lead_done[j].set()
                if j:
                    wait(checked[j - 1])
                    finish_lead(j - 1)
            wait(checked[count - 1])
            finish_lead(count - 1)
        except _Stopped:
            pass
        except BaseException:
            stop()
            raise

    future = pool.submit(helper_context, helper)
    try:
        for j in range(count):
            wait(lead_head[j])
            follow(j, follow_head[j].set)
            follow_head[j].set()
            wait(lead_done[j])
            check(j)
            checked[j].set()
            finish_follow(j)
    except _Stopped:
        pass
    except BaseException:
        stop()
        future.exception()  # the helper has stopped before anything is torn down
        raise
    future.result()  # the helper's own failure, if it had one
