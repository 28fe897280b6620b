"""Atomic cache builds: a failed or killed build leaves nothing behind and the rerun succeeds."""
import signal
import subprocess
import sys
import threading
import time

import pytest

from upstream_merged.cache import build_atomically, content_key, is_complete


def test_content_key_is_stable_and_order_free():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})


def test_killed_build_leaves_no_target_and_rerun_succeeds(tmp_path):
    target = tmp_path / "merged"

    def crash(tmp):
        (tmp / "model.safetensors").write_text("half")
        raise KeyboardInterrupt  # as if the user killed the merge

    with pytest.raises(KeyboardInterrupt):
        build_atomically(target, crash)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []

    build_atomically(target, lambda tmp: (tmp / "model.safetensors").write_text("whole"))
    assert is_complete(target) and (target / "model.safetensors").read_text() == "whole"


def test_complete_target_is_reused_unless_refreshed(tmp_path):
    target = tmp_path / "t"
    calls = []
    build = lambda tmp: calls.append(1) or (tmp / "x").write_text(str(len(calls)))  # noqa: E731
    build_atomically(target, build)
    build_atomically(target, build)
    assert len(calls) == 1
    build_atomically(target, build, refresh=True)
    assert len(calls) == 2 and (target / "x").read_text() == "2"


def test_source_digests_are_remembered_and_follow_file_changes(tmp_path):
    from upstream_merged.hub.common import _file_digest

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"first")
    first = _file_digest(weights)
    assert _file_digest(weights) == first
    weights.write_bytes(b"second, longer")
    assert _file_digest(weights) != first


# A build that announces itself (writes its temp dir name to flags/READY) and then waits to be killed.
_SLOW_BUILD = """
import sys, time
from pathlib import Path
from upstream_merged.cache import build_atomically

def build(tmp):
    (tmp / "model.safetensors").write_text("half")
    (Path(sys.argv[2]) / "READY").write_text(tmp.name)
    time.sleep(60)

build_atomically(Path(sys.argv[1]), build)
"""


def _start_slow_build(tmp_path, target):
    flag_dir = tmp_path / "flags"
    flag_dir.mkdir()
    process = subprocess.Popen([sys.executable, "-c", _SLOW_BUILD, str(target), str(flag_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # wait (at most ~60 s) until the build is inside its temp dir
        if (flag_dir / "READY").is_file() or process.poll() is not None:
            break
        time.sleep(0.1)
    assert (flag_dir / "READY").is_file(), process.communicate()[1]
    return process, (flag_dir / "READY").read_text()


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock"))


def test_sigterm_removes_the_temp_dir_and_ends_the_process_as_sigterm(tmp_path):
    parent = tmp_path / "cache"
    target = parent / "merged"
    process, tmp_name = _start_slow_build(tmp_path, target)
    assert (parent / tmp_name).is_dir() and str(process.pid) in tmp_name  # the temp dir names its owner
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGTERM, stderr  # the default SIGTERM action, after the clean-up
    assert _leftovers(parent) == [] and not target.exists()


def test_next_build_removes_temp_dirs_whose_owner_is_gone(tmp_path):
    parent = tmp_path / "cache"
    process, tmp_name = _start_slow_build(tmp_path, parent / "first")
    process.send_signal(signal.SIGKILL)  # cannot be handled: the temp dir stays behind
    process.communicate(timeout=60)
    assert _leftovers(parent) == [tmp_name]
    from upstream_merged.cache import _tmp_prefix

    alive = parent / (_tmp_prefix(parent / "third") + "live")  # owned by this (running) process
    alive.mkdir()
    build_atomically(parent / "second", lambda tmp: (tmp / "x").write_text("ok"))  # another target, same dir
    assert _leftovers(parent) == [alive.name]
    assert is_complete(parent / "second")


def test_previous_sigterm_handler_is_restored(tmp_path):
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        seen = []
        build_atomically(tmp_path / "t", lambda tmp: seen.append(signal.getsignal(signal.SIGTERM)))
        assert seen and seen[0] is not mine  # during the build SIGTERM unwinds it
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_build_in_a_worker_thread_leaves_signal_handlers_alone(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    seen = []
    worker = threading.Thread(target=build_atomically,
                              args=(tmp_path / "t", lambda tmp: seen.append(signal.getsignal(signal.SIGTERM))))
    worker.start()
    worker.join()
    assert seen == [before] and is_complete(tmp_path / "t")
