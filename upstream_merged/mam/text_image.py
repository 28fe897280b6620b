"""BERT and ViT source models from Hugging Face directories, loaded strictly with named key allowances.

Published checkpoints differ from a bare ``BertModel`` / ``ViTModel`` in a few well-known ways. Each
difference we accept is a named rule below; anything else is a :class:`CheckpointError` naming the key.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
from transformers import BertConfig, BertModel, ViTConfig, ViTModel

from upstream_merged.models.checkpoint import CheckpointError, load_strict, read_config, read_weights

logger = logging.getLogger(__name__)

State = Dict[str, torch.Tensor]


@dataclass
class KeyRules:
    """The allowances for one family: wrapper prefix, task heads to drop, legacy names, optional parts."""

    prefix: str  # e.g. "bert." in BertFor* checkpoints
    head_prefixes: Tuple[str, ...]  # task heads outside the bare model, dropped
    drop_keys: Tuple[str, ...] = ()  # buffers transformers no longer stores
    applied: List[str] = field(default_factory=list)

    def note(self, rule: str, count: int) -> None:
        if count:
            self.applied.append(f"{rule} ({count} key{'s' if count != 1 else ''})")


def _rename_legacy_layernorm(state: State, rules: KeyRules) -> State:
    """TF-converted checkpoints (bert-base-uncased) name LayerNorm affine ``gamma``/``beta``."""
    out, count = {}, 0
    for key, tensor in state.items():
        if "LayerNorm." in key and key.endswith((".gamma", ".beta")):
            key = key[: -len("gamma")] + "weight" if key.endswith(".gamma") else key[: -len("beta")] + "bias"
            count += 1
        out[key] = tensor
    rules.note("legacy LayerNorm gamma/beta renamed to weight/bias", count)
    return out


def normalise_keys(state: State, rules: KeyRules) -> State:
    """Apply the family's named allowances; return a state dict in bare-model names."""
    heads = [k for k in state if k.startswith(rules.head_prefixes)]
    rules.note(f"task heads dropped ({', '.join(rules.head_prefixes)})", len(heads))
    state = {k: v for k, v in state.items() if k not in heads}
    prefixed = [k for k in state if k.startswith(rules.prefix)]
    if prefixed and len(prefixed) != len(state):
        stray = sorted(set(state) - set(prefixed))[:3]
        raise CheckpointError(f"mixed key prefixes: some keys start with {rules.prefix!r}, others do not (e.g. {stray})")
    rules.note(f"wrapper prefix {rules.prefix!r} stripped", len(prefixed))
    state = {k[len(rules.prefix):] if prefixed else k: v for k, v in state.items()}
    dropped = [k for k in rules.drop_keys if k in state]
    rules.note(f"non-persistent buffers dropped ({', '.join(dropped)})", len(dropped))
    state = {k: v for k, v in state.items() if k not in dropped}
    return _rename_legacy_layernorm(state, rules)


@dataclass
class LoadedSource:
    """A bare transformers model plus the allowances applied while loading it."""

    model: torch.nn.Module
    config: dict
    notes: List[str]


def _load(directory: Path, rules: KeyRules, build: Callable[[dict, State], torch.nn.Module]) -> LoadedSource:
    directory = Path(directory)
    config = read_config(directory)
    state = normalise_keys(read_weights(directory), rules)
    model = build(config, state)
    load_strict(model, state, str(directory))
    for note in rules.applied:
        logger.info("%s: %s", directory, note)
    return LoadedSource(model.eval(), config, list(rules.applied))


def _build_bert(config: dict, state: State) -> BertModel:
    if config.get("model_type", "bert") != "bert":
        raise CheckpointError(f"model_type {config.get('model_type')!r} is not 'bert'")
    return BertModel(BertConfig(**config), add_pooling_layer=any(k.startswith("pooler.") for k in state))


def _build_vit(config: dict, state: State) -> ViTModel:
    if config.get("model_type", "vit") != "vit":
        raise CheckpointError(f"model_type {config.get('model_type')!r} is not 'vit'")
    return ViTModel(
        ViTConfig(**config),
        add_pooling_layer=any(k.startswith("pooler.") for k in state),
        use_mask_token="embeddings.mask_token" in state,
    )


def load_bert(directory: str | Path) -> LoadedSource:
    """A ``BertModel`` from an HF dir (BertModel, BertForMaskedLM or BertForPreTraining weights)."""
    rules = KeyRules(prefix="bert.", head_prefixes=("cls.",), drop_keys=("embeddings.position_ids",))
    return _load(Path(directory), rules, _build_bert)


def load_vit(directory: str | Path) -> LoadedSource:
    """A ``ViTModel`` from an HF dir (ViTModel or ViTForImageClassification weights)."""
    rules = KeyRules(prefix="vit.", head_prefixes=("classifier.",))
    return _load(Path(directory), rules, _build_vit)
