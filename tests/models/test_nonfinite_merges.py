"""NaN/Inf in merge inputs and outputs (permutation merge, MAM, fusion build) are refused, naming the tensor."""
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from upstream_merged.models.checkpoint import NonFiniteTensorError
from upstream_merged.recipe import parse_recipe
from upstream_merged.tiny.hubert import build_tiny_hubert, write_hubert_dir
from upstream_merged.tiny.text_image import write_bert_dir

POISONED = "encoder.layers.0.attention.q_proj.weight"
CALIBRATION = {"synthetic": {"clips": 2, "seconds": 0.5}, "batch_size": 2}


def _poisoned_hubert(directory, seed=1):
    write_hubert_dir(directory, build_tiny_hubert(seed=seed))
    state = load_file(str(directory / "model.safetensors"))
    state[POISONED][2, 2] = math.nan
    save_file(state, str(directory / "model.safetensors"))
    return directory


def _permutation_recipe(a, b):
    return parse_recipe({"method": "permutation", "sources": {"a": str(a), "b": str(b)}, "preset": "avg",
                         "calibration": CALIBRATION, "report": {"heatmap_groups": []}})


def test_permutation_merge_refuses_a_non_finite_input(tmp_path):
    from upstream_merged.permutation.merge import build

    a = write_hubert_dir(tmp_path / "a", build_tiny_hubert(seed=2))
    b = _poisoned_hubert(tmp_path / "b")
    with pytest.raises(NonFiniteTensorError, match=POISONED.replace(".", r"\.")):
        build(_permutation_recipe(a, b), tmp_path / "out")


def test_permutation_merge_refuses_a_non_finite_output(tmp_path, monkeypatch):
    from upstream_merged.permutation import merge

    real = merge.interpolate_state_dicts

    def overflowing(state_a, state_b, alpha):  # e.g. an overflow in the interpolation
        out = real(state_a, state_b, alpha)
        if POISONED in out:  # the merge interpolates tensor by tensor
            out[POISONED] = out[POISONED].clone().fill_(math.inf)
        return out

    monkeypatch.setattr(merge, "interpolate_state_dicts", overflowing)
    a = write_hubert_dir(tmp_path / "a", build_tiny_hubert(seed=2))
    b = write_hubert_dir(tmp_path / "b", build_tiny_hubert(seed=3))
    with pytest.raises(NonFiniteTensorError, match=rf"merged tensor.*{POISONED}"):
        merge.build(_permutation_recipe(a, b), tmp_path / "out")


def test_mam_merge_refuses_non_finite_inputs_and_outputs(tmp_path, monkeypatch):
    from upstream_merged.mam import build as mam_build

    target = write_hubert_dir(tmp_path / "target", build_tiny_hubert(seed=4))
    source = write_bert_dir(tmp_path / "bert", seed=5)
    state = load_file(str(source / "model.safetensors"))
    key = "bert.encoder.layer.1.attention.self.value.weight"
    state[key] = state[key].clone()
    state[key][0, 0] = -math.inf
    save_file(state, str(source / "model.safetensors"))
    recipe = parse_recipe({"method": "mam", "sources": {"target": str(target), "source": str(source)}, "lambda": 0.1})
    with pytest.raises(NonFiniteTensorError, match=r"encoder\.layer\.1\.attention\.self\.value\.weight"):
        mam_build.build_merged_dir(recipe, tmp_path / "out")

    clean = write_bert_dir(tmp_path / "bert_clean", seed=5)
    real = mam_build.merge_states

    def broken(*args, **kwargs):
        out = real(*args, **kwargs)
        out[POISONED] = out[POISONED] * math.nan
        return out

    monkeypatch.setattr(mam_build, "merge_states", broken)
    recipe = parse_recipe({"method": "mam", "sources": {"target": str(target), "source": str(clean)}, "lambda": 0.1})
    with pytest.raises(NonFiniteTensorError, match=rf"merged tensor.*{POISONED}"):
        mam_build.build_merged_dir(recipe, tmp_path / "out2")


def test_fusion_build_refuses_a_non_finite_backbone(tmp_path):
    from upstream_merged.fusion.build import fusion_upstream_from_recipe

    speech = _poisoned_hubert(tmp_path / "speech", seed=6)
    recipe = parse_recipe({"method": "fusion", "interface": "gumd",
                           "sources": {"speech": str(speech), "music": "tiny:mert_v1:0"}})
    with pytest.raises(NonFiniteTensorError, match=POISONED.replace(".", r"\.")):
        fusion_upstream_from_recipe(recipe)


def test_fusion_build_refuses_a_non_finite_interface(monkeypatch):
    from upstream_merged.fusion import build as fusion_build

    real = fusion_build.FusionUpstream

    def broken(*args, **kwargs):
        upstream = real(*args, **kwargs)
        with torch.no_grad():
            next(p for p in upstream.parameters() if p.requires_grad).fill_(math.nan)
        return upstream

    monkeypatch.setattr(fusion_build, "FusionUpstream", broken)
    recipe = parse_recipe({"method": "fusion", "interface": "gumd",
                           "sources": {"speech": "tiny:hubert:0", "music": "tiny:mert_v1:0"}})
    with pytest.raises(NonFiniteTensorError, match="interface tensor"):
        fusion_build.fusion_upstream_from_recipe(recipe)
