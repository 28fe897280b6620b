"""Helpers shared by the MAM tests (imported by name; fixtures live in the tests): recipes, merges, outputs."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import torch

from upstream_merged.mam.build import build_merged_dir
from upstream_merged.mam.loading import AttentionModel, load_attention_model
from upstream_merged.recipe import parse_recipe
from upstream_merged.sources import resolve_source

TINY = {"hubert": "tiny:hubert:0", "beats": "tiny:beats:0", "bert": "tiny:bert:0", "vit": "tiny:vit:0"}


def mam_recipe(target: str, source: str, **keys):
    """A validated MAM recipe for two sources (tiny arch names or paths)."""
    data = {"method": "mam", "sources": {"target": TINY.get(target, target), "source": TINY.get(source, source)}}
    data.update(keys)
    return parse_recipe(data)


def loaded(name: str) -> AttentionModel:
    """A tiny model (or a path) loaded as MAM loads it."""
    return load_attention_model(resolve_source(TINY.get(name, name)))


def merge_to(tmp_path: Path, target: str, source: str, **keys) -> Path:
    """Build a MAM recipe into a fresh dir under tmp_path."""
    out = tmp_path / f"merged-{len(list(tmp_path.iterdir()))}"
    build_merged_dir(mam_recipe(target, source, **keys), out, progress=False)
    return out


def hidden_states(upstream: torch.nn.Module, wavs: List[torch.Tensor]) -> List[torch.Tensor]:
    """Eval-mode hidden states of an s3prl upstream."""
    upstream.eval()
    with torch.no_grad():
        return [h.clone() for h in upstream(wavs)["hidden_states"]]


def wavs() -> List[torch.Tensor]:
    """A padded batch of two short random clips (1 s and 0.6 s at 16 kHz)."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(16000, generator=generator) * 0.1, torch.randn(9600, generator=generator) * 0.1]


def attention_state(model: AttentionModel) -> Dict[str, torch.Tensor]:
    """The model's state dict."""
    return dict(model.model.state_dict())
