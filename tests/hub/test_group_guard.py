"""A hub cache miss inside a multi-rank process group is an error with the pre-build command, never a build.

(The same with s3prl's own barrier pattern on 2 gloo processes: tests/permutation/test_perm_torchrun.py.)
"""
import shlex

import pytest

import upstream_merged.hub.common as common
import upstream_merged.hub.group_guard as guard
from upstream_merged.hub.common import build_cached, merged_cache_dir, packaged_recipe
from upstream_merged.hub.group_guard import PrebuildRequired
from upstream_merged.recipe import load_recipe, recipe_yaml


@pytest.fixture
def in_a_group(monkeypatch, tmp_path):
    """This process is rank 1 of a 4-rank group with a cache of its own; any build fails the test."""
    monkeypatch.setenv("UPSTREAM_MERGED_CACHE", str(tmp_path / "cache"))  # the session cache may hold these builds
    monkeypatch.setattr(guard, "process_group_place", lambda: (1, 4))
    monkeypatch.setattr(common, "build_atomically", lambda *a, **k: pytest.fail("built inside the group"))


def test_a_miss_names_the_entry_and_gives_commands_that_build_exactly_the_cache_dir(in_a_group):
    recipe = load_recipe(packaged_recipe("tiny_hubert_mert")).effective()
    target = merged_cache_dir(recipe)
    with pytest.raises(PrebuildRequired) as caught:
        build_cached(recipe, entry="merged_hubert_mert_tiny")
    message = str(caught.value)
    assert message.startswith("merged_hubert_mert_tiny: its permutation merge is not in the cache")
    assert "rank 1 of a 4-rank torch.distributed group" in message and "NCCL: 10 minutes" in message
    lines = [line.strip() for line in message.splitlines()]
    python = shlex.split(next(line for line in lines if line.startswith("python -m upstream_merged merge")))
    torchrun = shlex.split(next(line for line in lines if line.startswith("torchrun")))
    assert python[4:] == torchrun[6:] and python[5] == str(target)
    recipe_file = python[4]
    assert load_recipe(recipe_file) == recipe and open(recipe_file).read() == recipe_yaml(recipe)
    assert not target.exists()


def test_refresh_inside_a_group_is_refused_even_on_a_hit_and_a_plain_hit_loads(in_a_group):
    recipe = load_recipe(packaged_recipe("tiny_hubert_mert_cnn")).effective()
    target = merged_cache_dir(recipe)
    target.mkdir(parents=True)
    (target / ".complete").write_text("ok\n")
    assert build_cached(recipe, entry="merged_hubert_mert_cnn_tiny") == target
    with pytest.raises(PrebuildRequired, match=r"(?s)-r \(refresh\) asks to rebuild .*--force"):
        build_cached(recipe, refresh=True, entry="merged_hubert_mert_cnn_tiny")


def test_a_mam_miss_gets_no_torchrun_line_and_outside_a_group_nothing_is_refused(monkeypatch, tmp_path):
    recipe = load_recipe(packaged_recipe("tiny_mam_hubert_bert"))
    monkeypatch.setattr(guard, "process_group_place", lambda: (0, 2))
    with pytest.raises(PrebuildRequired) as caught:
        guard.refuse_build_in_process_group("mam_hubert_bert_tiny", recipe, tmp_path / "mam-x", refresh=False)
    assert "python -m upstream_merged merge" in str(caught.value) and "torchrun" not in str(caught.value)
    monkeypatch.setattr(guard, "process_group_place", lambda: (0, 1))
    guard.refuse_build_in_process_group("mam_hubert_bert_tiny", recipe, tmp_path / "mam-y", refresh=True)
    assert not (tmp_path / "mam-y.recipe.yaml").exists()
