"""permutation/sweep.py: alpha-sweep recipes (aligned vs linear) that merged_hubert_mert_custom -k builds;
alpha is the weight of source a."""
from __future__ import annotations

import pytest
import torch
import yaml
from safetensors.torch import load_file

from upstream_merged.hub.common import build_cached, merged_cache_dir, packaged_recipe
from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.permutation.apply import apply_permutations
from upstream_merged.permutation.spec import spec_for_model
from upstream_merged.permutation.sweep import alpha_sweep_recipes, main, write_sweep_recipes
from upstream_merged.recipe import RecipeError, load_recipe, parse_recipe, recipe_dict
from upstream_merged.registry import entries
from upstream_merged.sources import resolve_source


def _without_description(recipe) -> dict:
    data = recipe_dict(recipe.effective())
    data.pop("description")
    return data


def test_sweep_of_the_packaged_small_pair():
    recipes = dict(alpha_sweep_recipes("small_hubert_mert"))
    assert sorted(recipes) == sorted(f"small_hubert_mert_{p}_alpha{a}" for p in ("cnn_ffn_attn", "linear")
                                     for a in ("0.50", "0.70", "0.90"))
    base = yaml.safe_load(packaged_recipe("small_hubert_mert").read_text())
    for name, data in recipes.items():
        assert data["sources"] == {"a": "small:hubert", "b": "small:mert"}  # a = HuBERT: alpha is HuBERT's weight
        assert data["calibration"] == base["calibration"] and data["seed"] == base["seed"] and "preset" not in data
        assert data["components"] == ([] if "_linear_" in name else ["cnn", "ffn", "attn"])
        assert data["alpha"] == float(name[-4:])
    # the alpha-0.9 rows are the packaged Table I rows ID 5 and ID 4 (same setting, calibration, seed, sources)
    for name, packaged in (("cnn_ffn_attn", "small_hubert_mert"), ("linear", "small_hubert_mert_linear")):
        row = parse_recipe(recipes[f"small_hubert_mert_{name}_alpha0.90"])
        assert _without_description(row) == _without_description(load_recipe(packaged_recipe(packaged)))
    assert parse_recipe(recipes["small_hubert_mert_linear_alpha0.50"]).effective().preset == "avg"
    assert parse_recipe(recipes["small_hubert_mert_cnn_ffn_attn_alpha0.50"]).effective().preset is None  # custom


def test_sources_can_point_at_directories_and_bad_sweeps_are_refused(tmp_path):
    (name, data), *_ = alpha_sweep_recipes("small_hubert_mert", [0.7], ["linear"], sources={"b": str(tmp_path)})
    assert name == "small_hubert_mert_linear_alpha0.70" and data["sources"] == {"a": "small:hubert", "b": str(tmp_path)}
    with pytest.raises(RecipeError, match="unknown preset.*'aligned'"):
        alpha_sweep_recipes("small_hubert_mert", [0.5], ["aligned"])
    with pytest.raises(RecipeError, match="alpha"):
        alpha_sweep_recipes("small_hubert_mert", [1.5])
    with pytest.raises(RecipeError, match="listed twice"):
        alpha_sweep_recipes("small_hubert_mert", [0.5, 0.5])
    with pytest.raises(RecipeError, match="method must be permutation"):
        alpha_sweep_recipes("small_fusion_hubert_mert_hconv")
    with pytest.raises(RecipeError, match="neither a YAML file nor a packaged recipe"):
        alpha_sweep_recipes("no_such_recipe")


