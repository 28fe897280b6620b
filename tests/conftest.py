"""Shared fixtures: an isolated plugin cache, offline HF, and one synthetic speech_commands set per session."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline_and_isolated_cache(monkeypatch, tmp_path_factory):
    """No test reaches the network; the plugin cache lives in a per-session temp dir."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("UPSTREAM_MERGED_CACHE", str(tmp_path_factory.getbasetemp() / "plugin_cache"))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread; two mostly wait for each other on a 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def speech_commands_root(tmp_path_factory) -> Path:
    """A small synthetic Speech Commands set (tools/make_speech_commands.py) in s3prl's layout."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.fail("espeak-ng and sox are required (tools/setup_env.sh installs them)")
    root = tmp_path_factory.getbasetemp() / "speech_commands"
    if not root.exists():
        subprocess.run(
            [sys.executable, str(REPO_ROOT / "tools" / "make_speech_commands.py"), str(root),
             "--train-speakers", "8", "--dev-speakers", "2", "--test-speakers", "2"],
            check=True, capture_output=True,
        )
    return root


@pytest.fixture(scope="session")
def plugin_cache_env(tmp_path_factory) -> dict:
    """Environment for subprocesses (stock s3prl runs) sharing the session's plugin cache."""
    return {"UPSTREAM_MERGED_CACHE": str(tmp_path_factory.getbasetemp() / "plugin_cache"), "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1"}


@pytest.fixture
def files_under():
    """Snapshot of the files under a directory (size, mtime; bytecode caches aside), to show a run wrote none there.

    Tests compare snapshots instead of asserting a path is absent: a run on the same venv without the hook
    (another checkout, an older release) may have left stock files there, and that is not this run's doing.
    """
    def snapshot(root: Path) -> dict:
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    return snapshot


def _superb_tool(name: str):
    """Import one of the tools/make_*.py dataset builders."""
    import importlib

    tools = str(REPO_ROOT / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    return importlib.import_module(name)


def _synthetic_dataset(dirname: str, tool: str, doc: str, **build_kwargs):
    """A session fixture: the dataset ``tools/<tool>.py`` builds (once per session) with ``build_kwargs``."""

    @pytest.fixture(scope="session")
    def root(tmp_path_factory) -> Path:
        path = tmp_path_factory.getbasetemp() / dirname
        if not path.exists():  # the tools write atomically: an existing dir is a finished one
            _superb_tool(tool).build(path, **build_kwargs)
        return path

    root.__doc__ = f"{doc} (tools/{tool}.py)"
    return root


fluent_commands_root = _synthetic_dataset(
    "fluent_commands", "make_fluent_commands", "A small synthetic Fluent Speech Commands set: 4/1/1 speakers x 17 commands",
    train_speakers=4, valid_speakers=1, test_speakers=1)
voxceleb1_root = _synthetic_dataset(
    "voxceleb1", "make_voxceleb1", "A small synthetic VoxCeleb1 set with iden_split.txt: 8 speakers x 4 videos x 2 clips",
    speakers=8, videos=4, utterances=2, test_part_speakers=2)
iemocap_root = _synthetic_dataset(
    "iemocap", "make_iemocap", "A small synthetic IEMOCAP-style corpus with s3prl's meta_data: 5 sessions x 20 clips",
    utterances=2)
nsynth_root = _synthetic_dataset(
    "nsynth", "make_nsynth", "A small synthetic NSynth-layout set: 9 families x 2/1/1 instruments x 4 notes",
    instruments=(2, 1, 1), notes_per_instrument=4)
gtzan_root = _synthetic_dataset(
    "gtzan", "make_gtzan", "A small synthetic GTZAN-layout set with split lists: 10 genres x 5 clips of 3 s",
    clips_per_genre=5, seconds=3.0, seed=0, write_lists=True)
esc50_root = _synthetic_dataset(
    "esc50", "make_esc50", "A small synthetic ESC-50-layout set: 12 classes x 5 clips (one per fold)",
    clips_per_class=5, seed=0)
diarization_root = _synthetic_dataset(
    "diarization", "make_diarization", "Small synthetic two-speaker recordings in Kaldi layout: 8/2/2 recordings x 4 turns",
    train=8, dev=2, test=2, turns=4)
quesst14_root = _synthetic_dataset(
    "quesst14", "make_quesst14", "A small synthetic QUESST14-layout set: 4 + 4 spoken-term queries, 16 documents",
    documents=16)
libriphone_root = _synthetic_dataset(
    "libriphone", "make_libriphone", "A tiny synthetic LibriSpeech corpus with an espeak-ng phone lexicon",
    speakers=2, chapters=1, utterances=4)
snips_root = _synthetic_dataset(
    "snips", "make_snips", "A small synthetic Audio-SNIPS-style set with slots: 16 speakers x 2 utterances",
    per_speaker=2)
