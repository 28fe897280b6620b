"""The synthetic Speech Commands tool writes s3prl's layout, deterministically, with s3prl's split."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf

TOOL = Path(__file__).resolve().parents[2] / "tools" / "make_speech_commands.py"
sys.path.insert(0, str(TOOL.parent))
from make_speech_commands import COMMANDS, split_of  # noqa: E402

CLASSES = set(COMMANDS) | {"_unknown_", "_silence_"}


def _make(out, *extra, env=None):
    return subprocess.run([sys.executable, str(TOOL), str(out), "--train-speakers", "2", "--dev-speakers", "1",
                           "--test-speakers", "1", *extra], capture_output=True, text=True, env=env)


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.wav")):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_layout_split_and_determinism(tmp_path):
    assert _make(tmp_path / "a").returncode == 0
    assert _make(tmp_path / "b").returncode == 0
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")

    train = tmp_path / "a" / "speech_commands_v0.01"
    test = tmp_path / "a" / "speech_commands_test_set_v0.01"
    assert {p.name for p in test.iterdir()} == CLASSES
    clip = next((train / "yes").glob("*_nohash_*.wav"))
    data, rate = sf.read(clip)
    assert rate == 16000 and len(data) == 16000 and data.ndim == 1
    assert all(len(sf.read(p)[0]) > 16000 for p in (train / "_background_noise_").glob("*.wav"))
    speakers = {p.name.split("_nohash_")[0] for p in train.rglob("*_nohash_*.wav")}
    assert sorted(split_of(s) for s in speakers) == ["dev", "train", "train"]

    from s3prl.downstream.speech_commands.expert import split_dataset

    train_list, dev_list = split_dataset(train)
    assert len(dev_list) > 0 and len(train_list) == 2 * len(dev_list)


def test_missing_espeak_is_a_clear_error(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no espeak-ng, no sox
    result = _make(tmp_path / "out", env=env)
    assert result.returncode == 2 and "espeak-ng" in result.stderr and "apt-get install" in result.stderr
    assert not (tmp_path / "out").exists()


def test_refuses_a_non_empty_output(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = _make(tmp_path)
    assert result.returncode == 2 and "not empty" in result.stderr
