"""The large pair on the layouts as published: HuBERT Large (layer-norm CNN with biases) and MERT-v1-330M
(group-norm CNN without biases), both pre-LN. MERT's attention relaxation is exact as plain attention; a's CNN
is kept whole (CNN policy "from_a"); the scramble is recovered; the two native rates stay frame-aligned."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from perm_helpers import SMALL_CALIBRATION, make_recipe

from upstream_merged.models.hubert import LoadedEncoder, load_hubert_family
from upstream_merged.permutation.apply import apply_permutations, invert_all, random_permutations
from upstream_merged.permutation.merge import (
    MergeError, align, build, check_compatible, cnn_groups_to_skip, cnn_policy,
)
from upstream_merged.permutation.recipe import Calibration
from upstream_merged.permutation.spec import spec_for_model
from upstream_merged.testing.published_layout import build_published_layout, write_published_layout_dir

PUBLISHED = Path(__file__).parents[1] / "models" / "published_configs"
HUBERT_LARGE = json.loads((PUBLISHED / "facebook--hubert-large-ll60k.json").read_text())
MERT_330M = json.loads((PUBLISHED / "m-a-p--MERT-v1-330M.json").read_text())
TRANSFORMER = ("ffn", "attn", "residual")


def _relaxed_attention(attention, x: torch.Tensor, additive_mask: torch.Tensor, relax: float) -> torch.Tensor:
    """MERT's HubertAttention_extend, written out naively: logits / r minus their row max, times r, then softmax."""
    batch, length, width = x.shape
    heads = attention.num_heads
    size = width // heads
    q = (x @ attention.q_proj.weight.T + attention.q_proj.bias) * size ** -0.5
    k = x @ attention.k_proj.weight.T + attention.k_proj.bias
    v = x @ attention.v_proj.weight.T + attention.v_proj.bias
    out = torch.zeros_like(x)
    for b in range(batch):
        for h in range(heads):
            cols = slice(h * size, (h + 1) * size)
            logits = q[b, :, cols] @ k[b, :, cols].T + additive_mask[b]  # (T, T)
            relaxed = logits / relax
            logits = (relaxed - relaxed.max(dim=-1, keepdim=True).values) * relax
            out[b, :, cols] = torch.softmax(logits, dim=-1) @ v[b, :, cols]
    return out @ attention.out_proj.weight.T + attention.out_proj.bias


def mert_twin(a, seed: int):
    """A MERT-v1-330M-layout model whose feature projection and transformer are ``a``'s, scrambled by random
    symmetries, and whose CNN has the published group-norm/no-bias layout (so it cannot compute ``a``'s CNN
    function: the transformer sees other inputs, and the scramble is not exactly recoverable); + the perms."""
    b = build_published_layout(MERT_330M, seed)
    spec = spec_for_model(a)
    perms = random_permutations(spec, spec.select(TRANSFORMER), torch.Generator().manual_seed(seed))
    scrambled = apply_permutations({k: v for k, v in a.state_dict().items() if not k.startswith("feature_extractor.")},
                                   spec, perms)
    state = b.state_dict()
    state.update(scrambled)
    for key, value in a.state_dict().items():  # b's convolutions: a's filters (the norms and biases cannot follow)
        if key.endswith(".conv.weight") and key.startswith("feature_extractor."):
            state[key] = value.clone()
    b.load_state_dict(state)
    return b.eval(), perms


def test_published_large_layouts_differ_in_the_cnn_only():
    a, b = build_published_layout(HUBERT_LARGE, 1), build_published_layout(MERT_330M, 2)
    assert (a.config.feat_extract_norm, a.config.conv_bias, a.config.do_stable_layer_norm) == ("layer", True, True)
    assert (b.config.feat_extract_norm, b.config.conv_bias, b.config.do_stable_layer_norm) == ("group", False, True)
    assert check_compatible(a, b) == "from_a" == cnn_policy(a, b)
    assert check_compatible(a, build_published_layout(HUBERT_LARGE, 3)) == "merged"


def test_truly_incompatible_pair_names_every_differing_key():
    a = build_published_layout(HUBERT_LARGE, 4)
    b = build_published_layout(dict(MERT_330M, do_stable_layer_norm=False, hidden_act="relu"), 5)
    with pytest.raises(MergeError) as info:
        check_compatible(a, b, "a (hubert)", "b (mert)")
    message = str(info.value)
    assert "do_stable_layer_norm" in message and "hidden_act" in message
    assert "feat_extract_norm" in message  # named as the keys that may differ


def test_mert_attention_relaxation_equals_the_plain_attention_we_load(tmp_path):
    assert MERT_330M["attention_relax"] == 32.0  # as published
    directory = write_published_layout_dir(tmp_path / "mert_330m", MERT_330M, build_published_layout(MERT_330M, 91))
    loaded = load_hubert_family(directory)
    assert loaded.sample_rate == 24000 and loaded.model.config.do_stable_layer_norm
    attention = loaded.model.encoder.layers[0].attention
    generator = torch.Generator().manual_seed(92)
    x = 3.0 * torch.randn(2, 9, loaded.model.config.hidden_size, generator=generator, dtype=torch.float64)
    keep = torch.ones(2, 9, dtype=torch.bool)
    keep[1, 6:] = False  # padded keys of the second row
    additive = torch.zeros(2, 9, 9, dtype=torch.float64).masked_fill(~keep[:, None, :], torch.finfo(torch.float64).min)
    attention = attention.double().eval()
    with torch.no_grad():
        ours = attention(x, attention_mask=additive[:, None])[0]
        reference = _relaxed_attention(attention, x, additive, 32.0)
    assert torch.allclose(ours, reference, atol=1e-10)


