"""Recipes (strict schema, packaged presets) and hub entries (cache, -k merged dir, -g recipe, stock s3prl run)."""
from __future__ import annotations

import json

import pytest
import torch

from upstream_merged.hub.common import PACKAGE_RECIPES
from upstream_merged.hub.permutation import PERMUTATION_ENTRIES, entry_recipe
from upstream_merged.permutation.presets import PRESETS
from upstream_merged.permutation.recipe import PermutationRecipe
from upstream_merged.recipe import RecipeError, load_recipe, parse_recipe
from upstream_merged.registry import entries
from upstream_merged.testing.s3prl_run import CONFIG_DIR, run_downstream, speech_commands_overrides

BASE = {"method": "permutation", "sources": {"a": "tiny:hubert", "b": "tiny:mert_v0"}}


def test_recipe_schema_is_strict():
    with pytest.raises(RecipeError, match="calibration.frame_rate"):
        parse_recipe({**BASE, "calibration": {"synthetic": {}, "frame_rate": 3}})
    with pytest.raises(RecipeError, match="sources"):
        parse_recipe({**BASE, "sources": {"reference": "x", "b": "y"}})
    with pytest.raises(RecipeError, match="exclude each other"):
        parse_recipe({**BASE, "components": ["attn", "qkv_independent"]})
    with pytest.raises(RecipeError, match="calibration needs audio"):
        parse_recipe({**BASE, "calibration": {"batch_size": 4}})
    with pytest.raises(RecipeError, match="preset"):
        parse_recipe({**BASE, "preset": "everything"})
    with pytest.raises(RecipeError, match="alpha"):
        parse_recipe({**BASE, "alpha": 1.5})
    recipe = parse_recipe({**BASE, "preset": "cnn", "alpha": 0.7, "components": ["ffn"]})
    assert recipe.settings() == ("cnn", ("ffn",), 0.7)
    assert parse_recipe(BASE).settings() == ("cnn_ffn_attn", ("cnn", "ffn", "attn"), 0.9)


def test_every_entry_has_packaged_recipes_matching_its_preset():
    names = set(entries())
    for suffix, (preset, recipe_suffix, _) in PERMUTATION_ENTRIES.items():
        assert f"merged_hubert_mert{suffix}" in names and f"merged_hubert_mert{suffix}_tiny" in names
        for prefix in ("", "tiny_"):
            recipe = load_recipe(PACKAGE_RECIPES / f"{prefix}hubert_mert{recipe_suffix}.yaml")
            assert isinstance(recipe, PermutationRecipe) and recipe.preset == preset
            assert recipe.settings()[2] == PRESETS[preset].alpha
            assert all(s.startswith("tiny:") for s in recipe.sources.values()) == (prefix == "tiny_")
    table = {p.paper_id for p in PRESETS.values()}
    assert {3, 4, 5, 6, 7, 8, 9} <= table


def test_entry_preset_fills_a_recipe_without_one(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("method: permutation\nsources: {a: tiny:hubert, b: tiny:mert_v0}\ncalibration: {synthetic: {clips: 2}}\n")
    assert entry_recipe(None, str(path), "tiny_hubert_mert_cnn", "cnn").preset == "cnn"
    path.write_text(path.read_text() + "preset: ffn_attn\n")
    with pytest.raises(ValueError, match="builds preset 'cnn'.*preset 'ffn_attn'.*-u merged_hubert_mert_ffn_attn"):
        entry_recipe(str(path), None, "tiny_hubert_mert_cnn", "cnn")  # another preset: an error, never dropped


def test_tiny_entry_builds_once_caches_and_loads_a_merged_dir():
    hub = entries()
    upstream = hub["merged_hubert_mert_avg_tiny"]()
    wavs = [torch.randn(16000), torch.randn(12000)]
    upstream.eval()
    with torch.no_grad():
        hidden = upstream(wavs)["hidden_states"]
    assert len(hidden) == 3 and hidden[0].shape == (2, 49, 32)
    from upstream_merged.hub.common import merged_cache_dir

    directory = merged_cache_dir(entry_recipe(None, None, "tiny_hubert_mert_avg", "avg"))
    report = json.loads((directory / "merge_report.json").read_text())
    assert report["preset"] == "avg" and report["alpha"] == 0.5 and report["groups"] == {}
    built = (directory.stat().st_ino, (directory / "model.safetensors").stat().st_mtime_ns)
    again = hub["merged_hubert_mert_avg_tiny"]()  # reused, not rebuilt (timing: tools/bench_cache.py)
    assert (directory.stat().st_ino, (directory / "model.safetensors").stat().st_mtime_ns) == built
    direct = hub["merged_hubert_mert_avg"](ckpt=str(directory))  # -k <merged dir>: no build, that merge
    for upstream_b in (again, direct):
        upstream_b.eval()
        with torch.no_grad():
            assert torch.equal(upstream_b(wavs)["hidden_states"][-1], hidden[-1])


def test_stock_run_downstream_trains_on_the_merged_tiny_entry(speech_commands_root, plugin_cache_env, tmp_path):
    expdir = tmp_path / "exp"
    result = run_downstream(
        ["-m", "train", "-u", "merged_hubert_mert", "-g", str(PACKAGE_RECIPES / "tiny_hubert_mert.yaml"),
         "-d", "speech_commands", "-c", str(CONFIG_DIR / "speech_commands_cpu_small.yaml"), "-p", str(expdir),
         "-o", speech_commands_overrides(speech_commands_root)],
        env=plugin_cache_env,
    ).check()
    accuracies = result.metric("dev acc") or result.metric("test acc")
    assert accuracies and all(0.0 <= acc <= 1.0 for acc in accuracies), result.output[-2000:]
    assert (expdir / "dev-best.ckpt").is_file()


def test_default_entry_offline_says_how_to_point_at_local_checkpoints():
    from upstream_merged.sources import SourceError

    with pytest.raises(SourceError, match=r"facebook/hubert-base-ls960.*sources"):
        entries()["merged_hubert_mert"]()


def test_an_interrupted_build_leaves_no_cache_and_the_rerun_succeeds(monkeypatch):
    from upstream_merged.hub.common import merged_cache_dir
    from upstream_merged.permutation import report

    recipe = entry_recipe(None, None, "tiny_hubert_mert_linear", "linear")
    target = merged_cache_dir(recipe)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C while the output was being written

    with monkeypatch.context() as patch:  # (a bare undo() would also revert conftest's cache isolation)
        patch.setattr(report, "write_model_card", killed)
        with pytest.raises(KeyboardInterrupt):
            entries()["merged_hubert_mert_linear_tiny"]()
    assert not target.exists() and not list(target.parent.glob(f".{target.name}.tmp-*"))
    entries()["merged_hubert_mert_linear_tiny"]()
    assert (target / ".complete").is_file() and (target / "README.md").is_file()
