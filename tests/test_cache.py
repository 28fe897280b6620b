"""Atomic cache builds: a failed build leaves nothing behind and the rerun succeeds."""
import pytest

from upstream_merged.cache import build_atomically, content_key, is_complete


def test_content_key_is_stable_and_order_free():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})


def test_killed_build_leaves_no_target_and_rerun_succeeds(tmp_path):
    target = tmp_path / "merged"

    def crash(tmp):
        (tmp / "model.safetensors").write_text("half")
        raise KeyboardInterrupt  # as if the user killed the merge

    with pytest.raises(KeyboardInterrupt):
        build_atomically(target, crash)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []

    build_atomically(target, lambda tmp: (tmp / "model.safetensors").write_text("whole"))
    assert is_complete(target) and (target / "model.safetensors").read_text() == "whole"


def test_complete_target_is_reused_unless_refreshed(tmp_path):
    target = tmp_path / "t"
    calls = []
    build = lambda tmp: calls.append(1) or (tmp / "x").write_text(str(len(calls)))  # noqa: E731
    build_atomically(target, build)
    build_atomically(target, build)
    assert len(calls) == 1
    build_atomically(target, build, refresh=True)
    assert len(calls) == 2 and (target / "x").read_text() == "2"


def test_source_digests_are_remembered_and_follow_file_changes(tmp_path):
    from upstream_merged.hub.common import _file_digest

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"first")
    first = _file_digest(weights)
    assert _file_digest(weights) == first
    weights.write_bytes(b"second, longer")
    assert _file_digest(weights) != first
