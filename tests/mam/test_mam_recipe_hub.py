"""The MAM recipe schema, `python -m upstream_merged merge`, and the mam_* / lmam_* hub entries."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from mam_helpers import hidden_states, wavs
from upstream_merged.__main__ import main as cli
from upstream_merged.hub.common import packaged_recipe
from upstream_merged.hub.mam import LMAM_ENTRIES, MAM_ENTRIES
from upstream_merged.recipe import RecipeError, load_recipe, parse_recipe
from upstream_merged.registry import entries
from upstream_merged.sources import SourceError

TINY_RECIPE = packaged_recipe("tiny_mam_hubert_bert")


def _recipe(**keys):
    return {"method": "mam", "sources": {"target": "tiny:hubert:0", "source": "tiny:bert:0"}, **keys}


@pytest.mark.parametrize("keys,message", [
    ({}, "`lambda` is required"),
    ({"learnable": True}, "need `lambda_init`"),
    ({"learnable": True, "lambda": 0.1, "lambda_init": 0.1}, "not `lambda`"),
    ({"lambda": 0.1, "lambda_init": 0.1}, "only applies with `learnable: true`"),
    ({"lambda": 0.1, "trainable": "lambdas"}, "only applies with `learnable: true`"),
    ({"lambda": 0.1, "lamda": 0.1}, "lamda"),
])
def test_recipe_schema_rejects_inconsistent_keys(keys, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(_recipe(**keys))


def test_recipe_needs_target_and_source_roles():
    with pytest.raises(RecipeError, match="exactly 'target' and 'source'"):
        parse_recipe({"method": "mam", "sources": {"a": "tiny:hubert", "b": "tiny:bert"}, "lambda": 0.1})


def test_every_entry_has_a_valid_packaged_recipe():
    for name, (recipe_name, _) in {**MAM_ENTRIES, **LMAM_ENTRIES}.items():
        recipe = load_recipe(packaged_recipe(recipe_name))
        assert recipe.method == "mam" and recipe.learnable == name.startswith("lmam_"), name
    assert load_recipe(packaged_recipe("mam_hubert_bert")).lambda_ == 0.05
    assert load_recipe(packaged_recipe("mam_beats_vit")).lambda_ == 0.10
    assert set(MAM_ENTRIES) | set(LMAM_ENTRIES) <= set(entries())


def test_cli_dry_run_writes_nothing_and_describes_every_layer(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(["merge", str(TINY_RECIPE), str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert "layer 0: λ=0.05" in text and "layer 1: λ=0.05" in text and "encoder.layer.1.attention.self" in text


def test_cli_merge_writes_model_recipe_copy_and_report(tmp_path):
    out = tmp_path / "out"
    assert cli(["merge", str(TINY_RECIPE), str(out)]) == 0
    assert load_recipe(out / "recipe.yaml") == load_recipe(TINY_RECIPE)  # the effective recipe, defaults written out
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    report = json.loads((out / "mam_report.json").read_text())
    assert [layer["lambda"] for layer in report["layers"]] == [0.05, 0.05]
    assert report["tensors_merged"] == 12 and report["target"]["arch"] == "hubert"
    assert all(layer["relative_change"] > 0 for layer in report["layers"])
    with pytest.raises(SystemExit, match="--force"):
        cli(["merge", str(TINY_RECIPE), str(out)])


def test_tiny_entry_caches_and_a_merged_dir_or_recipe_via_k_gives_the_same_model(tmp_path):
    entry = entries()["mam_hubert_bert_tiny"]
    clips = wavs()
    first = hidden_states(entry(), clips)
    cache = Path(os.environ["UPSTREAM_MERGED_CACHE"]) / "merged"
    built = sorted(cache.glob("mam-*"))
    second = hidden_states(entry(), clips)
    assert sorted(cache.glob("mam-*")) == built  # second call reused the cache
    out = tmp_path / "merged"
    cli(["merge", str(TINY_RECIPE), str(out)])
    from_dir = hidden_states(entries()["mam_hubert_bert"](ckpt=str(out)), clips)
    from_recipe = hidden_states(entries()["mam_hubert_bert"](model_config=str(TINY_RECIPE)), clips)
    for a, b, c, d in zip(first, second, from_dir, from_recipe):
        assert torch.equal(a, b) and torch.equal(a, c) and torch.equal(a, d)


def test_k_checkpoint_replaces_the_default_target(tmp_path):
    from upstream_merged.sources import resolve_source

    other_target = str(resolve_source("tiny:hubert:1"))
    recipe = yaml.safe_load(TINY_RECIPE.read_text())
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    default = hidden_states(entries()["mam_hubert_bert"](model_config=str(path)), wavs())
    swapped = hidden_states(entries()["mam_hubert_bert"](ckpt=other_target, model_config=str(path)), wavs())
    assert not torch.equal(default[-1], swapped[-1])


def test_published_defaults_fail_offline_with_how_to_fix():
    with pytest.raises(SourceError, match=r"-k DIR"):
        entries()["mam_hubert_bert"]()
    with pytest.raises(SourceError, match=r"no Hugging Face id.*-k /path/to/BEATs.pt"):
        entries()["mam_beats_vit"]()
    with pytest.raises(SourceError, match=r"no Hugging Face id"):
        entries()["lmam_beats_bert"]()


def test_fixed_and_learnable_entries_refuse_the_other_kind_of_recipe():
    with pytest.raises(ValueError, match="use an lmam_\\* entry"):
        entries()["mam_hubert_bert"](model_config=str(packaged_recipe("tiny_lmam_hubert_bert")))
    with pytest.raises(ValueError, match="learnable: true"):
        entries()["lmam_hubert_bert"](model_config=str(TINY_RECIPE))


def test_merging_a_learnable_recipe_writes_the_lambda_init_merge(tmp_path):
    out = tmp_path / "lmam"
    assert cli(["merge", str(packaged_recipe("tiny_lmam_beats_vit")), str(out)]) == 0
    report = json.loads((out / "mam_report.json").read_text())
    assert report["learnable"] and "lambda_init" in report["note"]
    assert [layer["lambda"] for layer in report["layers"]] == [0.10, 0.10]
    assert (out / "model.pt").is_file() and report["target"]["arch"] == "beats"
