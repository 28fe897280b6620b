"""Two streams of work over the same items on two threads, the second trailing the first by a head start.

Item ``j`` of the lead stream runs on a helper thread, item ``j`` of the follow stream on the calling thread.
The follow stream starts item ``j`` only once the lead stream has signalled that item's head is over
(``head_done``): the two heads of an item never run at the same time, and when the rest of a lead item
takes longer than a follow item's head (a forward's CNN against its transformer), the follow head ends
before the lead's next head starts. Work that needs both streams' results of item ``j`` comes in two shares,
one per thread (``finish_lead`` on the helper, ``finish_follow`` here), after ``check(j)``, which runs once
both are done. The lead stream runs at most one item ahead, so at most two items' results are held.

A failure on either thread stops both (no thread is left waiting) and is raised here.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List


class _Stopped(Exception):
    """The other thread failed; this one stops where it is."""


def run_staggered(count: int, pool: ThreadPoolExecutor, lead: Callable[[int, Callable[[], None]], None],
                  follow: Callable[[int], None], check: Callable[[int], None],
                  finish_lead: Callable[[int], None], finish_follow: Callable[[int], None],
                  helper_context: Callable[[Callable[[], None]], None] = lambda job: job()) -> None:
    """Run ``count`` items through both streams (see the module doc); ``helper_context(job)`` wraps the helper's work."""
    if count == 0:
        return
    head_done, lead_done, checked = ([threading.Event() for _ in range(count)] for _ in range(3))
    failed = threading.Event()
    everything: List[threading.Event] = head_done + lead_done + checked

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
                lead(j, head_done[j].set)
                head_done[j].set()  # also when the lead item never reached the end of its head
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
            wait(head_done[j])
            follow(j)
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
