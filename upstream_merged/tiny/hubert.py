"""Tiny HuBERT and MERT checkpoints in the formats their publishers use."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

import torch
from safetensors.torch import save_file
from transformers import HubertConfig, HubertModel

from upstream_merged.core.rng import isolated_rng
from upstream_merged.tiny import randomize_, tiny_writer

# The wav2vec2-style CNN (downsample 320, like the real one) and positional conv at CPU-test width;
# shared by every tiny wav2vec2-family model (HuBERT, MERT, WavLM).
TINY_FEATURE_ENCODER = dict(
    conv_dim=[16] * 7,
    conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    conv_stride=[5, 2, 2, 2, 2, 2, 2],
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
)
TINY_HUBERT = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    **TINY_FEATURE_ENCODER,
    feat_extract_norm="group",
    feat_proj_layer_norm=True,
    do_stable_layer_norm=False,
    conv_bias=False,
    mask_time_prob=0.05,
)

PREPROCESSOR = dict(
    feature_extractor_type="Wav2Vec2FeatureExtractor",
    feature_size=1,
    padding_side="right",
    padding_value=0.0,
    return_attention_mask=True,
)

# What MERT's remote-code config.json carries beyond HuBERT's keys (as published for v0-public / v1-95M).
_MERT_EXTRA = dict(
    architectures=["MERTModel"],
    auto_map={"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
    model_type="mert_model",
    attention_relax=-1.0,
    deepnorm=False,
    feature_extractor_cqt=False,
    feature_extractor_cqt_bins=336,
    feat_proj_layer_norm=True,
)


def tiny_hubert_config(**overrides) -> dict:
    """A HubertConfig dict small enough for CPU tests (downsample rate 320 like the real CNN)."""
    return {**TINY_HUBERT, **overrides}


def build_tiny_hubert(seed: int = 0, **overrides) -> HubertModel:
    """A seeded, fully randomised tiny HubertModel in eval mode."""
    config = HubertConfig(**tiny_hubert_config(**overrides), layerdrop=0.0, apply_spec_augment=False)
    with isolated_rng(seed):  # module construction draws from torch's RNG; keep the caller's state
        return randomize_(HubertModel(config), seed).eval()


def _with_weight_norm_names(state: Dict[str, torch.Tensor], style: str) -> Dict[str, torch.Tensor]:
    if style == "parametrizations":
        return state
    renamed = {}
    for key, value in state.items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        renamed[key] = value
    return renamed


def write_hubert_dir(
    directory: Path,
    model: HubertModel,
    weights: str = "safetensors",
    weight_norm: str = "parametrizations",
    config_extra: Optional[dict] = None,
    key_prefix: str = "",
    normalize: bool = False,
) -> Path:
    """Save ``model`` as a Hugging Face directory: config.json + model.safetensors or pytorch_model.bin."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    config.update(architectures=["HubertModel"], model_type="hubert")
    config.update(config_extra or {})
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    rate = int(config.get("sample_rate", 16000))
    preprocessor = dict(PREPROCESSOR, sampling_rate=rate, do_normalize=normalize)
    (directory / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    state = {key_prefix + k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state = _with_weight_norm_names(state, weight_norm)
    if weights == "safetensors":
        save_file(state, str(directory / "model.safetensors"))
    elif weights == "bin":
        torch.save(state, directory / "pytorch_model.bin")
    else:
        raise ValueError(f"unknown weights format {weights!r}")
    return directory


def write_mert_dir(directory: Path, model: HubertModel, version: str = "v1") -> Path:
    """Save ``model`` as MERT publishes it: remote-code config.json, pytorch_model.bin, weight_g/weight_v."""
    extra = dict(_MERT_EXTRA)
    if version == "v1":
        extra.update(sample_rate=24000, conv_pos_batch_norm=False)
    elif version != "v0":
        raise ValueError(f"unknown MERT version {version!r} (v0 or v1)")
    return write_hubert_dir(directory, model, weights="bin", weight_norm="weight_g", config_extra=extra, normalize=True)


@tiny_writer("hubert")
def _tiny_hubert(directory: Path, seed: int) -> None:
    write_hubert_dir(directory, build_tiny_hubert(seed))


@tiny_writer("hubert_prenorm")
def _tiny_hubert_prenorm(directory: Path, seed: int) -> None:
    model = build_tiny_hubert(seed, do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
    write_hubert_dir(directory, model)


@tiny_writer("mert_v0")
def _tiny_mert_v0(directory: Path, seed: int) -> None:
    write_mert_dir(directory, build_tiny_hubert(seed + 1000), version="v0")


@tiny_writer("mert_v1")
def _tiny_mert_v1(directory: Path, seed: int) -> None:
    write_mert_dir(directory, build_tiny_hubert(seed + 2000), version="v1")
