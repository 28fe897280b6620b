"""upstream_merged/data/esc50.py writes ESC-50's layout (csv columns, file names, 5 balanced folds), deterministically."""
import csv
import subprocess
from collections import Counter

import soundfile as sf

from data_helpers import DATA_CLI
from upstream_merged.data import esc50 as make_esc50
from upstream_merged.downstream.readers import read_esc50
from upstream_merged.synth.events import CATEGORIES


def test_layout_folds_and_determinism(tmp_path):
    make_esc50.build(tmp_path / "a", clips_per_class=5)
    make_esc50.build(tmp_path / "b", clips_per_class=5)
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "meta" / "esc50.csv").read_bytes() == (b / "meta" / "esc50.csv").read_bytes()
    assert all(p.read_bytes() == (b / "audio" / p.name).read_bytes() for p in (a / "audio").iterdir())

    with open(a / "meta" / "esc50.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == ("filename", "fold", "target", "category", "esc10", "src_file", "take")
        rows = list(reader)
    assert len(rows) == 5 * len(CATEGORIES) and len({r["filename"] for r in rows}) == len(rows)
    assert Counter((r["fold"], r["target"]) for r in rows) == Counter(
        {(str(f), str(t)): 1 for f in range(1, 6) for t in range(len(CATEGORIES))})
    for row in rows:
        assert row["filename"] == f"{row['fold']}-{row['src_file']}-{row['take']}-{row['target']}.wav"
        assert CATEGORIES[int(row["target"])] == row["category"] and row["esc10"] in ("True", "False")
    assert sum(r["esc10"] == "True" for r in rows) == 10 * 5
    audio, rate = sf.read(a / "audio" / rows[0]["filename"])
    assert rate == 44100 and audio.shape == (5 * 44100,)

    data = read_esc50({"esc50_root": str(a), "test_fold": 3})
    assert [len(data.splits[s]) for s in ("train", "dev", "test")] == [36, 12, 12]
    assert all(e.uid.startswith("3-") for e in data.splits["test"]) and all(e.uid.startswith("4-") for e in data.splits["dev"])


def test_takes_of_one_source_share_a_fold():
    rows = make_esc50.plan(clips_per_class=40, seed=0)
    folds = {}
    for row in rows:
        folds.setdefault((row["target"], row["src_file"]), set()).add(row["fold"])
    assert all(len(f) == 1 for f in folds.values())
    assert any(row["take"] == "B" for row in rows)


def test_cli_refuses_a_non_empty_output(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = subprocess.run([*DATA_CLI, "esc50", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "not empty" in result.stderr
