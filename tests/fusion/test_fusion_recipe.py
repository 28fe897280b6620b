"""Fusion recipes, the fused-model directory `merge` writes, and the hub entries' argument handling."""
import argparse

import pytest
import torch
import yaml

from upstream_merged.__main__ import main
from upstream_merged.fusion.export import export
from upstream_merged.fusion.fused_dir import is_fused_dir, load_fused_dir
from upstream_merged.hub.common import packaged_recipe
from upstream_merged.recipe import RecipeError, load_recipe, parse_recipe
from upstream_merged.registry import entries
from upstream_merged.sources import SourceError

ENTRIES = ["fusion_hubert_wavlm_hconv", "fusion_hubert_wavlm_chconv", "fusion_hubert_whisper_hconv",
           "fusion_hubert_wavlm_whisper_hconv", "fusion_hubert_wavlm_ws", "fusion_hubert_wavlm_gumd"]


def _recipe(**changes):
    data = {"method": "fusion", "sources": {"hubert": "tiny:hubert:0", "wavlm": "tiny:wavlm:0"}, "interface": "hconv"}
    data.update(changes)
    return data


def test_every_entry_and_packaged_recipe_exists():
    names = entries()
    for name in ENTRIES:
        assert name in names and f"{name}_tiny" in names
        published, tiny = load_recipe(packaged_recipe(name)), load_recipe(packaged_recipe(f"tiny_{name}"))
        assert published.sources.keys() == tiny.sources.keys() and published.interface == tiny.interface
        assert all(s.startswith("tiny:") for s in tiny.sources.values())
        assert not any(s.startswith("tiny:") for s in published.sources.values())


@pytest.mark.parametrize("changes, message", [
    ({"interface": "attention"}, "interface"),
    ({"sources": {}}, "at least one upstream"),
    ({"sources": {"hu.bert": "tiny:hubert:0"}}, "must be an identifier"),
    ({"interface": "chconv", "options": {"merge": "add"}}, "chconv is HConv over concatenated"),
    ({"options": {"merge": "concat"}}, "write interface: chconv"),
    ({"options": {"output_dim": 8}}, "only applies to interface gumd"),
    ({"interface": "gumd", "options": {"layers": 8}}, "no effect with merge: stack"),
    ({"options": {"frame_rate": 0}}, "options.frame_rate"),
    ({"options": {"kernel": 3}}, "options.kernel"),
])
def test_invalid_recipes_name_the_key(changes, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(_recipe(**changes))


def test_published_entry_offline_says_how_to_use_local_dirs():
    with pytest.raises(SourceError, match=r"set `sources.hubert: DIR` and pass the copy with -g"):
        entries()["fusion_hubert_wavlm_hconv"]()


def test_entry_arguments_are_checked(tmp_path):
    entry = entries()["fusion_hubert_wavlm_hconv_tiny"]
    ws_recipe = tmp_path / "ws.yaml"
    ws_recipe.write_text(yaml.safe_dump(_recipe(interface="ws")))
    with pytest.raises(ValueError, match="uses interface hconv, but the given recipe/dir says ws"):
        entry(model_config=str(ws_recipe))
    with pytest.raises(ValueError, match="neither a recipe YAML nor a fused-model directory"):
        entry(ckpt=str(tmp_path))
    with pytest.raises(ValueError, match="needs a fusion recipe"):
        entries()["fusion_custom"]()
    assert len(entries()["fusion_custom"](model_config=str(ws_recipe)).aligner.roles) == 2


def test_seeded_init_and_merge_writes_a_loadable_fused_dir(tmp_path, capsys, monkeypatch):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(interface="chconv", seed=7)))
    assert main(["merge", str(recipe), str(tmp_path / "plan"), "--dry-run"]) == 0
    assert "interface chconv, merge concat" in capsys.readouterr().out and not (tmp_path / "plan").exists()
    assert main(["--quiet", "merge", str(recipe), str(tmp_path / "fused")]) == 0
    fused = tmp_path / "fused"
    assert is_fused_dir(fused) and (fused / "backbones" / "wavlm" / "config.json").is_file()
    built = entries()["fusion_custom"](model_config=str(recipe))
    again = entries()["fusion_custom"](model_config=str(recipe))
    loaded = entries()["fusion_hubert_wavlm_chconv_tiny"](ckpt=str(fused))
    for model in (again, loaded):
        torch.testing.assert_close(model.state_dict(), built.state_dict(), rtol=0, atol=0)
    other_seed = parse_recipe(_recipe(interface="chconv", seed=8))
    from upstream_merged.fusion.build import fusion_upstream_from_recipe

    assert not torch.equal(fusion_upstream_from_recipe(other_seed).interface.convs[0].weight,
                           built.interface.convs[0].weight)
    assert load_fused_dir(fused).output_dim == built.output_dim


def test_export_needs_a_fusion_run_made_with_f(tmp_path):
    path = tmp_path / "states-1.ckpt"
    torch.save({"Downstream": {}, "Args": argparse.Namespace(upstream="fusion_hubert_wavlm_ws_tiny",
                                                             upstream_ckpt=None, upstream_model_config=None)}, path)
    with pytest.raises(ValueError, match="not made with -f"):
        export(path, tmp_path / "out")
    torch.save({"Args": argparse.Namespace(upstream="hubert_tiny", upstream_ckpt=None, upstream_model_config=None)}, path)
    with pytest.raises(ValueError, match="'hubert_tiny' is not a fusion entry"):
        export(path, tmp_path / "out")
