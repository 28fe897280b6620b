"""upstream_merged/data/shared.py: stable ids, all-or-nothing output directories."""
import pytest

from upstream_merged.data import shared as synth


def test_stable_id_is_deterministic_and_uses_the_alphabet():
    a = synth.stable_id("x", 11, "ab")
    assert a == synth.stable_id("x", 11, "ab") and len(a) == 11 and set(a) <= {"a", "b"}
    assert synth.stable_id("x", 16) != synth.stable_id("y", 16)


def test_atomic_output_dir_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with synth.atomic_output_dir(out) as tmp:
            (tmp / "half.wav").write_text("x")
            raise RuntimeError("synthesis failed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_dir_publishes_and_refuses_non_empty(tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # an empty target is fine
    with synth.atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("a")
    assert (out / "a.txt").read_text() == "a" and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(FileExistsError, match="not empty"):
        with synth.atomic_output_dir(out):
            pass
