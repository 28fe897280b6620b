"""One session-scoped tiny sweep shared by the SUPERB workflow tests (the stock runs cost ~10 s of imports each).

3 entries x 2 tasks, seed 0, 2 local processes: ``nope_entry`` (not a hub entry, KS only: the failing
pair), ``hubert_tiny`` (the reference) and ``merged_hubert_mert_tiny`` on KS (speech_commands) and IC
(fluent_commands), CPU-small configs, synthetic data.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List

import pytest

from upstream_merged.superb import LocalExecutor, SweepTable, parse_spec, run_sweep
from upstream_merged.superb.spec import SweepSpec
from upstream_merged.testing.s3prl_run import CONFIG_DIR

BAD_ENTRY = "nope_entry"


def ks_task(root: Path, **overrides) -> dict:
    """The KS task of a spec on the synthetic speech_commands set (extra -o keys in ``overrides``)."""
    return {"name": "ks", "downstream": "speech_commands", "config": str(CONFIG_DIR / "speech_commands_cpu_small.yaml"),
            "overrides": {"config.downstream_expert.datarc.speech_commands_root": str(root / "speech_commands_v0.01"),
                          "config.downstream_expert.datarc.speech_commands_test_root":
                              str(root / "speech_commands_test_set_v0.01"), **overrides},
            "metric": "acc", "higher_is_better": True, "reference": {"baseline": 0.0, "sota": 1.0}}


def ic_task(root: Path) -> dict:
    """The IC task on the synthetic Fluent Speech Commands set."""
    return {"name": "ic", "downstream": "fluent_commands", "config": str(CONFIG_DIR / "fluent_commands_cpu_small.yaml"),
            "overrides": {"config.downstream_expert.datarc.file_path": str(root)},
            "metric": "acc", "higher_is_better": True, "reference": {"baseline": 0.0, "sota": 1.0}}


@pytest.fixture
def make_ks_task():
    """``ks_task`` for tests (test modules do not import conftest)."""
    return ks_task


@dataclass
class Sweep:
    """The shared sweep: its spec, the table run_sweep returned and the progress lines it logged."""

    spec: SweepSpec
    table: SweepTable
    progress: List[str]
    bad_entry: str = BAD_ENTRY

    @property
    def dir(self) -> Path:
        """The sweep directory."""
        return self.spec.sweep_dir


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory, speech_commands_root, fluent_commands_root, plugin_cache_env) -> Sweep:
    """Run the shared sweep once per session."""
    spec = parse_spec({
        "output_dir": str(tmp_path_factory.mktemp("superb") / "sweep"), "device": "cpu", "seeds": [0],
        "reference_entry": "hubert_tiny", "env": plugin_cache_env,
        "entries": [{"name": BAD_ENTRY, "tasks": ["ks"]}, {"name": "hubert_tiny"},
                    {"name": "merged_hubert_mert_tiny", "label": "merged"}],
        "tasks": [ks_task(speech_commands_root), ic_task(fluent_commands_root)],
    })
    handler = _Lines()
    log = logging.getLogger("upstream_merged.superb")
    previous = log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        table = run_sweep(spec, LocalExecutor(jobs=2))
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)
    return Sweep(spec, table, handler.lines)
