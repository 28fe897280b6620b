"""core.atomic: a file is replaced whole or left as it was, and no temp file is left behind."""
import numpy as np
import pytest

from upstream_merged.core.atomic import temp_path_beside, write_atomically, write_text_atomically


def test_text_replaces_the_old_content_and_creates_missing_parents(tmp_path):
    target = tmp_path / "deep" / "er" / "table.md"
    write_text_atomically(target, "old")
    write_text_atomically(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.md"]


def test_a_failing_writer_keeps_the_old_file_and_removes_its_temp(tmp_path):
    target = tmp_path / "cell.json"
    target.write_text("kept")

    def half_then_fail(temp):
        temp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(target, half_then_fail)
    assert target.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["cell.json"]


def test_the_temp_keeps_the_suffix_so_np_save_writes_the_named_file(tmp_path):
    target = tmp_path / "clip.npy"
    assert temp_path_beside(target).suffix == ".npy" and temp_path_beside(target).name.startswith(".")
    assert temp_path_beside(target) != temp_path_beside(target)  # two writers never share a temp
    write_atomically(target, lambda temp: np.save(temp, np.arange(3)))
    assert np.load(target).tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["clip.npy"]
