"""The large pair: MERT-v1-330M's attention relaxation is exact as plain attention; pre-LN scramble-and-recover; entries."""
from __future__ import annotations

import json

import pytest
import torch
from perm_helpers import SMALL_CALIBRATION, scrambled_copy, write_pair

from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.permutation.apply import invert_all
from upstream_merged.permutation.merge import align
from upstream_merged.permutation.recipe import Calibration
from upstream_merged.testing.tiny_hubert import build_tiny_hubert, write_mert_dir

PRE_LN = dict(do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)  # HuBERT Large / MERT-v1-330M layout


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


def test_mert_attention_relaxation_equals_the_plain_attention_we_load(tmp_path):
    model = build_tiny_hubert(91, **PRE_LN)
    directory = write_mert_dir(tmp_path / "mert_330m_like", model, version="v1")
    config = json.loads((directory / "config.json").read_text())
    config["attention_relax"] = 32.0  # as MERT-v1-330M publishes it
    (directory / "config.json").write_text(json.dumps(config))
    loaded = load_hubert_family(directory)  # accepted (it used to be refused)
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


def test_pre_ln_scramble_is_recovered(tmp_path):
    a = build_tiny_hubert(93, **PRE_LN)
    b, perms = scrambled_copy(a, seed=94)
    assert b.config.do_stable_layer_norm
    from upstream_merged.models.hubert import LoadedEncoder

    alignment = align(LoadedEncoder(a, 16000, "hubert"), LoadedEncoder(b, 16000, "hubert"),
                      ("cnn", "ffn", "attn", "residual"), Calibration(**SMALL_CALIBRATION), seed=0, progress=False)
    expected = invert_all(perms)
    assert set(alignment.perms) == set(expected)
    for name, perm in alignment.perms.items():
        assert torch.equal(perm, expected[name]), name


def test_pre_ln_pair_at_two_native_rates_calibrates_frame_aligned(tmp_path):
    a = build_tiny_hubert(95, **PRE_LN)
    b, _ = scrambled_copy(a, seed=96)
    dir_a, _ = write_pair(tmp_path, a, b)
    mert = load_hubert_family(write_mert_dir(tmp_path / "mert", b, version="v1"))
    alignment = align(load_hubert_family(dir_a), mert, ("cnn", "ffn", "attn"), Calibration(**SMALL_CALIBRATION), seed=0,
                      progress=False)
    assert all(torch.isfinite(c).all() for c in alignment.correlations.values())
    assert alignment.calibration["clips_used"] == SMALL_CALIBRATION["synthetic"]["clips"]


def test_large_entries_and_recipes_exist_for_every_preset():
    from upstream_merged.permutation.presets import PRESETS
    from upstream_merged.recipe import load_recipe
    from upstream_merged.registry import entries
    from upstream_merged.hub.common import PACKAGE_RECIPES

    names = set(entries())
    for preset in PRESETS.values():
        assert f"{preset.entry}_large" in names
        recipe = load_recipe(PACKAGE_RECIPES / f"large_hubert_mert{preset.entry_suffix}.yaml")
        assert recipe.preset == preset.name
        assert recipe.sources == {"a": "facebook/hubert-large-ll60k", "b": "m-a-p/MERT-v1-330M"}
        assert [d.clips for d in recipe.calibration.datasets] == [5000, 5000]
    assert "merged_hubert_mert_large" in names


@pytest.mark.parametrize("published", ["m-a-p--MERT-v1-330M"])
def test_published_330m_config_matches_the_pre_ln_layout(published):
    from pathlib import Path

    from upstream_merged.models.hubert import hubert_config_from_dict

    path = Path(__file__).parents[1] / "models" / "published_configs" / f"{published}.json"
    config, rate, _ = hubert_config_from_dict(json.loads(path.read_text()), published)
    assert rate == 24000
    assert {k: getattr(config, k) for k in PRE_LN} == PRE_LN
