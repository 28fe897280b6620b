"""Conflicting or mismatched entry arguments (-k, -g) are errors that name both and the fix, never dropped."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from upstream_merged.hub.common import EntryArgumentError, packaged_recipe
from upstream_merged.registry import entries

TINY_PERM = {"method": "permutation", "sources": {"a": "tiny:hubert:0", "b": "tiny:mert_v0:0"},
             "calibration": {"synthetic": {"clips": 2, "seconds": 1.0}}}


def fake_merge_dir(tmp_path, name: str, **report):
    """A directory holding only a merge report: the setting checks run before any weight is read."""
    directory = tmp_path / name
    directory.mkdir()
    (directory / "merge_report.json").write_text(json.dumps(report))
    return str(directory)


def recipe_file(tmp_path, name: str, **fields) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**TINY_PERM, **fields}))
    return str(path)


@pytest.mark.parametrize("entry", ["merged_hubert_mert_tiny", "merged_hubert_mert_custom", "fusion_hubert_wavlm_ws_tiny",
                                   "mam_hubert_bert_tiny"])
def test_k_recipe_and_g_recipe_together_are_refused(tmp_path, entry):
    one, two = recipe_file(tmp_path, "one.yaml"), recipe_file(tmp_path, "two.yaml")
    with pytest.raises(EntryArgumentError, match=f"{entry}: got both -k {one} .*and -g {two}"):
        entries()[entry](ckpt=one, model_config=two)


def test_permutation_k_dir_with_g_is_refused_naming_both(tmp_path):
    directory = fake_merge_dir(tmp_path, "merged", components=["cnn", "ffn", "attn"], alpha=0.9)
    recipe = recipe_file(tmp_path, "r.yaml")
    for entry in ("merged_hubert_mert_tiny", "merged_hubert_mert"):
        with pytest.raises(EntryArgumentError, match=f"-k {directory} \\(a merge directory\\) and -g {recipe}"):
            entries()[entry](ckpt=directory, model_config=recipe)


def test_k_merge_dir_of_another_preset_is_refused_naming_the_entry_to_use(tmp_path):
    avg = fake_merge_dir(tmp_path, "avg", preset="avg", components=[], alpha=0.5)
    with pytest.raises(EntryArgumentError, match="builds preset 'cnn'.*preset 'avg'.*-u merged_hubert_mert_avg_tiny for it"):
        entries()["merged_hubert_mert_cnn_tiny"](ckpt=avg)
    custom = fake_merge_dir(tmp_path, "custom", preset="custom", components=["cnn"], alpha=0.7)
    with pytest.raises(EntryArgumentError, match=r"a custom setting \(components \['cnn'\], alpha 0.7\).*merged_hubert_mert_custom"):
        entries()["merged_hubert_mert"](ckpt=custom)
    mislabelled = fake_merge_dir(tmp_path, "old", preset="cnn_ffn_attn", components=["cnn", "ffn", "attn"], alpha=0.5)
    with pytest.raises(EntryArgumentError, match="custom setting"):  # judged by what was built, not the label
        entries()["merged_hubert_mert"](ckpt=mislabelled)


def test_k_dir_without_a_merge_report_is_refused_pointing_at_the_baseline_entry(tmp_path):
    with pytest.raises(EntryArgumentError, match=r"no merge_report.json.*-u hubert_base_hf -k"):
        entries()["merged_hubert_mert_tiny"](ckpt=str(tmp_path))


def test_g_recipe_of_another_setting_is_refused(tmp_path):
    other = recipe_file(tmp_path, "other.yaml", preset="ffn_attn")
    with pytest.raises(EntryArgumentError, match="merged_hubert_mert_cnn builds preset 'cnn'.*'ffn_attn'.*merged_hubert_mert_ffn_attn"):
        entries()["merged_hubert_mert_cnn"](model_config=other)
    custom = recipe_file(tmp_path, "custom.yaml", preset="cnn", alpha=0.7)
    with pytest.raises(EntryArgumentError, match="custom setting.*-u merged_hubert_mert_custom"):
        entries()["merged_hubert_mert_cnn_tiny"](model_config=custom)
    same = recipe_file(tmp_path, "same.yaml", components=["cnn"])  # components and alpha equal the cnn preset
    from upstream_merged.hub.permutation import entry_recipe

    assert entry_recipe(None, same, None, "cnn").preset == "cnn"


def test_custom_entry_builds_and_loads_any_setting_and_needs_an_argument(tmp_path):
    with pytest.raises(ValueError, match="merged_hubert_mert_custom needs a permutation recipe"):
        entries()["merged_hubert_mert_custom"]()
    custom = recipe_file(tmp_path, "custom.yaml", preset="linear", alpha=0.7)
    upstream = entries()["merged_hubert_mert_custom"](model_config=custom)
    from upstream_merged.hub.common import merged_cache_dir
    from upstream_merged.hub.permutation import entry_recipe

    directory = merged_cache_dir(entry_recipe(None, custom, None, None))
    assert json.loads((directory / "merge_report.json").read_text())["preset"] == "custom"
    again = entries()["merged_hubert_mert_custom"](ckpt=str(directory))
    wav = [torch.randn(8000, generator=torch.Generator().manual_seed(0))]
    upstream.eval(), again.eval()
    with torch.no_grad():
        assert torch.equal(upstream(wav)["hidden_states"][-1], again(wav)["hidden_states"][-1])


def test_mam_k_merged_dir_with_g_and_of_another_pair_are_refused(tmp_path):
    merged = tmp_path / "mam_vit"
    merged.mkdir()
    (merged / "mam_report.json").write_text(json.dumps({"target": {"arch": "hubert"}, "source": {"arch": "vit"}}))
    recipe = str(packaged_recipe("tiny_mam_hubert_bert"))
    with pytest.raises(EntryArgumentError, match=f"got both -k {merged} \\(a finished MAM merge directory\\) and -g"):
        entries()["mam_hubert_bert_tiny"](ckpt=str(merged), model_config=recipe)
    with pytest.raises(EntryArgumentError, match="mam_hubert_bert_tiny merges hubert <- bert.*hubert <- vit.*-u mam_hubert_vit_tiny"):
        entries()["mam_hubert_bert_tiny"](ckpt=str(merged))
    with pytest.raises(EntryArgumentError, match="finished fixed-λ MAM merge.*-u mam_hubert_bert"):
        entries()["lmam_hubert_bert"](ckpt=str(merged))


def test_mam_recipe_of_another_pair_is_refused_before_building():
    vit_recipe = str(packaged_recipe("tiny_mam_hubert_vit"))
    with pytest.raises(EntryArgumentError, match="hubert <- vit.*-u mam_hubert_vit"):
        entries()["mam_hubert_bert"](model_config=vit_recipe)
    with pytest.raises(EntryArgumentError, match="hubert <- vit.*-u lmam_hubert_vit"):
        entries()["lmam_hubert_bert"](model_config=str(packaged_recipe("tiny_lmam_hubert_vit")))


def test_baselines_refuse_a_model_config_they_would_ignore():
    with pytest.raises(EntryArgumentError, match="hubert_tiny takes no -g \\(got -g recipe.yaml\\)"):
        entries()["hubert_tiny"](model_config="recipe.yaml")


@pytest.mark.parametrize("entry", ["merged_hubert_mert_tiny", "mam_hubert_bert_tiny", "lmam_hubert_bert_tiny",
                                   "fusion_hubert_wavlm_ws_tiny", "fusion_custom", "hubert_tiny"])
def test_arguments_an_entry_does_not_take_are_refused(entry):
    with pytest.raises(EntryArgumentError, match=f"{entry} got arguments it does not take: \\['layer_drop'\\]"):
        entries()[entry](layer_drop=0.1)
