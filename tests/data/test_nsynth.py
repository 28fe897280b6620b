"""upstream_merged/data/nsynth.py writes NSynth's layout and fields, deterministically, with disjoint instruments per split."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_helpers import DATA_CLI, tree_digest
from upstream_merged.data import nsynth as make_nsynth
from upstream_merged.downstream.readers import NSYNTH_FAMILIES, read_nsynth
from upstream_merged.synth.music import midi_to_hz

FIELDS = {"note", "sample_rate", "pitch", "velocity", "instrument", "instrument_str", "instrument_family",
          "instrument_family_str", "instrument_source", "instrument_source_str", "note_str", "qualities",
          "qualities_str"}


def _checked_notes(root: Path):
    """(split, entry, audio) of every note, after the checks both profiles share: NSynth's fields, id, 4 s at 16 kHz."""
    for split in make_nsynth.SPLIT_DIRS:
        examples = json.loads((root / split / "examples.json").read_text())
        for note_id, entry in examples.items():
            assert FIELDS <= set(entry) and entry["note_str"] == note_id
            assert note_id == f"{entry['instrument_str']}-{entry['pitch']:03d}-{entry['velocity']:03d}"
            assert NSYNTH_FAMILIES[entry["instrument_family"]] == entry["instrument_family_str"]
            assert entry["velocity"] in make_nsynth.VELOCITIES
            audio, rate = sf.read(root / split / "audio" / f"{note_id}.wav")
            assert rate == 16000 and audio.shape == (64000,)
            yield split, entry, audio


def test_layout_fields_and_determinism(tmp_path):
    counts = make_nsynth.build(tmp_path / "a", instruments=(1, 1, 1), notes_per_instrument=2, families=["guitar", "organ"])
    make_nsynth.build(tmp_path / "b", instruments=(1, 1, 1), notes_per_instrument=2, families=["guitar", "organ"])
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert counts == {"nsynth-train": 4, "nsynth-valid": 4, "nsynth-test": 4}

    instruments = {split: set() for split in make_nsynth.SPLIT_DIRS}
    for split, entry, audio in _checked_notes(tmp_path / "a"):
        instruments[split].add(entry["instrument"])
        assert len(entry["qualities"]) == 10
        # the note is at its labelled pitch: strongest low partial of the first second
        spectrum = np.abs(np.fft.rfft(audio[:16000] * np.hanning(16000)))
        assert abs(np.argmax(spectrum[:2000]) - midi_to_hz(entry["pitch"])) <= 2 + 0.02 * midi_to_hz(entry["pitch"])
    assert not (instruments["nsynth-train"] & instruments["nsynth-test"])  # NSynth: disjoint instruments

    data = read_nsynth({"nsynth_root": str(tmp_path / "a")}, "instrument_family")
    assert {len(v) for v in data.splits.values()} == {4} and len(data.classes) == 11


def test_cli_refuses_a_non_empty_output(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = subprocess.run([*DATA_CLI, "nsynth", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "not empty" in result.stderr


# ----------------------------------------------------------------------------- --profile sampled
SAMPLED = dict(notes=(1, 1, 2), seed=2, workers=2, families=["vocal", "organ"], quiet=True)


def test_sampled_programs_split_disjointly_within_every_family():
    programs = make_nsynth.family_programs()
    assert set(programs) == set(NSYNTH_FAMILIES)
    every = [p for group in programs.values() for p in group]
    assert len(every) == len(set(every))  # each GM program in one family only
    for family, group in programs.items():
        split = make_nsynth.split_programs(group, np.random.default_rng(0))
        assert sorted(p for s in split.values() for p in s) == sorted(group)
        assert all(split[s] for s in make_nsynth.SPLIT_DIRS)


def test_sampled_layout_disjointness_conditions_and_determinism(tmp_path):
    summary = make_nsynth.build_sampled(tmp_path / "a", **SAMPLED)
    make_nsynth.build_sampled(tmp_path / "b", **SAMPLED)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    # vocal: 3 programs (1/1/1), organ: 6 (4/1/1); 1 note per train, 1 per valid, 2 per test instrument
    assert summary["clips"] == {"nsynth-train": 5, "nsynth-valid": 2, "nsynth-test": 4}
    assert set(summary["instrument_overlap"].values()) == {0}
    programs = {split: set() for split in make_nsynth.SPLIT_DIRS}
    for split, entry, audio in _checked_notes(tmp_path / "a"):
        programs[split].add(entry["gm_program"])
        low, high = make_nsynth.SAMPLED_RANGES[entry["instrument_family_str"]]
        assert low <= entry["pitch"] <= high
        condition = entry["condition"]
        assert 20 * np.log10(np.abs(audio).max()) == pytest.approx(condition["peak_dbfs"], abs=0.05)
        if split == "nsynth-test":
            assert condition["noise"] != "none"  # music_test always adds noise
    assert not (programs["nsynth-train"] & programs["nsynth-test"]) and not (programs["nsynth-valid"] & programs["nsynth-test"])
    rows = [json.loads(line) for line in (tmp_path / "a" / "clips.jsonl").read_text().splitlines()]
    assert len(rows) == 11 and all((tmp_path / "a" / r["path"]).is_file() for r in rows)
    for target in ("pitch", "instrument_family"):
        data = read_nsynth({"nsynth_root": str(tmp_path / "a")}, target)
        assert [len(data.splits[s]) for s in ("train", "dev", "test")] == [5, 2, 4]
