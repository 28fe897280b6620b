"""upstream_merged/data/voxceleb1.py writes VoxCeleb1's layout and official iden_split.txt format, deterministically (small and power profiles)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_helpers import tree_digest
from upstream_merged.data import voxceleb1 as vox

LINE = re.compile(r"^([123]) (id1\d{4})/([A-Za-z0-9_-]{11})/(\d{5})\.wav$")


def test_split_file_and_layout(voxceleb1_root):
    lines = (voxceleb1_root / vox.SPLIT_FILE).read_text().splitlines()
    assert len(lines) == 8 * 4 * 2 and all(LINE.match(line) for line in lines)
    by_speaker = {}
    for line in lines:
        split, speaker, video, _ = LINE.match(line).groups()
        by_speaker.setdefault(speaker, {}).setdefault(video, set()).add(split)
        matches = list(Path(voxceleb1_root).glob("*/wav/" + line.split()[1]))  # how s3prl finds the file
        assert len(matches) == 1
        data, rate = sf.read(matches[0])
        assert rate == 16000 and data.ndim == 1
    assert sorted(by_speaker) == [f"id{10001 + i}" for i in range(8)]
    for videos in by_speaker.values():  # split by video: 2 train videos, 1 dev, 1 test per speaker
        assert sorted(s for splits in videos.values() for s in splits) == ["1", "1", "2", "3"]
    assert sorted(p.name for p in (voxceleb1_root / "test" / "wav").iterdir()) == ["id10007", "id10008"]


def test_stock_labels(voxceleb1_root):
    from s3prl.downstream.voxceleb1.dataset import SpeakerClassifiDataset

    paths = [str(p) for p in sorted(Path(voxceleb1_root).glob("*/wav/*/*/*.wav"))]
    assert sorted(set(SpeakerClassifiDataset.build_label(None, paths))) == list(range(8))


def test_two_runs_give_identical_bytes(tmp_path):
    for name in ("a", "b"):
        vox.build(tmp_path / name, speakers=2, videos=3, utterances=1, test_part_speakers=1)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")


def test_rejects_too_few_videos(tmp_path):
    with pytest.raises(ValueError, match="--videos"):
        vox.build(tmp_path / "out", videos=2)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- --profile power
POWER = dict(speakers=3, videos=(1, 1, 1), utterances=(2, 1, 2), seed=5, workers=2, quiet=True)


@pytest.fixture(scope="module")
def power_sets(tmp_path_factory):
    """Two builds with the same arguments."""
    root = tmp_path_factory.mktemp("vox_power")
    return root, {name: vox.build_power(root / name, **POWER) for name in ("a", "b")}


def test_power_layout_and_stock_labels(power_sets):
    root, summaries = power_sets
    lines = (root / "a" / vox.SPLIT_FILE).read_text().splitlines()
    assert len(lines) == 3 * 5 and all(LINE.match(line) for line in lines)
    assert summaries["a"]["clips"] == {"train": 6, "dev": 3, "test": 6}
    from s3prl.downstream.voxceleb1.dataset import SpeakerClassifiDataset

    paths = []
    for line in lines:
        matches = list((root / "a").glob("*/wav/" + line.split()[1]))  # how s3prl finds the file
        assert len(matches) == 1
        data, rate = sf.read(matches[0])
        assert rate == 16000 and data.ndim == 1 and len(data) > 16000
        paths.append(str(matches[0]))
    assert sorted(set(SpeakerClassifiDataset.build_label(None, paths))) == [0, 1, 2]


def test_power_recordings_are_disjoint_between_splits(power_sets):
    root, summaries = power_sets
    rows = vox.degrade.read_conditions(root / "a" / vox.CLIPS_FILE)
    for key in ("text", "video"):
        groups = {s: {json.dumps(r[key], sort_keys=True) for r in rows if r["split"] == s} for s in ("train", "dev", "test")}
        assert not (groups["train"] & groups["test"]) and not (groups["dev"] & groups["test"]) and not (groups["train"] & groups["dev"])
    rooms = {s: {json.dumps(r["video_condition"], sort_keys=True) for r in rows if r["split"] == s} for s in ("train", "test")}
    assert not (rooms["train"] & rooms["test"])
    assert all(r["condition"]["noise"] != "none" for r in rows if r["split"] == "test")  # test profile: always noise
    for key in ("sentence_overlap", "video_overlap", "condition_overlap"):
        assert set(summaries["a"][key].values()) == {0}
    # one speaker per id, with the same base voice in every split, and its level as recorded
    bases = {}
    for row in rows:
        bases.setdefault(row["speaker"], set()).add(json.dumps(row["base_voice"], sort_keys=True))
        audio, _ = sf.read(root / "a" / "dev" / "wav" / row["path"])
        assert 20 * np.log10(np.abs(audio).max()) == pytest.approx(row["condition"]["peak_dbfs"], abs=0.05)
    assert all(len(v) == 1 for v in bases.values()) and len({next(iter(v)) for v in bases.values()}) == 3


def test_power_is_deterministic(power_sets):
    root, _ = power_sets
    assert tree_digest(root / "a") == tree_digest(root / "b")
