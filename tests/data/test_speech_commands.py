"""The synthetic Speech Commands tool writes s3prl's layout, deterministically, with s3prl's split (small and power profiles)."""
import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_helpers import DATA_CLI
from upstream_merged.data import speech_commands as ks
from upstream_merged.data.speech_commands import COMMANDS, split_of
from upstream_merged.synth import degrade

CLASSES = set(COMMANDS) | {"_unknown_", "_silence_"}


def _make(out, *extra, env=None):
    return subprocess.run([*DATA_CLI, "speech_commands", str(out), "--train-speakers", "2", "--dev-speakers", "1",
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


# ----------------------------------------------------------------------------- --profile power
POWER = dict(n_train=2, n_dev=1, n_test=2, unknown_per_speaker=1, seed=3, workers=2, quiet=True)


@pytest.fixture(scope="module")
def power_sets(tmp_path_factory):
    """Two builds with the same arguments and one with clean test conditions."""
    root = tmp_path_factory.mktemp("ks_power")
    summaries = {name: ks.build_power(root / name, **POWER) for name in ("a", "b")}
    summaries["clean"] = ks.build_power(root / "clean", **dict(POWER, test_conditions="clean"))
    return root, summaries


def test_power_layout_is_what_the_stock_recipe_reads(power_sets):
    root, summaries = power_sets
    train, test = root / "a" / ks.TRAIN_DIR, root / "a" / ks.TEST_DIR
    assert {p.name for p in test.iterdir()} == CLASSES
    for clip in list(train.glob("*/*_nohash_*.wav")) + list(test.glob("*/*.wav")):
        data, rate = sf.read(clip)
        assert rate == 16000 and data.shape == (16000,)
    assert all(sf.info(str(p)).frames > 16000 for p in (train / "_background_noise_").glob("*.wav"))
    from s3prl.downstream.speech_commands.expert import split_dataset

    train_list, dev_list = split_dataset(train)
    assert len(train_list) == 2 * 11 and len(dev_list) == 11  # 10 commands + 1 auxiliary word per speaker
    assert summaries["a"]["clips"] == {"train": 22, "dev": 11, "test": 2 * 11 + 2}
    assert {name for name, _ in train_list} <= set(COMMANDS) | set(ks.AUXILIARY_WORDS)


def test_power_speakers_are_disjoint_between_splits(power_sets):
    root, summaries = power_sets
    rows = degrade.read_conditions(root / "a" / ks.CLIPS_FILE)
    speakers = {s: {r["speaker"] for r in rows if r["split"] == s and r["speaker"]} for s in ("train", "dev", "test")}
    assert [len(speakers[s]) for s in ("train", "dev", "test")] == [2, 1, 2]
    assert not (speakers["train"] & speakers["test"]) and not (speakers["dev"] & speakers["test"])
    assert all(split_of(s) == "train" for s in speakers["train"]) and all(split_of(s) == "dev" for s in speakers["dev"])
    voices = {s: {json.dumps(r["voice"], sort_keys=True) for r in rows if r["split"] == s and r.get("voice")}
              for s in ("train", "dev", "test")}
    assert not (voices["train"] & voices["test"])
    assert set(summaries["a"]["speaker_overlap"].values()) == {0} and set(summaries["a"]["voice_overlap"].values()) == {0}


def test_power_is_deterministic(power_sets):
    root, _ = power_sets
    assert _digest(root / "a") == _digest(root / "b")
    assert (root / "a" / ks.CLIPS_FILE).read_bytes() == (root / "b" / ks.CLIPS_FILE).read_bytes()


def test_power_test_clips_carry_their_recorded_condition(power_sets):
    root, _ = power_sets
    rows = {r["path"]: r for r in degrade.read_conditions(root / "a" / ks.CLIPS_FILE)}
    clean_rows = {r["path"]: r for r in degrade.read_conditions(root / "clean" / ks.CLIPS_FILE)}
    assert len(rows) == len(list((root / "a").rglob("*_nohash_*.wav")))
    tests = [r for r in rows.values() if r["split"] == "test" and r["label"] != "_silence_"]
    assert tests and all(r["condition"]["noise"] != "none" for r in tests)  # the test profile always adds noise
    for row in tests:
        audio, _ = sf.read(root / "a" / row["path"], dtype="float32")
        clean, _ = sf.read(root / "clean" / row["path"], dtype="float32")
        assert clean_rows[row["path"]]["condition"]["noise"] == "none"
        # level: the peak is the recorded one
        assert 20 * np.log10(np.abs(audio).max()) == pytest.approx(row["condition"]["peak_dbfs"], abs=0.05)
        # noise: where the clean clip is digital silence (before the word), the test clip is not
        lead = int(clean_rows[row["path"]]["offset_s"] * 16000)
        if lead > 400 and row["condition"]["reverberance"] == 0:
            assert np.abs(clean[:lead]).max() == 0.0 and np.abs(audio[:lead]).max() > 0.0
    train_rows = [r for r in rows.values() if r["split"] == "train"]
    assert all(degrade.Condition.from_json(r["condition"]) for r in train_rows)
