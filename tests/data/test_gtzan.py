"""upstream_merged/data/gtzan.py writes GTZAN's layout (+ MARBLE-format split lists on request), deterministically."""
import subprocess

import soundfile as sf

from data_helpers import DATA_CLI
from upstream_merged.data import gtzan as make_gtzan
from upstream_merged.downstream.readers import GTZAN_GENRES, read_gtzan


def test_layout_lists_and_determinism(tmp_path):
    make_gtzan.build(tmp_path / "a", clips_per_genre=3, seconds=1.0, write_lists=True)
    make_gtzan.build(tmp_path / "b", clips_per_genre=3, seconds=1.0, write_lists=True)
    a, b = tmp_path / "a", tmp_path / "b"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)

    assert sorted(p.name for p in (a / "genres").iterdir()) == list(GTZAN_GENRES)
    assert sorted(p.name for p in (a / "genres" / "jazz").iterdir()) == [f"jazz.0000{i}.wav" for i in range(3)]
    audio, rate = sf.read(a / "genres" / "metal" / "metal.00001.wav")
    assert rate == 22050 and audio.shape == (22050,) and abs(audio).max() > 0.5
    lines = {name: (a / name).read_text().splitlines() for name in ("train_filtered.txt", "valid_filtered.txt",
                                                                    "test_filtered.txt")}
    listed = [line for split in lines.values() for line in split]
    assert sorted(listed) == sorted(f"{g}/{g}.0000{i}.wav" for g in GTZAN_GENRES for i in range(3))
    assert all(len(v) == 10 for v in lines.values())  # one per genre each with 3 clips

    data = read_gtzan({"gtzan_root": str(a)})
    assert [len(data.splits[s]) for s in ("train", "dev", "test")] == [10, 10, 10]
    assert data.classes == GTZAN_GENRES


def test_genres_differ_in_tempo_and_drums(tmp_path):
    import numpy as np

    classical = [make_gtzan.draw_arrangement(np.random.default_rng(i), "classical") for i in range(5)]
    metal = [make_gtzan.draw_arrangement(np.random.default_rng(i), "metal") for i in range(5)]
    assert all(a.drums == "none" for a in classical) and all(a.drums == "metal" and a.drive > 0 for a in metal)
    assert max(a.tempo for a in classical) < min(a.tempo for a in metal)


def test_cli_refuses_a_non_empty_output(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = subprocess.run([*DATA_CLI, "gtzan", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "not empty" in result.stderr
