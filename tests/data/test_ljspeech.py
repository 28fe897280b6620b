"""upstream_merged/data/ljspeech.py writes LJ Speech 1.1's layout (metadata.csv columns, 22.05 kHz wavs), deterministically."""
import subprocess

import soundfile as sf

from data_helpers import DATA_CLI
from upstream_merged.data import ljspeech as make_ljspeech
from upstream_merged.mam.zero_shot.data import read_ljspeech


def test_layout_reader_and_determinism(tmp_path):
    make_ljspeech.build(tmp_path / "a", utterances=3, seed=1)
    make_ljspeech.build(tmp_path / "b", utterances=3, seed=1)
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "metadata.csv").read_bytes() == (b / "metadata.csv").read_bytes()
    assert sorted(p.name for p in (a / "wavs").iterdir()) == ["LJ001-0001.wav", "LJ001-0002.wav", "LJ001-0003.wav"]
    assert all(p.read_bytes() == (b / "wavs" / p.name).read_bytes() for p in (a / "wavs").iterdir())
    lines = (a / "metadata.csv").read_text().splitlines()
    assert len(lines) == 3 and all(len(line.split("|")) == 3 for line in lines)
    info = sf.info(str(a / "wavs" / "LJ001-0001.wav"))
    assert info.samplerate == 22050 and info.channels == 1 and info.subtype == "PCM_16" and info.duration > 0.3
    items = read_ljspeech(a)
    assert [i.uid for i in items] == ["LJ001-0001", "LJ001-0002", "LJ001-0003"]
    assert items[0].reference == lines[0].split("|")[2]  # the normalized column is the reference


def test_abbreviations_are_expanded_in_the_normalized_column():
    rows = make_ljspeech.plan(60, seed=0)
    assert rows == make_ljspeech.plan(60, seed=0) and rows != make_ljspeech.plan(60, seed=1)
    expanded = [r for r in rows if r[1] != r[2]]
    assert expanded and all(r[1].startswith(("Mr.", "Mrs.", "Dr.")) for r in expanded)
    assert rows[50][0] == "LJ002-0001"  # 50 utterances per chapter


def test_cli_refuses_a_non_empty_output(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = subprocess.run([*DATA_CLI, "ljspeech", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "not empty" in result.stderr
