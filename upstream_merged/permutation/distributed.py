"""``torchrun --nproc_per_node N -m upstream_merged merge RECIPE OUT``: one merge, calibration sharded across ranks.

Every rank loads both models and calibrates its share of the global calibration batches (batch
``k`` goes to rank ``k % N``, so each forward sees the same clips as in one process); the statistics
are all-reduced (NCCL with the collective tensors on each rank's GPU, gloo on CPU); rank 0 matches,
permutes, interpolates and writes OUT atomically while the other ranks wait on a barrier.

Only this CLI path shards. A hub entry built on a cache miss inside someone else's process group
(s3prl's multi-GPU training) calibrates on every clip in one process and calls no collective, so
the merge never depends on how many GPUs trained the downstream.
"""
from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Optional

import torch

from upstream_merged.permutation.calibration import Shard, resolve_device

logger = logging.getLogger(__name__)

# Rank 0 matches and writes while the others wait on the final barrier: allow for paper-scale LAPs.
BARRIER_TIMEOUT = timedelta(hours=2)


def torchrun_world() -> int:
    """WORLD_SIZE set by torchrun (1 outside it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def sharded_merge(recipe, out: Path, device: Optional[str] = None, progress: bool = True) -> Optional[Path]:
    """Run this rank's part of a torchrun merge of ``recipe`` into ``out``; rank 0 returns ``out``, others None."""
    import torch.distributed as dist

    from upstream_merged.cache import build_atomically
    from upstream_merged.permutation.merge import build, calibrate_shard

    rank, world, local_rank = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    target = resolve_device(device or recipe.calibration.device, local_rank)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo", timeout=BARRIER_TIMEOUT)
    shard = Shard(rank, world)
    logger.info("rank %d/%d calibrates its share on %s (%s)", rank, world, target, dist.get_backend())
    try:
        if rank == 0:
            build_atomically(out, lambda tmp: build(recipe, tmp, progress=progress, device=str(target), shard=shard),
                             refresh=True)
        else:
            calibrate_shard(recipe, shard, device=str(target))
        dist.barrier()  # OUT is complete once every rank passes this
    finally:
        if owned:
            dist.destroy_process_group()
    return out if rank == 0 else None
