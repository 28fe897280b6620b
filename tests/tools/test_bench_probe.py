"""tools/bench_probe.py, shortened: lean vs stock probe pairs on the tiny KS set, identical results, ratio summary."""
from __future__ import annotations

import re

import pytest
from superb_tool_helpers import tool


def test_pairs_print_seconds_ratio_and_identity(evalsets, tmp_path, capsys):
    bench = tool("bench_probe")
    code = bench.main(["--evalsets", str(evalsets), "--task", "ks", "--entry", "hubert_tiny", "--steps", "40",
                       "--eval-step", "20", "--repeat", "2", "--work-dir", str(tmp_path / "work")])
    out = capsys.readouterr().out
    assert code == 0, out
    pairs = re.findall(r"^pair (\d): lean ([0-9.]+) s .* stock ([0-9.]+) s .*; ratio ([0-9.]+); identical: yes$", out, re.M)
    assert [p[0] for p in pairs] == ["1", "2"], out
    summary = re.search(r"median of 2 pair\(s\): ([0-9.]+) \(range ([0-9.]+)-([0-9.]+)\); every pair identical: yes", out)
    assert summary, out
    ratios = sorted(float(p[3]) for p in pairs)
    assert (float(summary.group(2)), float(summary.group(3))) == (ratios[0], ratios[-1])


def test_bad_budget_is_refused(evalsets):
    bench = tool("bench_probe")
    with pytest.raises(SystemExit):
        bench.main(["--evalsets", str(evalsets), "--steps", "0"])
