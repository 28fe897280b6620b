"""Tiny HubertModels with a published config.json's exact key set (sizes shrunk): the strict loader's test inputs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import save_file
from transformers import HubertModel

from upstream_merged.core.rng import isolated_rng
from upstream_merged.tiny import randomize_
from upstream_merged.tiny.hubert import PREPROCESSOR, _with_weight_norm_names

# The size keys of a published HuBERT/MERT config.json and their CPU-test values; every other key (layout,
# norms, biases, remote-code metadata, fairseq leftovers) stays exactly as published.
PUBLISHED_SIZE_KEYS = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, conv_dim=[16] * 7,
)


def shrink_published_config(published: dict) -> dict:
    """``published`` (a config.json as downloaded) with only its size keys set to CPU-test values."""
    return {**published, **{key: value for key, value in PUBLISHED_SIZE_KEYS.items() if key in published}}


def build_published_layout(published: dict, seed: int = 0) -> HubertModel:
    """A seeded random tiny HubertModel with ``published``'s exact layout (built through the strict loader)."""
    from upstream_merged.models.hubert import hubert_config_from_dict

    config, _, _ = hubert_config_from_dict(shrink_published_config(published), "published layout")
    with isolated_rng(seed):
        return randomize_(HubertModel(config), seed).eval()


def write_published_layout_dir(directory: Path, published: dict, model: HubertModel,
                               preprocessor: Optional[dict] = None) -> Path:
    """Write ``model`` with the published key set (sizes shrunk) and the publisher's weight format.

    MERT (remote code): pytorch_model.bin with legacy weight_g/weight_v names; HuBERT: model.safetensors.
    ``preprocessor`` is the published preprocessor_config.json (sampling rate and normalisation kept).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = shrink_published_config(published)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    is_mert = config.get("model_type") == "mert_model"
    rate = int(config.get("sample_rate", 16000))
    if preprocessor is None:
        normalize = is_mert or config.get("feat_extract_norm") == "layer"
        preprocessor = dict(PREPROCESSOR, sampling_rate=rate, do_normalize=normalize)
    (directory / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if is_mert:
        torch.save(_with_weight_norm_names(state, "weight_g"), directory / "pytorch_model.bin")
    else:
        save_file(state, str(directory / "model.safetensors"))
    return directory
