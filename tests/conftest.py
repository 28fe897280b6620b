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


def _superb_tool(name: str):
    """Import one of the tools/make_*.py dataset builders."""
    import importlib

    tools = str(REPO_ROOT / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    return importlib.import_module(name)


@pytest.fixture(scope="session")
def fluent_commands_root(tmp_path_factory) -> Path:
    """A small synthetic Fluent Speech Commands set (tools/make_fluent_commands.py): 4/1/1 speakers x 17 commands."""
    root = tmp_path_factory.getbasetemp() / "fluent_commands"
    if not root.exists():
        _superb_tool("make_fluent_commands").build(root, train_speakers=4, valid_speakers=1, test_speakers=1)
    return root


@pytest.fixture(scope="session")
def voxceleb1_root(tmp_path_factory) -> Path:
    """A small synthetic VoxCeleb1 set with iden_split.txt (tools/make_voxceleb1.py): 8 speakers x 4 videos x 2 clips."""
    root = tmp_path_factory.getbasetemp() / "voxceleb1"
    if not root.exists():
        _superb_tool("make_voxceleb1").build(root, speakers=8, videos=4, utterances=2, test_part_speakers=2)
    return root


@pytest.fixture(scope="session")
def iemocap_root(tmp_path_factory) -> Path:
    """A small synthetic IEMOCAP-style corpus with s3prl's meta_data (tools/make_iemocap.py): 5 sessions x 20 clips."""
    root = tmp_path_factory.getbasetemp() / "iemocap"
    if not root.exists():
        _superb_tool("make_iemocap").build(root, utterances=2)
    return root


@pytest.fixture(scope="session")
def nsynth_root(tmp_path_factory) -> Path:
    """A small synthetic NSynth-layout set (tools/make_nsynth.py): 9 families x 2/1/1 instruments x 4 notes."""
    root = tmp_path_factory.getbasetemp() / "nsynth"
    if not root.exists():
        _superb_tool("make_nsynth").build(root, instruments=(2, 1, 1), notes_per_instrument=4)
    return root


@pytest.fixture(scope="session")
def gtzan_root(tmp_path_factory) -> Path:
    """A small synthetic GTZAN-layout set with split lists (tools/make_gtzan.py): 10 genres x 5 clips of 3 s."""
    root = tmp_path_factory.getbasetemp() / "gtzan"
    if not root.exists():
        _superb_tool("make_gtzan").build(root, clips_per_genre=5, seconds=3.0, seed=0, write_lists=True)
    return root


@pytest.fixture(scope="session")
def esc50_root(tmp_path_factory) -> Path:
    """A small synthetic ESC-50-layout set (tools/make_esc50.py): 12 classes x 5 clips (one per fold)."""
    root = tmp_path_factory.getbasetemp() / "esc50"
    if not root.exists():
        _superb_tool("make_esc50").build(root, clips_per_class=5, seed=0)
    return root


@pytest.fixture(scope="session")
def diarization_root(tmp_path_factory) -> Path:
    """Small synthetic two-speaker recordings in Kaldi layout (tools/make_diarization.py): 8/2/2 recordings x 4 turns."""
    root = tmp_path_factory.getbasetemp() / "diarization"
    if not root.exists():
        _superb_tool("make_diarization").build(root, train=8, dev=2, test=2, turns=4)
    return root


@pytest.fixture(scope="session")
def quesst14_root(tmp_path_factory) -> Path:
    """A small synthetic QUESST14-layout set (tools/make_quesst14.py): 4 + 4 spoken-term queries, 16 documents."""
    root = tmp_path_factory.getbasetemp() / "quesst14"
    if not root.exists():
        _superb_tool("make_quesst14").build(root, documents=16)
    return root


@pytest.fixture(scope="session")
def libriphone_root(tmp_path_factory) -> Path:
    """A tiny synthetic LibriSpeech corpus with an espeak-ng phone lexicon (tools/make_libriphone.py)."""
    root = tmp_path_factory.getbasetemp() / "libriphone"
    if not root.exists():
        _superb_tool("make_libriphone").build(root, speakers=2, chapters=1, utterances=4)
    return root


@pytest.fixture(scope="session")
def snips_root(tmp_path_factory) -> Path:
    """A small synthetic Audio-SNIPS-style set with slots (tools/make_snips.py): 16 speakers x 2 utterances."""
    root = tmp_path_factory.getbasetemp() / "snips"
    if not root.exists():
        _superb_tool("make_snips").build(root, per_speaker=2)
    return root
