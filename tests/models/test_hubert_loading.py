"""Strict loading of HuBERT and MERT checkpoint directories in their published formats."""
import json

import pytest
import torch
from transformers import HubertModel

from upstream_merged.models.checkpoint import CheckpointError
from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.tiny.hubert import build_tiny_hubert, write_hubert_dir, write_mert_dir

WAVE = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))


def _same_outputs(a: HubertModel, b: HubertModel) -> float:
    with torch.no_grad():
        ha = a(WAVE, output_hidden_states=True).hidden_states
        hb = b(WAVE, output_hidden_states=True).hidden_states
    return max(float((x - y).abs().max()) for x, y in zip(ha, hb))


@pytest.mark.parametrize("weights", ["safetensors", "bin"])
@pytest.mark.parametrize("weight_norm", ["parametrizations", "weight_g"])
def test_hubert_dir_loads_every_key(tmp_path, weights, weight_norm):
    model = build_tiny_hubert(seed=3)
    write_hubert_dir(tmp_path, model, weights=weights, weight_norm=weight_norm)
    loaded = load_hubert_family(tmp_path)
    assert loaded.kind == "hubert" and loaded.sample_rate == 16000
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    assert _same_outputs(model, loaded.model) == 0.0


def test_matches_transformers_from_pretrained(tmp_path):
    write_hubert_dir(tmp_path, build_tiny_hubert(seed=4))
    reference = HubertModel.from_pretrained(tmp_path).eval()
    assert _same_outputs(reference, load_hubert_family(tmp_path).model) < 1e-6


def test_prefixed_keys_of_a_wrapper_checkpoint(tmp_path):
    model = build_tiny_hubert(seed=5)
    write_hubert_dir(tmp_path, model, key_prefix="hubert.")
    assert _same_outputs(model, load_hubert_family(tmp_path).model) == 0.0


def test_prenorm_variant(tmp_path):
    model = build_tiny_hubert(seed=6, do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
    write_hubert_dir(tmp_path, model)
    loaded = load_hubert_family(tmp_path)
    assert loaded.model.config.do_stable_layer_norm
    assert _same_outputs(model, loaded.model) == 0.0


@pytest.mark.parametrize("version,rate", [("v0", 16000), ("v1", 24000)])
def test_mert_remote_code_dir_without_remote_code(tmp_path, version, rate):
    model = build_tiny_hubert(seed=7)
    write_mert_dir(tmp_path, model, version=version)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["MERTModel"] and config["model_type"] == "mert_model"
    assert "auto_map" in config
    keys = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    assert any(k.endswith("weight_g") for k in keys)
    loaded = load_hubert_family(tmp_path)
    assert (loaded.kind, loaded.sample_rate, loaded.normalize) == ("mert", rate, True)
    assert _same_outputs(model, loaded.model) == 0.0


def test_layerdrop_and_masking_disabled(tmp_path):
    write_hubert_dir(tmp_path, build_tiny_hubert(seed=1), config_extra={"layerdrop": 0.3, "apply_spec_augment": True})
    config = load_hubert_family(tmp_path).model.config
    assert config.layerdrop == 0.0 and config.apply_spec_augment is False


def _state(tmp_path):
    return torch.load(tmp_path / "pytorch_model.bin", weights_only=True)


def test_unknown_checkpoint_key_is_named(tmp_path):
    write_hubert_dir(tmp_path, build_tiny_hubert(), weights="bin")
    state = _state(tmp_path)
    state["encoder.layers.0.attention.extra_proj.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="extra_proj"):
        load_hubert_family(tmp_path)


def test_missing_checkpoint_key_is_named(tmp_path):
    write_hubert_dir(tmp_path, build_tiny_hubert(), weights="bin")
    state = _state(tmp_path)
    del state["feature_projection.layer_norm.weight"]
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="feature_projection.layer_norm.weight"):
        load_hubert_family(tmp_path)


def test_shape_mismatch_is_named(tmp_path):
    write_hubert_dir(tmp_path, build_tiny_hubert(), weights="bin")
    state = _state(tmp_path)
    state["encoder.layers.1.feed_forward.intermediate_dense.bias"] = torch.zeros(3)
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="intermediate_dense.bias"):
        load_hubert_family(tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_hubert_family(tmp_path / "nope")


def test_directory_without_config(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_hubert_family(tmp_path)


def test_directory_without_weights(tmp_path):
    write_hubert_dir(tmp_path, build_tiny_hubert())
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights"):
        load_hubert_family(tmp_path)


def test_wrong_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    with pytest.raises(CheckpointError, match="not a HuBERT-family"):
        load_hubert_family(tmp_path)


@pytest.mark.parametrize("option", [{"feature_extractor_cqt": True}, {"deepnorm": True}, {"attention_relax": "32"}])
def test_unsupported_mert_options_are_refused(tmp_path, option):
    write_mert_dir(tmp_path, build_tiny_hubert(), version="v1")
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(option)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=next(iter(option))):
        load_hubert_family(tmp_path)


@pytest.mark.parametrize("rate", [0, -16000, "24k", 24000.5])
def test_wrong_sample_rate_is_named(tmp_path, rate):
    write_mert_dir(tmp_path, build_tiny_hubert(), version="v1")
    config = json.loads((tmp_path / "config.json").read_text())
    config["sample_rate"] = rate
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="sample_rate"):
        load_hubert_family(tmp_path)
