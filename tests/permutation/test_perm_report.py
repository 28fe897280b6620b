"""Reports describe what was built: preset (with the paper's reference) only when components and alpha equal it,
else ``custom``; model card for a model-card reader; effective recipe.yaml; byte-identical rebuilds."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from perm_helpers import SMALL_CALIBRATION

from upstream_merged.__main__ import main
from upstream_merged.permutation.presets import CUSTOM_ENTRY, PRESETS, match_preset
from upstream_merged.permutation.report import read_setting, setting_data
from upstream_merged.recipe import load_recipe

TINY = {"method": "permutation", "sources": {"a": "tiny:hubert:0", "b": "tiny:mert_v0:0"},
        "calibration": SMALL_CALIBRATION}


def write_recipe(path: Path, **fields) -> Path:
    path.write_text(yaml.safe_dump({**TINY, **fields}, sort_keys=False))
    return path


def files(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_every_preset_is_matched_only_by_its_own_components_and_alpha():
    for preset in PRESETS.values():
        assert match_preset(reversed(preset.components), preset.alpha) is preset  # order does not matter
        assert match_preset(preset.components, preset.alpha + 0.05) is None
    assert match_preset(("cnn", "ffn"), 0.9).name == "cnn_ffn"
    assert match_preset(("cnn", "ffn", "attn"), 0.5) is None


def test_setting_names_the_paper_score_as_the_papers_reference_and_only_for_a_matching_build():
    best = setting_data(["cnn", "ffn", "attn"], 0.9)
    assert best["preset"] == "cnn_ffn_attn" and best["paper_table_i_id"] == 5
    assert best["paper_reference_score"] == 957.65 and "not a measurement of this model" in best["paper_reference_note"]
    assert best["hub_entry"] == "merged_hubert_mert"
    custom = setting_data(["cnn", "ffn", "attn"], 0.5)
    assert custom["preset"] == "custom" and custom["components"] == ["cnn", "ffn", "attn"] and custom["alpha"] == 0.5
    assert not any(key.startswith("paper") for key in custom) and custom["hub_entry"] == CUSTOM_ENTRY
    residual = setting_data(["cnn", "ffn", "attn", "residual"], 0.9)
    assert residual["preset"] == "cnn_ffn_attn_residual" and "paper_reference_score" not in residual


def test_an_old_report_is_judged_by_its_components_and_alpha_not_its_name(tmp_path):
    (tmp_path / "merge_report.json").write_text(json.dumps(
        {"preset": "cnn_ffn_attn", "paper_id": 5, "paper_average": 957.65, "components": ["cnn", "ffn", "attn"], "alpha": 0.5}))
    assert read_setting(tmp_path)["preset"] == "custom"
    assert read_setting(tmp_path / "nothing") is None


def test_custom_build_says_custom_everywhere_and_cites_no_paper_score(tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", preset="cnn", alpha=0.7)
    assert main(["merge", str(recipe), str(tmp_path / "plan"), "--dry-run"]) == 0
    assert "custom" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["--quiet", "merge", str(recipe), str(out)]) == 0
    report = json.loads((out / "merge_report.json").read_text())
    assert report["preset"] == "custom" and report["components"] == ["cnn"] and report["alpha"] == 0.7
    assert not [key for key in report if key.startswith("paper")]
    card = (out / "README.md").read_text()
    assert "custom setting" in card and "no paper score applies" in card and f"-u {CUSTOM_ENTRY}" in card
    assert "923.95" not in card and "Table I" in card  # the cnn preset's paper score is not claimed
    written = load_recipe(out / "recipe.yaml")
    assert (written.preset, written.components, written.alpha) == (None, ["cnn"], 0.7)


def test_preset_build_card_is_written_for_a_model_card_reader(tmp_path):
    out = tmp_path / "out"
    assert main(["merge", str(write_recipe(tmp_path / "r.yaml", preset="cnn")), str(out), "--quiet"]) == 0
    report = json.loads((out / "merge_report.json").read_text())
    assert report["preset"] == "cnn" and report["paper_table_i_id"] == 6 and report["paper_reference_score"] == 923.95
    assert "paper_average" not in report and "paper_id" not in report
    assert not any("seconds" in row for row in report["groups"].values()) and "seconds" not in report
    card = (out / "README.md").read_text()
    for section in ("## Sources", "## Method", "## Setting", "## Calibration data", "## Use with s3prl", "## Reproduce"):
        assert section in card, section
    assert "ID 6 in Table I of the paper" in card and "923.95" in card and "not a measurement of this model" in card
    assert "-u merged_hubert_mert_cnn -k" in card and "`tiny:hubert:0`" in card and "0.9 * a + 0.1 * permuted(b)" in card
    assert "synthetic audio" in card and "6 clips were used" in card
    for jargon in ("seed 000", "(best)", "issue", "Table I setting"):
        assert jargon not in card, jargon


def test_seed_override_is_recorded_and_the_recipe_in_out_rebuilds_out_byte_for_byte(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", preset="cnn")
    out, again = tmp_path / "out", tmp_path / "again"
    assert main(["--quiet", "merge", str(recipe), str(out), "--seed", "7"]) == 0
    written = load_recipe(out / "recipe.yaml")
    assert written.seed == 7 and written.components == ["cnn"] and written.alpha == 0.9 and written.preset == "cnn"
    assert json.loads((out / "merge_report.json").read_text())["seed"] == 7
    assert main(["--quiet", "merge", str(out / "recipe.yaml"), str(again)]) == 0
    first, second = files(out), files(again)
    assert sorted(first) == sorted(second) and ".complete" in first
    assert [name for name in first if first[name] != second[name]] == []


def test_entry_default_preset_is_written_into_the_effective_recipe(tmp_path):
    from upstream_merged.hub.common import build_cached
    from upstream_merged.hub.permutation import entry_recipe

    path = write_recipe(tmp_path / "no_preset.yaml")  # no preset/components/alpha: the entry's preset fills them
    directory = build_cached(entry_recipe(None, str(path), None, "cnn_ffn"))
    written = load_recipe(directory / "recipe.yaml")
    assert (written.preset, written.components, written.alpha) == ("cnn_ffn", ["cnn", "ffn"], 0.9)
    assert json.loads((directory / "merge_report.json").read_text())["preset"] == "cnn_ffn"


@pytest.mark.parametrize("recipe", ["tiny_mam_hubert_bert", "tiny_fusion_hubert_wavlm_ws"])
def test_mam_and_fusion_outputs_rebuild_byte_for_byte_from_their_recipe(tmp_path, recipe):
    from upstream_merged.hub.common import packaged_recipe

    out, again = tmp_path / "out", tmp_path / "again"
    assert main(["--quiet", "merge", str(packaged_recipe(recipe)), str(out), "--seed", "3"]) == 0
    assert load_recipe(out / "recipe.yaml").seed == 3
    assert main(["--quiet", "merge", str(out / "recipe.yaml"), str(again)]) == 0
    first = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    second = {str(p.relative_to(again)): p.read_bytes() for p in sorted(again.rglob("*")) if p.is_file()}
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []
