"""core.memory.own_peak_rss: a child process's peak resident set is its own, not its parent's."""
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