def test_written_recipes_say_what_they_equal_and_are_not_overwritten(tmp_path, capsys):
    assert main(["small_hubert_mert", str(tmp_path), "--alphas", "0.5", "0.9"]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"small_hubert_mert_{p}_alpha{a}.yaml"
                             for p in ("cnn_ffn_attn", "linear") for a in ("0.50", "0.90"))
    text = (tmp_path / "small_hubert_mert_linear_alpha0.50.yaml").read_text()
    assert "equals preset avg (paper Table I ID 3)" in text and "-u merged_hubert_mert_custom -k" in text
    assert "a custom setting" in (tmp_path / "small_hubert_mert_cnn_ffn_attn_alpha0.50.yaml").read_text()
    before = (tmp_path / "small_hubert_mert_linear_alpha0.90.yaml").read_text()
    assert main(["small_hubert_mert", str(tmp_path), "--alphas", "0.9"]) == 2
    assert "already exist" in capsys.readouterr().err
    assert (tmp_path / "small_hubert_mert_linear_alpha0.90.yaml").read_text() == before


@pytest.mark.parametrize("preset", ["cnn_ffn_attn", "linear"])
def test_alpha_half_merge_of_tiny_sources_is_half_a_plus_half_aligned_b(preset, tmp_path):
    (name, data), = alpha_sweep_recipes("tiny_hubert_mert", [0.5], [preset])
    (path,) = write_sweep_recipes(tmp_path, [(name, data)])
    upstream = entries()["merged_hubert_mert_custom"](ckpt=str(path))  # the stock -u/-k route builds it
    merged = upstream.model.state_dict()
    directory = build_cached(load_recipe(path).effective())  # the cache entry the hub entry built and loaded
    assert directory == merged_cache_dir(load_recipe(path).effective()) and (directory / ".complete").is_file()

    a = load_hubert_family(resolve_source(data["sources"]["a"])).model.state_dict()
    model_b = load_hubert_family(resolve_source(data["sources"]["b"])).model
    perms = load_file(str(directory / "permutations.safetensors"))
    assert bool(perms) == (preset != "linear")
    if perms:
        assert any(not torch.equal(p, torch.arange(len(p))) for p in perms.values())  # b was really reordered
    b = apply_permutations(model_b.state_dict(), spec_for_model(model_b, attention="heads"), perms)
    floats = [k for k in a if a[k].is_floating_point()]
    assert len(floats) > 20
    for key in floats:
        torch.testing.assert_close(merged[key], 0.5 * a[key] + 0.5 * b[key], rtol=1e-6, atol=1e-7, msg=key)
    if perms:  # and differs from the unaligned average somewhere
        raw = model_b.state_dict()
        assert any(not torch.allclose(merged[k], 0.5 * a[k] + 0.5 * raw[k]) for k in floats)


def test_alpha_is_the_weight_of_source_a(tmp_path):
    (name, data), = alpha_sweep_recipes("tiny_hubert_mert", [0.7], ["linear"])
    (path,) = write_sweep_recipes(tmp_path, [(name, data)])
    merged = entries()["merged_hubert_mert_custom"](ckpt=str(path)).model.state_dict()
    a, b = (load_hubert_family(resolve_source(data["sources"][role])).model.state_dict() for role in ("a", "b"))
    for key in (k for k in a if a[k].is_floating_point()):
        torch.testing.assert_close(merged[key], 0.7 * a[key] + 0.3 * b[key], rtol=1e-6, atol=1e-7, msg=key)


def test_forced_rewrite_of_an_identical_recipe_keeps_its_file(tmp_path):
    import os

    recipes = alpha_sweep_recipes("small_hubert_mert", [0.5], ["linear"])
    (path,) = write_sweep_recipes(tmp_path, recipes)
    os.utime(path, ns=(1, 1))
    write_sweep_recipes(tmp_path, recipes, force=True)
    assert path.stat().st_mtime_ns == 1  # unchanged content: untouched, so results keyed by its mtime stay valid
    changed = alpha_sweep_recipes("small_hubert_mert", [0.5], ["linear"])
    changed[0][1]["seed"] = 123
    write_sweep_recipes(tmp_path, [(recipes[0][0], changed[0][1])], force=True)
    assert path.stat().st_mtime_ns != 1 and "123" in path.read_text()
