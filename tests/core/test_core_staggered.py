"""core.staggered: the follow stream trails the lead stream's heads; shares run once after their check; failures stop both."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from upstream_merged.core.staggered import half_the_threads_each, run_staggered


class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.events = []

    def __call__(self, *event):
        with self.lock:
            self.events.append(event)

    def index(self, *event):
        return self.events.index(event)


def run(count, log, fail=None, follow_head=0.0):
    def lead(j, head_done):
        log("lead head", j, threading.current_thread().name)
        time.sleep(0.01)
        log("lead head done", j)
        head_done()
        if fail == ("lead", j):
            raise RuntimeError(f"lead {j} failed")
        time.sleep(0.02)
        log("lead done", j)

    def follow(j, head_done):
        log("follow", j, threading.current_thread().name)
        if fail == ("follow", j):
            raise ValueError(f"follow {j} failed")
        time.sleep(follow_head)
        log("follow head done", j)
        head_done()
        time.sleep(0.01)
        log("follow done", j)

    def check(j):
        if fail == ("check", j):
            raise KeyError(f"check {j} failed")
        log("check", j)

    with ThreadPoolExecutor(1, thread_name_prefix="helper") as pool:
        run_staggered(count, pool, lead, follow, check, lambda j: log("finish lead", j), lambda j: log("finish follow", j))


def test_each_follow_item_starts_after_the_lead_items_head_and_each_share_runs_once_after_its_check():
    log = Log()
    run(4, log)
    for j in range(4):
        assert log.index("lead head done", j) < [i for i, e in enumerate(log.events) if e[:2] == ("follow", j)][0]
        assert log.index("lead done", j) < log.index("check", j) and log.index("follow done", j) < log.index("check", j)
        assert log.index("check", j) < log.index("finish lead", j) and log.index("check", j) < log.index("finish follow", j)
    assert sorted(e for e in log.events if e[0].startswith("finish")) == sorted(
        [("finish lead", j) for j in range(4)] + [("finish follow", j) for j in range(4)])
    assert {e[2] for e in log.events if e[0] == "lead head"} == {"helper_0"}
    assert {e[2] for e in log.events if e[0] == "follow"} == {threading.current_thread().name}


@pytest.mark.parametrize("follow_head", [0.0, 0.05])
def test_no_two_heads_run_at_once_even_when_the_follow_is_the_slower_stream(follow_head):
    log = Log()
    run(5, log, follow_head=follow_head)
    for j in range(5):
        follow_start = [i for i, e in enumerate(log.events) if e[:2] == ("follow", j)][0]
        assert log.index("lead head done", j) < follow_start
        if j:  # the lead's next head waits for the follow's head, however far ahead the lead could run
            lead_start = [i for i, e in enumerate(log.events) if e[:2] == ("lead head", j)][0]
            assert log.index("follow head done", j - 1) < lead_start


def test_the_lead_runs_at_most_one_item_ahead():
    log = Log()
    run(5, log)
    for j in range(2, 5):  # lead item j starts only after item j - 2 was checked (its results can go)
        start = [i for i, e in enumerate(log.events) if e[:2] == ("lead head", j)][0]
        assert log.index("check", j - 2) < start


@pytest.mark.parametrize("where, error", [(("lead", 1), RuntimeError), (("follow", 2), ValueError),
                                          (("check", 0), KeyError)])
def test_a_failure_on_either_thread_stops_both_and_is_raised(where, error):
    log = Log()
    began = time.perf_counter()
    with pytest.raises(error, match=f"{where[0]} {where[1]} failed"):
        run(6, log, fail=where)
    assert time.perf_counter() - began < 5  # nobody was left waiting
    assert not any(e[0] == "lead head" and e[1] == 5 for e in log.events)


def test_no_items_is_a_no_op():
    with ThreadPoolExecutor(1) as pool:
        run_staggered(0, pool, None, None, None, None, None)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_the_pool_and_the_caller_each_run_on_half_the_threads_and_the_count_is_restored(threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with half_the_threads_each(2, "half") as pool:
            seen = [future.result() for future in [pool.submit(lambda: (threading.current_thread().name,
                                                                        torch.get_num_threads())) for _ in range(2)]]
            assert torch.get_num_threads() == max(1, threads // 2)
        assert all(name.startswith("half") and count == max(1, threads // 2) for name, count in seen)
        assert torch.get_num_threads() == threads
        with pytest.raises(RuntimeError, match="inside"):
            with half_the_threads_each(1):
                raise RuntimeError("inside")
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
