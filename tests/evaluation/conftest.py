"""Shared pieces of the cached-probe tests: the KS / NSynth tasks on the session's synthetic sets, a feature cache dir."""
from __future__ import annotations

from pathlib import Path

import pytest

from upstream_merged.evaluation.tasks import TaskSetup
from upstream_merged.evaluation.validate import TaskRun
from upstream_merged.testing.s3prl_run import CONFIG_DIR


@pytest.fixture
def ks_task(speech_commands_root) -> TaskRun:
    """Keyword spotting on the synthetic speech_commands set (CPU-small config)."""
    root = speech_commands_root
    return TaskRun("ks", "speech_commands", str(CONFIG_DIR / "speech_commands_cpu_small.yaml"), {
        "config.downstream_expert.datarc.speech_commands_root": str(root / "speech_commands_v0.01"),
        "config.downstream_expert.datarc.speech_commands_test_root": str(root / "speech_commands_test_set_v0.01")})


@pytest.fixture
def nsynth_pitch_task(nsynth_root) -> TaskRun:
    """NSynth pitch class on the synthetic NSynth set, first second of each note."""
    return TaskRun("nsynth_pitch", "nsynth_pitch", str(CONFIG_DIR / "nsynth_pitch_cpu_small.yaml"), {
        "config.downstream_expert.datarc.nsynth_root": str(nsynth_root),
        "config.downstream_expert.datarc.max_seconds": 1.0})


@pytest.fixture
def make_setup(tmp_path):
    """TaskSetup of a TaskRun with a step budget (test modules do not import conftest)."""

    def make(task: TaskRun, steps: int = 40, eval_step: int = 20) -> TaskSetup:
        budgeted = task.with_budget(steps, eval_step)
        return TaskSetup.from_files(budgeted.downstream, budgeted.config, budgeted.overrides, expdir=tmp_path / "expdir")

    return make


@pytest.fixture
def feature_root(tmp_path_factory) -> Path:
    """One feature cache for the whole session (extraction is done once per upstream and split)."""
    return tmp_path_factory.getbasetemp() / "feature_cache"
