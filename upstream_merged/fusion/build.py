"""From a fusion recipe to a ready FusionUpstream: resolve each source, load it frozen, seed the interface."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Optional

from upstream_merged.fusion.backbones import load_backbone
from upstream_merged.fusion.memo import MEMO_ENV, FrozenMemo
from upstream_merged.fusion.model import FusionUpstream
from upstream_merged.fusion.recipe import FusionRecipe
from upstream_merged.sources import SourceError, resolve_source

logger = logging.getLogger(__name__)


def resolve_fusion_sources(recipe: FusionRecipe) -> Dict[str, Path]:
    """Local directory of every source; an unavailable one raises SourceError saying how to use a local dir."""
    dirs = {}
    for role, source in recipe.sources.items():
        try:
            dirs[role] = resolve_source(source, what=f"fusion source {role!r}", flag=f"sources.{role}:")
        except SourceError as err:
            raise SourceError(
                f"{err} For a fusion hub entry: copy its packaged recipe (upstream_merged/recipes/fusion_*.yaml), "
                f"set `sources.{role}: DIR` and pass the copy with -g."
            ) from None
    return dirs


def fusion_upstream_from_recipe(recipe: FusionRecipe, source_dirs: Optional[Dict[str, Path]] = None) -> FusionUpstream:
    """Build the fusion upstream of ``recipe`` (backbones loaded strictly and frozen, interface seeded)."""
    dirs = source_dirs or resolve_fusion_sources(recipe)
    missing = set(recipe.sources) - set(dirs)
    if missing:
        raise ValueError(f"no directory for fusion source(s) {sorted(missing)}")
    backbones = {role: load_backbone(dirs[role], recipe.options.whisper_context) for role in recipe.sources}
    memo = FrozenMemo.from_env()
    if memo is not None:
        logger.info("fusion backbones read and write their hidden states in the memo %s (%s)", memo.directory, MEMO_ENV)
        for backbone in backbones.values():
            backbone.memo = memo
    upstream = FusionUpstream(backbones, recipe.spec(), seed=recipe.seed)
    from upstream_merged.models.checkpoint import check_finite

    check_finite({n: p for n, p in upstream.named_parameters() if p.requires_grad}, "fusion build", "interface")
    logger.info("fusion upstream: %s over %s, %d trainable parameters", recipe.interface, list(backbones),
                sum(p.numel() for p in upstream.parameters() if p.requires_grad))
    return upstream
