"""Self-contained fused-model directories: what ``python -m upstream_merged merge`` writes for fusion.

Layout: ``backbones/<role>/`` (the source checkpoints, hard-linked when possible), ``interface.safetensors``
(the aligner projections and interface weights: seeded initial ones, or trained ones exported
from a runner checkpoint), ``recipe.yaml`` (verbatim), ``fusion.json`` (manifest) and ``README.md``.
A fusion hub entry given such a directory with ``-k`` loads it without any network access.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Dict, Optional

import torch
import yaml
from safetensors.torch import load_file, save_file

from upstream_merged.fusion.build import fusion_upstream_from_recipe, resolve_fusion_sources
from upstream_merged.fusion.model import FusionUpstream, is_frozen_key
from upstream_merged.fusion.recipe import FusionRecipe
from upstream_merged.models.checkpoint import CheckpointError
from upstream_merged.recipe import parse_recipe, recipe_dict

logger = logging.getLogger(__name__)

MANIFEST = "fusion.json"
INTERFACE_FILE = "interface.safetensors"
FORMAT_VERSION = 1


def is_fused_dir(path: Optional[str | os.PathLike]) -> bool:
    """True when ``path`` is a directory written by :func:`write_fused_dir`."""
    return bool(path) and (Path(path) / MANIFEST).is_file()


def _copy_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    files = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.is_file())
    for path in files:
        destination = target / path.name
        try:
            os.link(path.resolve(), destination)  # same filesystem: no second copy of a large checkpoint
        except OSError:
            shutil.copy2(path.resolve(), destination)


def write_fused_dir(recipe: FusionRecipe, out_dir: str | os.PathLike, recipe_text: Optional[str] = None,
                    interface_state: Optional[Dict[str, torch.Tensor]] = None,
                    source_dirs: Optional[Dict[str, Path]] = None, state_source: str = "given interface state") -> Path:
    """Write ``recipe``'s fused model into ``out_dir`` (initial interface weights unless given).

    A given ``interface_state`` that carries a backbone fingerprint (or backbone tensors), as a runner
    checkpoint does, must match the backbones of ``recipe``; a mismatch raises naming the backbone.
    """
    out = Path(out_dir)
    dirs = source_dirs or resolve_fusion_sources(recipe)
    upstream = fusion_upstream_from_recipe(recipe, dirs)
    upstream.frozen_fingerprint.describe(sources=dirs)
    if interface_state is not None:
        load_interface_state(upstream, interface_state, state_source)
    for role, source in dirs.items():
        _copy_tree(source, out / "backbones" / role)
    save_file({k: v.detach().contiguous() for k, v in upstream.interface_state_dict().items()},
              str(out / INTERFACE_FILE))
    (out / "recipe.yaml").write_text(recipe_text or yaml.safe_dump(recipe_dict(recipe), sort_keys=False))
    manifest = {"format_version": FORMAT_VERSION, "recipe": recipe_dict(recipe),
                "backbones": {role: f"backbones/{role}" for role in dirs},
                "output_dim": upstream.output_dim, "downsample_rate": upstream.get_downsample_rates()}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    (out / "README.md").write_text(_model_card(recipe, upstream))
    return out


def load_interface_state(upstream: FusionUpstream, state: Dict[str, torch.Tensor], source: str) -> None:
    """Load interface tensors strictly (every key, equal shapes); a backbone fingerprint in ``state`` must match."""
    upstream.frozen_fingerprint.verify(state, source=source)
    state = {k: v for k, v in state.items() if not is_frozen_key(k)}
    expected = upstream.interface_state_dict()
    unknown, missing = set(state) - set(expected), set(expected) - set(state)
    if unknown or missing:
        raise CheckpointError(f"{source}: interface keys do not match the recipe's architecture "
                              f"(unexpected: {sorted(unknown)[:6]}, missing: {sorted(missing)[:6]})")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(f"{source}: shape mismatch for {key}: {tuple(tensor.shape)} vs {tuple(expected[key].shape)}")
    upstream.load_state_dict(state, strict=False)


def read_fused_dir(directory: str | os.PathLike) -> tuple[FusionRecipe, Dict[str, Path]]:
    """The recipe and backbone directories of a fused-model directory."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST).read_text())
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{directory / MANIFEST}: format_version {manifest.get('format_version')!r}, "
                              f"this plugin reads {FORMAT_VERSION}")
    recipe = parse_recipe(manifest["recipe"], str(directory / MANIFEST))
    return recipe, {role: directory / rel for role, rel in manifest["backbones"].items()}


def load_fused_dir(directory: str | os.PathLike) -> FusionUpstream:
    """The fusion upstream stored in a fused-model directory (backbones and interface weights from it)."""
    directory = Path(directory)
    recipe, dirs = read_fused_dir(directory)
    upstream = fusion_upstream_from_recipe(recipe, dirs)
    upstream.frozen_fingerprint.describe(sources=dirs)
    load_interface_state(upstream, load_file(str(directory / INTERFACE_FILE)), str(directory / INTERFACE_FILE))
    return upstream


def upstream_state_from_runner_checkpoint(path: str | os.PathLike) -> Dict[str, torch.Tensor]:
    """The 'Upstream' state of an s3prl runner checkpoint (dev-best.ckpt, states-*.ckpt) written under -f.

    It holds the interface tensors and the backbones' fingerprint (older checkpoints: the backbone tensors).
    """
    from upstream_merged.registry import allow_runner_checkpoints

    allow_runner_checkpoints()
    checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    if "Upstream" not in checkpoint:
        raise CheckpointError(f"{path} holds no 'Upstream' weights: the run was not made with -f")
    return dict(checkpoint["Upstream"])


def _model_card(recipe: FusionRecipe, upstream: FusionUpstream) -> str:
    trainable = sum(p.numel() for p in upstream.parameters() if p.requires_grad)
    sources = "\n".join(f"- {role}: `{source}` (frozen)" for role, source in recipe.sources.items())
    return (f"# Fused upstream ({recipe.interface})\n\n{recipe.description}\n\nBackbones:\n{sources}\n\n"
            f"Interface: {recipe.interface}, merge {recipe.spec().resolved_merge}, {trainable} trainable parameters, "
            f"output width {upstream.output_dim}, {upstream.get_downsample_rates()} samples per frame.\n"
            f"Seed {recipe.seed}. Use with s3prl: `run_downstream.py -u fusion_custom -k THIS_DIR -f ...`.\n")
