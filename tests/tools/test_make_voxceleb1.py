"""tools/make_voxceleb1.py writes VoxCeleb1's layout and official iden_split.txt format, deterministically."""
import re
from pathlib import Path

import pytest
import soundfile as sf

from superb_tool_helpers import tool, tree_digest

vox = tool("make_voxceleb1")
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
