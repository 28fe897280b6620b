"""hub/small.py: entries on the shipped small encoders (encoders, permutation presets, fusions), offline."""
from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from upstream_merged.hub.permutation import PERMUTATION_ENTRIES
from upstream_merged.hub.small import FUSION_INTERFACES
from upstream_merged.recipe import load_recipe
from upstream_merged.registry import entries
from upstream_merged.synth.calibration import parse_spec

PERMUTATION = [f"merged_hubert_mert{suffix}_small" for suffix in PERMUTATION_ENTRIES]
FUSION = [f"fusion_hubert_mert_small_{i}" for i in FUSION_INTERFACES]


def _wavs():
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(16000, generator=gen) * 0.1, torch.randn(12000, generator=gen) * 0.1]


def test_every_small_entry_is_registered():
    assert {"hubert_small", "mert_small", *PERMUTATION, *FUSION} <= set(entries())


@pytest.mark.parametrize("name", ["hubert_small", "mert_small"])
def test_encoder_entries_run(name):
    upstream = entries()[name]().eval()
    with torch.no_grad():
        hidden = upstream(_wavs())["hidden_states"]
    assert len(hidden) == 5 and hidden[-1].shape[:2] == (2, 49)


def test_packaged_permutation_recipes_use_the_shipped_encoders_and_synth_calibration():
    for suffix, (preset, recipe_suffix, _) in PERMUTATION_ENTRIES.items():
        from upstream_merged.hub.common import packaged_recipe

        recipe = load_recipe(str(packaged_recipe(f"small_hubert_mert{recipe_suffix}")))
        assert recipe.preset == preset and dict(recipe.sources) == {"a": "small:hubert", "b": "small:mert"}
        assert parse_spec(recipe.calibration.manifest)["music"] > 0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is required")
def test_permutation_entry_merges_offline_on_a_synth_calibration_set(tmp_path):
    from upstream_merged.hub.common import packaged_recipe

    recipe = yaml.safe_load(packaged_recipe("small_hubert_mert").read_text())
    recipe["calibration"]["manifest"] = "synth:speech=1,music=1,seconds=1.5"
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    upstream = entries()["merged_hubert_mert_small"](model_config=str(path)).eval()
    with torch.no_grad():
        hidden = upstream(_wavs())["hidden_states"]
    assert len(hidden) == 5 and torch.isfinite(hidden[-1]).all()


@pytest.mark.parametrize("name", ["fusion_hubert_mert_small_ws", "fusion_hubert_mert_small_hconv"])
def test_fusion_entries_fuse_two_hubert_family_backbones(name):
    upstream = entries()[name]().eval()
    kinds = sorted(b.kind for b in upstream.modules() if type(b).__name__ == "FrozenBackbone")
    assert kinds == ["hubert", "hubert"]
    with torch.no_grad():
        hidden = upstream(_wavs())["hidden_states"]
    assert hidden[-1].shape[0] == 2 and abs(hidden[-1].shape[1] - 16000 / 320) <= 1  # the 320-sample frame grid
