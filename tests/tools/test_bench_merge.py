"""tools/bench_merge.py at tiny size: repeated ratio runs with their median and range, and the RSS-only mode."""
import os
import re
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_merge.py"
TINY = ["--tiny", "--clips", "4", "--seconds", "0.5", "--batch", "2", "--rss-clips", "1", "--skip-effect"]


def run_bench(*extra: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(TOOL), *TINY, *extra], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_ratio_repeats_print_each_run_median_and_range():
    out = run_bench("--repeat", "2", "--skip-rss", "--side-by-side-baseline")
    runs = re.findall(r"^run (\d): .* ratio ([0-9.]+) wall, ([0-9.]+) CPU time$", out, flags=re.M)
    assert [number for number, _, _ in runs] == ["1", "2"], out
    summary = re.search(r"median of 2 run\(s\): ([0-9.]+) \(range ([0-9.]+)-([0-9.]+)\) wall, "
                        r"([0-9.]+) \(range ([0-9.]+)-([0-9.]+)\) CPU time", out)
    assert summary, out
    walls = sorted(float(w) for _, w, _ in runs)
    median, low, high = (float(v) for v in summary.group(1, 2, 3))
    assert (low, high) == (walls[0], walls[-1]) and low <= median <= high
    assert "scrambled permutations recovered" in out and "peak RSS" not in out
    side = re.search(r"side by side .*: ([0-9.]+), ([0-9.]+) s; ratio merge / those, median of 2 run\(s\): "
                     r"([0-9.]+) \(range ([0-9.]+)-([0-9.]+)\) wall", out)
    assert side and all(float(v) > 0 for v in side.group(3, 4, 5)), out
    assert float(side.group(4)) <= float(side.group(3)) <= float(side.group(5))


def test_skip_ratio_measures_only_the_peak_rss_each_run_then_median_and_range():
    out = run_bench("--skip-ratio", "--repeat", "2")
    assert "ratio merge / bare forwards" not in out and "recovered" not in out
    for clips in (1, 10):
        runs = re.search(rf"^peak RSS, {clips} clips, each run \(GB\): ([0-9.]+), ([0-9.]+)$", out, flags=re.M)
        assert runs, out
        assert all(0.1 < float(v) < 8 for v in runs.groups())
    summary = re.search(r"median of 2 run\(s\): 1 clips ([0-9.]+) \(range ([0-9.]+)-([0-9.]+)\) GB, "
                        r"10 clips ([0-9.]+) \(range ([0-9.]+)-([0-9.]+)\) GB", out)
    assert summary, out
    low, high = float(summary.group(2)), float(summary.group(3))
    assert low <= float(summary.group(1)) <= high


def test_repeat_must_be_positive():
    done = subprocess.run([sys.executable, str(TOOL), "--repeat", "0"], capture_output=True, text=True)
    assert done.returncode != 0 and "--repeat must be at least 1" in done.stderr
