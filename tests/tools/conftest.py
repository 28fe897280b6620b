"""Fixtures shared by the tools' tests."""
import pytest


@pytest.fixture
def evalsets(tmp_path, speech_commands_root, nsynth_root):
    """An evaluation-sets root in the layout power_tasks reads, pointing at the session's tiny sets."""
    root = tmp_path / "evalsets"
    root.mkdir()
    (root / "speech_commands").symlink_to(speech_commands_root)
    (root / "nsynth").symlink_to(nsynth_root)
    return root
