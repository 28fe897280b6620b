"""tools/check_pretrain_gates.py: gate (a) from a run's held-out log, gate (b) from paired probe predictions."""
from __future__ import annotations

import json

import numpy as np
import pytest

from superb_tool_helpers import tool

gates = tool("check_pretrain_gates")


def _finished_run(path, acc, chance):
    path.mkdir()
    rows = [{"kind": "eval", "step": 0, "acc_mfcc": 0.01, "chance_mfcc": chance},
            {"kind": "train", "step": 5, "loss": 1.0},
            {"kind": "eval", "step": 10, "acc_mfcc": acc, "chance_mfcc": chance}]
    (path / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.json").write_text("{}")
    return path


def test_unit_gate_reads_the_last_evaluation_and_needs_twice_the_majority(tmp_path):
    ok = gates.unit_gate(_finished_run(tmp_path / "ok", acc=0.16, chance=0.08))
    assert ok["step"] == 10 and ok["pass"] and ok["codebooks"]["mfcc"]["ratio"] == pytest.approx(2.0)
    low = gates.unit_gate(_finished_run(tmp_path / "low", acc=0.159, chance=0.08))
    assert not low["pass"]
    with pytest.raises(SystemExit, match="neither a finished run"):
        gates.unit_gate(tmp_path)


def _Result(flags):
    """One probe seed's {clip id: correct} map."""
    return {f"clip{i}": bool(f) for i, f in enumerate(flags)}


def test_domain_gate_needs_the_paired_interval_above_zero_for_the_tasks_own_encoder():
    rng = np.random.default_rng(0)
    strong = rng.random(1000) < 0.8
    weak = strong & (rng.random(1000) < 0.85)  # the weak encoder misses 15% of what the strong one gets
    from upstream_merged.evaluation.evalsets import DomainTask
    from upstream_merged.evaluation.validate import TaskRun

    speech_task = DomainTask(TaskRun("ks", "speech_commands", "c.yaml", {}), "speech")
    music_task = DomainTask(TaskRun("pitch", "nsynth_pitch", "c.yaml", {}), "music")
    won = gates.domain_gate(speech_task, [_Result(strong)], [_Result(weak)])
    assert won["pass"] and won["own_minus_other"]["low"] > 0 and won["speech_accuracy"] > won["music_accuracy"]
    lost = gates.domain_gate(music_task, [_Result(strong)], [_Result(weak)])  # the music encoder is the weak one
    assert not lost["pass"] and lost["own_minus_other"]["difference"] < 0
    tie = gates.domain_gate(speech_task, [_Result(strong)], [_Result(strong)])
    assert not tie["pass"]  # equal is not "more than the interval"
    text = gates.markdown({"units": {}, "tasks": [won, lost], "encoders": {"speech": "s", "music": "m"}, "pass": False})
    assert "| ks | speech |" in text and "**no**" in text and "All gates pass: no" in text