@pytest.mark.parametrize("layout,rate,kind", [(HUBERT_LARGE, 16000, "hubert"), (MERT_330M, 24000, "mert")],
                         ids=["hubert-large-ll60k", "MERT-v1-330M"])
def test_scramble_of_each_published_large_layout_is_recovered(layout, rate, kind):
    a = build_published_layout(layout, 93)
    spec = spec_for_model(a)
    perms = random_permutations(spec, spec.select(("cnn",) + TRANSFORMER), torch.Generator().manual_seed(94))
    b = build_published_layout(layout, 95)
    b.load_state_dict(apply_permutations(a.state_dict(), spec, perms))
    alignment = align(LoadedEncoder(a, rate, kind), LoadedEncoder(b, rate, kind), ("cnn",) + TRANSFORMER,
                      Calibration(**SMALL_CALIBRATION), seed=0, progress=False)
    expected = invert_all(perms)
    assert set(alignment.perms) == set(expected)
    for name, perm in expected.items():
        assert torch.equal(alignment.perms[name], perm), name


def test_cross_layout_alignment_calibrates_only_the_last_cnn_group_and_keeps_b_intact():
    a = build_published_layout(HUBERT_LARGE, 96)
    b, _ = mert_twin(a, 97)
    alignment = align(LoadedEncoder(a, 16000, "hubert"), LoadedEncoder(b, 24000, "mert"), ("cnn",) + TRANSFORMER,
                      Calibration(**SMALL_CALIBRATION), seed=0, progress=False, skip=cnn_groups_to_skip(a, "from_a"))
    assert sorted(n for n in alignment.perms if n.startswith("cnn.")) == ["cnn.6"]  # b's inner CNN is dropped
    assert alignment.calibration["clips_used"] == SMALL_CALIBRATION["synthetic"]["clips"]  # 16 kHz vs 24 kHz, aligned
    # b permuted with its own (group-norm, bias-free) spec computes what b computed, in the residual basis
    moved = build_published_layout(MERT_330M, 98)
    moved.load_state_dict(apply_permutations(b.state_dict(), spec_for_model(b), alignment.perms))
    wave = torch.randn(1, 8000, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        before, after = b(wave).last_hidden_state, moved(wave).last_hidden_state
    assert float((after - before[..., alignment.perms["residual"]]).abs().max()) < 1e-4


def test_large_pair_builds_with_a_cnn_from_a_at_two_native_rates(tmp_path):
    a = build_published_layout(HUBERT_LARGE, 97)
    b, _ = mert_twin(a, 98)
    dir_a = write_published_layout_dir(tmp_path / "hubert_large", HUBERT_LARGE, a)
    dir_b = write_published_layout_dir(tmp_path / "mert_330m", MERT_330M, b)
    assert load_hubert_family(dir_b).sample_rate == 24000
    out = build(make_recipe(dir_a, dir_b, preset="cnn_ffn_attn"), tmp_path / "out", progress=False)
    report = json.loads((out / "merge_report.json").read_text())
    assert report["feature_encoder"] == {"policy": "from_a", "differing_keys": {
        "feat_extract_norm": {"a": "layer", "b": "group"}, "conv_bias": {"a": True, "b": False}}}
    assert report["calibration"]["clips_used"] == SMALL_CALIBRATION["synthetic"]["clips"]
    assert "cnn.6" in report["groups"] and "cnn.0" not in report["groups"]
    assert "CNN feature encoder: taken from model a, unmerged" in (out / "README.md").read_text()
    merged = load_hubert_family(out)
    assert (merged.model.config.feat_extract_norm, merged.model.config.conv_bias, merged.sample_rate) == ("layer", True, 16000)
    state_a, state_m = a.state_dict(), merged.model.state_dict()
    cnn = [k for k in state_a if k.startswith("feature_extractor.")]
    assert cnn and all(torch.equal(state_a[k], state_m[k]) for k in cnn)
    projection = "feature_projection.projection.weight"
    assert not torch.equal(state_a[projection], state_m[projection])  # b's share is in the averaged rest


def test_large_entries_and_recipes_exist_for_every_preset():
    from upstream_merged.hub.common import PACKAGE_RECIPES
    from upstream_merged.permutation.presets import PRESETS
    from upstream_merged.recipe import load_recipe
    from upstream_merged.registry import entries

    names = set(entries())
    for preset in PRESETS.values():
        assert f"{preset.entry}_large" in names
        recipe = load_recipe(PACKAGE_RECIPES / f"large_hubert_mert{preset.entry_suffix}.yaml")
        assert recipe.preset == preset.name
        assert recipe.sources == {"a": "facebook/hubert-large-ll60k", "b": "m-a-p/MERT-v1-330M"}
        assert [d.clips for d in recipe.calibration.datasets] == [5000, 5000]
    assert "merged_hubert_mert_large" in names
