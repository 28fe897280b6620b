"""Tiny BERT and ViT checkpoints (MAM sources) in the layouts their publishers use.

``tiny:bert`` mirrors bert-base-uncased's files: BertForPreTraining weights under a ``bert.`` prefix,
``cls.*`` heads, TF-style LayerNorm ``gamma``/``beta`` names. ``tiny:vit`` mirrors
google/vit-base-patch16-224-in21k: bare ViTModel weights with a pooler. Widths match tiny:hubert.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForPreTraining, ViTConfig, ViTModel

from upstream_merged.core.rng import isolated_rng
from upstream_merged.tiny import randomize_, tiny_writer
from upstream_merged.tiny.hubert import TINY_HUBERT

TINY_SIZE = dict(
    hidden_size=TINY_HUBERT["hidden_size"],
    num_hidden_layers=TINY_HUBERT["num_hidden_layers"],
    num_attention_heads=TINY_HUBERT["num_attention_heads"],
    intermediate_size=64,
)


def tiny_bert_config(**overrides) -> dict:
    """A BertConfig dict (post-LN, tiny vocabulary) of tiny:hubert's width, heads and depth."""
    return {**TINY_SIZE, "vocab_size": 64, "max_position_embeddings": 64, "type_vocab_size": 2, **overrides}


def tiny_vit_config(**overrides) -> dict:
    """A ViTConfig dict (pre-LN, 32x32 images, 8x8 patches) of tiny:hubert's width, heads and depth."""
    return {**TINY_SIZE, "image_size": 32, "patch_size": 8, "num_channels": 3, **overrides}


def _save(directory: Path, config: dict, state: Dict[str, torch.Tensor]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(directory / "model.safetensors"))


def write_bert_dir(directory: Path, seed: int, **overrides) -> Path:
    """Write a seeded random BERT in bert-base-uncased's layout (prefix, heads, gamma/beta)."""
    config = BertConfig(**tiny_bert_config(**overrides))
    with isolated_rng(seed):  # module construction draws from torch's RNG; keep the caller's state
        model = randomize_(BertForPreTraining(config), seed + 3000)
    state = {}
    for key, tensor in model.state_dict().items():
        if "LayerNorm." in key and not key.startswith("cls."):
            key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[key] = tensor
    saved = config.to_dict()
    saved.update(architectures=["BertForMaskedLM"], model_type="bert")
    _save(Path(directory), saved, state)
    return Path(directory)


def write_vit_dir(directory: Path, seed: int, **overrides) -> Path:
    """Write a seeded random ViTModel (with pooler) in the in21k checkpoint's layout."""
    config = ViTConfig(**tiny_vit_config(**overrides))
    with isolated_rng(seed):
        model = randomize_(ViTModel(config, add_pooling_layer=True), seed + 4000)
    saved = config.to_dict()
    saved.update(architectures=["ViTModel"], model_type="vit")
    _save(Path(directory), saved, model.state_dict())
    return Path(directory)


@tiny_writer("bert")
def _tiny_bert(directory: Path, seed: int) -> None:
    write_bert_dir(directory, seed)


@tiny_writer("vit")
def _tiny_vit(directory: Path, seed: int) -> None:
    write_vit_dir(directory, seed)
