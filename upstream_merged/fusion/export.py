"""Export the interface trained by a stock ``run_downstream.py -f`` run into a fused-model directory.

    python -m upstream_merged.fusion.export EXPDIR/dev-best.ckpt OUT [--force]

The run's arguments (entry, -g, -k) saved in the checkpoint say which recipe it used; OUT then
holds the backbones, the trained interface and the recipe, and ``-u fusion_custom -k OUT`` serves it.
The checkpoint's backbone fingerprint (older checkpoints: its backbone tensors) must match the
backbones the recipe resolves to today; otherwise nothing is written and the error names the backbone.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional

import torch

from upstream_merged.cache import build_atomically
from upstream_merged.fusion.fused_dir import (
    is_fused_dir,
    read_fused_dir,
    upstream_state_from_runner_checkpoint,
    write_fused_dir,
)
from upstream_merged.fusion.model import BACKBONE_PREFIX
from upstream_merged.fusion.recipe import FusionRecipe
from upstream_merged.hub.common import choose_recipe
from upstream_merged.hub.fusion import DEFAULT_RECIPES
from upstream_merged.models.checkpoint import CheckpointError
from upstream_merged.registry import allow_runner_checkpoints, entries
from upstream_merged.upstream.frozen_state import FINGERPRINT_KEY

logger = logging.getLogger(__name__)


def run_recipe(checkpoint: Path) -> tuple[FusionRecipe, Optional[Dict[str, Path]]]:
    """The fusion recipe (and backbone dirs, for a -k fused dir) a runner checkpoint was trained with."""
    allow_runner_checkpoints()
    args = torch.load(str(checkpoint), map_location="cpu", weights_only=True).get("Args")
    entry = getattr(args, "upstream", None)
    entries()  # every entry module registers its fusion entries (hub/small.py, hub/controls.py add to DEFAULT_RECIPES)
    if entry not in DEFAULT_RECIPES:
        raise ValueError(f"{checkpoint}: upstream {entry!r} is not a fusion entry ({', '.join(sorted(DEFAULT_RECIPES))})")
    ckpt, config = getattr(args, "upstream_ckpt", None), getattr(args, "upstream_model_config", None)
    if ckpt and is_fused_dir(ckpt):
        return read_fused_dir(ckpt)
    return choose_recipe(ckpt, config, DEFAULT_RECIPES[entry], method="fusion", entry=f"{checkpoint} (run of {entry})"), None


def export(checkpoint: Path, out: Path, force: bool = False) -> Path:
    """Write a fused-model dir with the trained interface of ``checkpoint`` into ``out``."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise FileExistsError(f"output {out} exists and is not empty; pass --force to overwrite it")
    recipe, dirs = run_recipe(checkpoint)
    state = upstream_state_from_runner_checkpoint(checkpoint)
    if FINGERPRINT_KEY not in state and not any(k.startswith(BACKBONE_PREFIX) for k in state):
        raise CheckpointError(f"{checkpoint}: its 'Upstream' state has neither the backbones' fingerprint "
                              f"({FINGERPRINT_KEY}) nor backbone tensors, so the backbones it was trained on "
                              "cannot be checked; export a checkpoint written by a -f run of a fusion entry")
    return build_atomically(out, lambda tmp: write_fused_dir(recipe, tmp, interface_state=state, source_dirs=dirs,
                                                             state_source=str(checkpoint)),
                            refresh=True)


def main(argv: Optional[List[str]] = None) -> int:
    """Command line of the exporter."""
    parser = argparse.ArgumentParser(prog="python -m upstream_merged.fusion.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="runner checkpoint written under -f (dev-best.ckpt, states-N.ckpt)")
    parser.add_argument("out", type=Path, help="fused-model directory to write")
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        print(f"wrote {export(args.checkpoint, args.out, args.force)}")
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
