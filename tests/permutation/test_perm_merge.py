"""The merge end to end: scramble-and-recover through the CLI, dry run, determinism, dead units, mismatches."""
from __future__ import annotations

import json

import pytest
import torch
from perm_helpers import SMALL_CALIBRATION, make_recipe, recipe_yaml, scrambled_copy, write_pair
from safetensors.torch import load_file
from transformers import HubertModel

from upstream_merged.__main__ import main
from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.permutation.apply import apply_permutations, invert_all
from upstream_merged.permutation.merge import MergeError, align, build, check_compatible
from upstream_merged.permutation.spec import spec_for_model
from upstream_merged.recipe import load_recipe
from upstream_merged.tiny.hubert import build_tiny_hubert


@pytest.fixture(scope="module")
def scrambled_pair(tmp_path_factory):
    a = build_tiny_hubert(11)
    b, perms = scrambled_copy(a, seed=12)
    dir_a, dir_b = write_pair(tmp_path_factory.mktemp("scrambled"), a, b)
    return a, perms, dir_a, dir_b


def test_cli_merge_recovers_a_scrambled_copy_and_writes_every_output(scrambled_pair, tmp_path):
    a, perms, dir_a, dir_b = scrambled_pair
    recipe_path = tmp_path / "recipe.yaml"
    text = "# scramble-and-recover\n" + recipe_yaml(dir_a, dir_b, preset="cnn_ffn_attn_residual", alpha=0.5)
    recipe_path.write_text(text)
    out = tmp_path / "merged"
    assert main(["--quiet", "merge", str(recipe_path), str(out)]) == 0

    merged = HubertModel.from_pretrained(str(out))  # a plain transformers HF dir
    expected = a.state_dict()
    assert max(float((merged.state_dict()[k] - v).abs().max()) for k, v in expected.items()) < 1e-5
    found = load_file(str(out / "permutations.safetensors"))
    truth = invert_all(perms)
    assert set(found) == set(truth)
    assert [k for k in truth if not torch.equal(found[k], truth[k])] == []  # every permutation recovered

    report = json.loads((out / "merge_report.json").read_text())
    assert report["preset"] == "custom" and report["symmetry"] is True  # the residual preset at alpha 0.5: custom
    assert report["components"] == ["cnn", "ffn", "attn", "residual"] and report["alpha"] == 0.5
    for name, row in report["groups"].items():
        assert row["corr_after"] > 0.999, name
        assert 0.0 <= row["moved_share"] <= 1.0 and row["corr_before"] < row["corr_after"]
    assert report["function_drift"]["relative_error"] < 1e-5
    written = load_recipe(out / "recipe.yaml")  # the effective recipe: components and alpha written out
    assert (written.preset, written.components, written.alpha, written.seed) == (None, ["cnn", "ffn", "attn", "residual"], 0.5, 0)
    assert (out / "correlation_heatmaps.png").read_bytes()[:4] == b"\x89PNG"
    card = (out / "README.md").read_text()
    assert "custom setting" in card and "share of units moved" in card
    assert (out / "preprocessor_config.json").is_file()

    with pytest.raises(SystemExit, match="--force"):
        main(["merge", str(recipe_path), str(out)])


