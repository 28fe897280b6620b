"""Metadata readers: the real layouts' rules (splits, folds, lists) and errors that name the -o key."""
import json

import numpy as np
import pytest
import soundfile as sf

from upstream_merged.downstream.readers import GTZAN_GENRES, datarc_path, read_esc50, read_gtzan, read_nsynth


def test_unset_or_missing_path_names_the_override(tmp_path):
    with pytest.raises(ValueError, match="-o config.downstream_expert.datarc.gtzan_root="):
        read_gtzan({"gtzan_root": "UNSET: -o config.downstream_expert.datarc.gtzan_root=/path/to/gtzan"})
    with pytest.raises(FileNotFoundError, match="datarc.esc50_root=.*-o config.downstream_expert.datarc.esc50_root"):
        read_esc50({"esc50_root": str(tmp_path / "absent")})
    with pytest.raises(ValueError, match="datarc.nsynth_root is not set"):
        datarc_path({}, "nsynth_root")


def test_nsynth_targets_and_missing_split(tmp_path):
    for split in ("nsynth-train", "nsynth-valid", "nsynth-test"):
        (tmp_path / split).mkdir()
        notes = {"keyboard_synthetic_000-061-100": {"pitch": 61, "instrument_family": 4}}
        (tmp_path / split / "examples.json").write_text(json.dumps(notes))
    datarc = {"nsynth_root": str(tmp_path)}
    assert read_nsynth(datarc, "pitch").splits["dev"][0].label == 61
    assert read_nsynth(datarc, "pitch_class").splits["test"][0].label == 1
    family = read_nsynth(datarc, "instrument_family")
    assert family.classes[family.splits["train"][0].label] == "keyboard"
    assert family.splits["train"][0].path == tmp_path / "nsynth-train" / "audio" / "keyboard_synthetic_000-061-100.wav"
    (tmp_path / "nsynth-valid" / "examples.json").unlink()
    with pytest.raises(FileNotFoundError, match="nsynth-valid/examples.json"):
        read_nsynth(datarc, "pitch")


def _gtzan(root, per_genre=10, folder="genres"):
    for genre in GTZAN_GENRES:
        (root / folder / genre).mkdir(parents=True)
        for i in range(per_genre):
            sf.write(root / folder / genre / f"{genre}.{i:05d}.wav", np.zeros(100), 22050)


def test_gtzan_seeded_stratified_split(tmp_path):
    _gtzan(tmp_path, folder="genres_original")  # the Kaggle copy's folder name
    (tmp_path / "genres_original" / "jazz" / "jazz.00054.wav").write_bytes(b"not audio")  # GTZAN's broken file
    first = read_gtzan({"gtzan_root": str(tmp_path), "split_seed": 3})
    again = read_gtzan({"gtzan_root": str(tmp_path), "split_seed": 3})
    other = read_gtzan({"gtzan_root": str(tmp_path), "split_seed": 4})
    assert first == again and first != other
    assert [len(first.splits[s]) for s in ("train", "dev", "test")] == [80, 10, 10]
    for split in first.splits.values():
        assert {e.label for e in split} == set(range(10))  # every genre in every split
    uids = [e.uid for s in first.splits.values() for e in s]
    assert len(set(uids)) == 100 and "jazz/jazz.00054" not in uids


def test_gtzan_lists_win_and_partial_lists_are_refused(tmp_path):
    _gtzan(tmp_path, per_genre=3)
    (tmp_path / "genres" / "rock" / "rock.00002.wav").unlink()  # marsyas' original archive holds .au files
    sf.write(tmp_path / "genres" / "rock" / "rock.00002.au", np.zeros(100), 22050, format="AU", subtype="PCM_16")
    (tmp_path / "train_filtered.txt").write_text("blues/blues.00000.wav\nrock/rock.00002.wav\n")
    with pytest.raises(FileNotFoundError, match="provide all three"):
        read_gtzan({"gtzan_root": str(tmp_path)})
    (tmp_path / "valid_filtered.txt").write_text("pop/pop.00001.wav\n")
    (tmp_path / "test_filtered.txt").write_text("jazz/jazz.00002.wav\n")
    data = read_gtzan({"gtzan_root": str(tmp_path)})
    assert [e.uid for e in data.splits["train"]] == ["blues/blues.00000", "rock/rock.00002"]
    assert data.splits["train"][1].path.name == "rock.00002.au"
    assert data.splits["dev"][0].label == GTZAN_GENRES.index("pop")


def test_esc50_folds(tmp_path):
    (tmp_path / "meta").mkdir()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    rows += [f"{f}-1{f}{t}-A-{t}.wav,{f},{t},{'dog' if t == 0 else 'rain'},True,1{f}{t},A" for f in range(1, 6) for t in (0, 1)]
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    data = read_esc50({"esc50_root": str(tmp_path), "test_fold": 5})
    assert data.classes == ("dog", "rain")
    assert {e.uid[0] for e in data.splits["test"]} == {"5"} and {e.uid[0] for e in data.splits["dev"]} == {"1"}
    assert {e.uid[0] for e in data.splits["train"]} == {"2", "3", "4"}
    assert {e.uid[0] for e in read_esc50({"esc50_root": str(tmp_path), "test_fold": 2, "dev_fold": 4}).splits["dev"]} == {"4"}
    with pytest.raises(ValueError, match="two different folds"):
        read_esc50({"esc50_root": str(tmp_path), "test_fold": 2, "dev_fold": 2})
