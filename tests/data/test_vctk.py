"""upstream_merged/data/vctk.py writes VCTK 0.92's layout (txt/, wav48_silence_trimmed/ with mic1/mic2 FLAC), deterministically."""
import subprocess

import pytest
import soundfile as sf

from data_helpers import DATA_CLI
from upstream_merged.data import vctk as make_vctk
from upstream_merged.mam.zero_shot.data import read_vctk


def test_layout_mics_reader_and_determinism(tmp_path):
    make_vctk.build(tmp_path / "a", speakers=2, utterances=2, seed=0)
    make_vctk.build(tmp_path / "b", speakers=2, utterances=2, seed=0)
    a, b = tmp_path / "a", tmp_path / "b"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert sorted(str(f) for f in files if f.parts[0] == "txt") == [
        "txt/p225/p225_001.txt", "txt/p225/p225_002.txt", "txt/p226/p226_001.txt", "txt/p226/p226_002.txt"]
    mic1 = a / "wav48_silence_trimmed" / "p225" / "p225_001_mic1.flac"
    mic2 = mic1.with_name("p225_001_mic2.flac")
    info = sf.info(str(mic1))
    assert info.samplerate == 48000 and info.channels == 1 and info.format == "FLAC"
    assert mic1.read_bytes() != mic2.read_bytes()  # the mic choice changes the audio
    assert (a / "speaker-info.txt").read_text().startswith("ID  AGE  GENDER  ACCENTS")

    items = read_vctk(a, mic="mic2")
    assert [i.uid for i in items] == ["p225_001_mic2", "p225_002_mic2", "p226_001_mic2", "p226_002_mic2"]
    assert items[0].path == mic2 and items[0].reference == (a / "txt/p225/p225_001.txt").read_text().strip()
    (a / "txt/p226/p226_002.txt").unlink()  # like p315, a recording without a transcript is skipped
    assert len(read_vctk(a, mic="mic1", speakers=["p226"])) == 1
    with pytest.raises(ValueError, match="p999"):
        read_vctk(a, speakers=["p999"])


def test_plan_is_deterministic():
    assert make_vctk.plan(2, 3, seed=4) == make_vctk.plan(2, 3, seed=4) != make_vctk.plan(2, 3, seed=5)


def test_cli_refuses_a_non_empty_output(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = subprocess.run([*DATA_CLI, "vctk", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "not empty" in result.stderr