def test_dry_run_writes_nothing(scrambled_pair, tmp_path, capsys):
    _, _, dir_a, dir_b = scrambled_pair
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(recipe_yaml(dir_a, dir_b, preset="cnn_all"))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["merge", str(recipe_path), str(tmp_path / "out"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "NOT a symmetry" in printed and "Table I ID 8" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.fixture(scope="module")
def unrelated_pair(tmp_path_factory):
    """Two independently random models: weak correlations, near-ties, q and k matched differently."""
    return write_pair(tmp_path_factory.mktemp("unrelated"), build_tiny_hubert(21), build_tiny_hubert(22))


def test_two_merges_are_bit_identical(unrelated_pair, tmp_path):
    dir_a, dir_b = unrelated_pair
    recipe = make_recipe(dir_a, dir_b, calibration={**SMALL_CALIBRATION, "frames_per_second": 20.0, "cnn_frames_per_second": 50.0})
    first, second = build(recipe, tmp_path / "one", progress=False), build(recipe, tmp_path / "two", progress=False)
    for name in ("model.safetensors", "permutations.safetensors", "config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    groups = json.loads((first / "merge_report.json").read_text())["groups"]
    assert all(row["corr_after"] >= row["corr_before"] - 1e-9 for row in groups.values())


def test_dead_units_give_no_nan_and_live_units_are_recovered():
    a = build_tiny_hubert(31)
    with torch.no_grad():  # FFN units 0..9 of layer 0 output GELU(0) = 0 for every frame: dead
        a.encoder.layers[0].feed_forward.intermediate_dense.weight[:10] = 0
        a.encoder.layers[0].feed_forward.intermediate_dense.bias[:10] = 0
    b, perms = scrambled_copy(a, seed=32)
    from upstream_merged.models.hubert import LoadedEncoder
    from upstream_merged.permutation.recipe import Calibration

    alignment = align(LoadedEncoder(a, 16000, "hubert"), LoadedEncoder(b, 16000, "hubert"), ("cnn", "ffn", "attn"),
                      Calibration(**SMALL_CALIBRATION), seed=0, progress=False)
    row = {m.name: m for m in alignment.matches}["ffn.0"]
    assert row.dead_a == 10 and row.dead_b == 10
    assert all(torch.isfinite(c).all() for c in alignment.correlations.values())
    truth = invert_all(perms)
    live = torch.ones(a.config.intermediate_size, dtype=torch.bool)
    live[:10] = False
    assert torch.equal(alignment.perms["ffn.0"][live], truth["ffn.0"][live])
    for name in alignment.perms:
        if name != "ffn.0":
            assert torch.equal(alignment.perms[name], truth[name]), name
    # the aligned b computes a's function exactly (dead units contribute nothing wherever they land)
    spec = spec_for_model(a)
    aligned = build_tiny_hubert(0)
    aligned.load_state_dict(apply_permutations(b.state_dict(), spec, {**alignment.perms, "residual": truth["residual"]}))
    wav = torch.randn(1, 6000, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert float((aligned(wav).last_hidden_state - a(wav).last_hidden_state).abs().max()) < 1e-5


def test_architecture_mismatch_names_the_first_mismatching_parameter(tmp_path):
    a = build_tiny_hubert(41)
    with pytest.raises(MergeError, match=r"encoder\.layers\.0\.feed_forward\.intermediate_dense\.weight"):
        check_compatible(a, build_tiny_hubert(42, intermediate_size=48))
    with pytest.raises(MergeError, match="num_attention_heads"):  # same shapes, different computation
        check_compatible(a, build_tiny_hubert(43, num_attention_heads=2))
    dir_a, dir_b = write_pair(tmp_path, a, build_tiny_hubert(44, conv_dim=[16] * 6 + [8]))
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(recipe_yaml(dir_a, dir_b))
    assert main(["--quiet", "merge", str(recipe_path), str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_cnn_all_is_labelled_and_reports_how_far_outputs_move(unrelated_pair, tmp_path):
    dir_a, dir_b = unrelated_pair
    out = build(make_recipe(dir_a, dir_b, preset="cnn_all"), tmp_path / "out", progress=False)
    report = json.loads((out / "merge_report.json").read_text())
    assert report["symmetry"] is False and report["function_drift"]["symmetry"] is False
    assert report["function_drift"]["relative_error"] > 1e-2
    assert {row["component"] for row in report["groups"].values()} == {"cnn", "ffn", "qkv_independent"}
    assert "Not function-preserving" in (out / "README.md").read_text()
    assert load_hubert_family(out).model.config.num_hidden_layers == 2


def test_the_heatmaps_are_drawn_beside_the_writing_and_waited_for_when_the_writing_fails(scrambled_pair, tmp_path,
                                                                                          monkeypatch):
    import threading
    import time

    from upstream_merged.permutation import merge, report

    _, _, dir_a, dir_b = scrambled_pair
    drawn = {}
    real_draw = report.write_heatmaps

    def slow_draw(*args):
        drawn["thread"] = threading.current_thread().name
        time.sleep(0.5)  # still drawing when the writing fails below
        drawn["path"] = real_draw(*args)
        return drawn["path"]

    def broken_interpolation(*_, **__):
        raise MergeError("interpolation failed")

    monkeypatch.setattr(report, "write_heatmaps", slow_draw)
    real_interpolate = merge.interpolate_into
    monkeypatch.setattr(merge, "interpolate_into", broken_interpolation)
    with pytest.raises(MergeError, match="interpolation failed"):
        build(make_recipe(dir_a, dir_b, preset="cnn_ffn", report={}), tmp_path / "failed", progress=False)
    assert drawn["thread"].startswith("heatmaps") and drawn["path"].is_file()  # finished before build raised
    monkeypatch.setattr(merge, "interpolate_into", real_interpolate)
    drawn.clear()
    out = build(make_recipe(dir_a, dir_b, preset="cnn_ffn", report={}), tmp_path / "merged", progress=False)
    assert drawn["path"] == out / "correlation_heatmaps.png" and drawn["path"].stat().st_size > 0
