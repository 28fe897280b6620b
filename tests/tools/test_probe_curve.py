"""tools/probe_curve.py: the points of a pretraining run and a shortened curve on a tiny KS set."""
from __future__ import annotations

import json
import shutil

import pytest
from superb_tool_helpers import tool

from upstream_merged.pretrained import shipped_dir


def fake_run(root, steps, finished=None):
    """A pretrain_small.py run directory: snapshots (copies of the shipped hubert_small) and maybe a finished encoder."""
    for step in steps:
        shutil.copytree(shipped_dir("hubert"), root / "snapshots" / f"step_{step:06d}")
    if finished:
        shutil.copytree(shipped_dir("hubert"), root / "encoder")
        (root / "summary.json").write_text(json.dumps({"steps": finished}))
    return root


def test_points_are_random_init_then_snapshots_then_the_finished_encoder(tmp_path):
    curve = tool("probe_curve")
    run = fake_run(tmp_path / "hubert", [1000, 2000], finished=3000)
    points = curve.run_points("hubert_iter1", run)
    assert [s for s, _ in points] == [0, 1000, 2000, 3000]
    assert points[0][1].entry == "small_random_init1" and points[1][1].entry == "hubert_small"
    assert points[3][1].ckpt == str((run / "encoder").resolve())
    assert [s for s, _ in curve.run_points("hubert_iter1", run, every=2000)] == [0, 2000, 3000]
    mert = fake_run(tmp_path / "mert", [1000])
    assert curve.run_points("mert", mert)[0][1].entry == "small_random_init2"


def test_bad_run_specs_are_refused(tmp_path):
    curve = tool("probe_curve")
    with pytest.raises(SystemExit, match="NAME=DIR"):
        curve.parse_runs(["just_a_dir"])
    with pytest.raises(SystemExit, match="not a directory"):
        curve.parse_runs([f"x={tmp_path / 'missing'}"])


def test_shortened_curve(tmp_path, speech_commands_root):
    curve = tool("probe_curve")
    evalsets = tmp_path / "evalsets"
    evalsets.mkdir()
    (evalsets / "speech_commands").symlink_to(speech_commands_root)
    run = fake_run(tmp_path / "hubert", [100])
    out = tmp_path / "out"
    assert curve.main(["--runs", f"hubert_iter1={run}", "--evalsets", str(evalsets), "--tasks", "ks",
                       "--probe-max-steps", "20", "--jobs", "1", "--work-dir", str(tmp_path / "work"),
                       "--out", str(out)]) == 0
    data = json.loads((out / "probe_curve.json").read_text())
    series = data["runs"]["hubert_iter1"]["ks"]
    assert [p["step"] for p in series] == [0, 100] and all(0 <= p["accuracy"] <= 1 for p in series)
    assert 0 < data["chance"]["ks"] < 1 and (out / "probe_curve.png").stat().st_size > 0
    assert "| 100 |" in (out / "probe_curve.md").read_text()
