"""``torchrun --nproc_per_node N -m upstream_merged merge RECIPE OUT``: one merge, calibration sharded across ranks.

Every rank loads both models and calibrates its share of the global calibration batches (batch
``k`` goes to rank ``k % N``, so each forward sees the same clips as in one process); the statistics
are all-reduced (NCCL with the collective tensors on each rank's GPU, gloo on CPU); rank 0 matches,
permutes, interpolates and writes OUT atomically while the other ranks wait on a barrier.

Each rank calibrates on the GPU of its LOCAL_RANK (``--device cuda``/``auto``; a fixed ``cuda:N`` with
several ranks on a node is refused, see :mod:`upstream_merged.permutation.placement`). A rank that
fails ends the others within seconds (:class:`~upstream_merged.permutation.rank_watch.RankWatch`),
not at the two-hour barrier timeout.

Only this CLI path shards. A hub entry never builds inside someone else's process group (s3prl's
multi-GPU training): a cache miss there is an error giving the command that pre-builds it
(:mod:`upstream_merged.hub.group_guard`).
"""
from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Optional

import torch

from upstream_merged.permutation.calibration import Shard
from upstream_merged.permutation.placement import launch_place, resolve_device
from upstream_merged.permutation.rank_watch import RankWatch

logger = logging.getLogger(__name__)

# Rank 0 matches and writes while the others wait on the final barrier: allow for paper-scale LAPs.
# (A failed rank ends the others through RankWatch long before this.)
BARRIER_TIMEOUT = timedelta(hours=2)


def torchrun_world() -> int:
    """WORLD_SIZE set by torchrun (1 outside it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def sharded_merge(recipe, out: Path, device: Optional[str] = None, progress: bool = True) -> Optional[Path]:
    """Run this rank's part of a torchrun merge of ``recipe`` into ``out``; rank 0 returns ``out``, others None."""
    import torch.distributed as dist

    from upstream_merged.cache import build_atomically
    from upstream_merged.permutation.merge import build, calibrate_shard

    place = launch_place()
    rank, world = place.rank, place.world
    target = resolve_device(device or recipe.calibration.device, place)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo", timeout=BARRIER_TIMEOUT)
    shard = Shard(rank, world)
    logger.info("rank %d/%d calibrates its share on %s (%s)", rank, world, target, dist.get_backend())
    try:
        with RankWatch(default_store(), rank, world):
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


def default_store():
    """The key-value store of the default process group (torch keeps no public accessor for it)."""
    from torch.distributed import distributed_c10d

    return distributed_c10d._get_default_store()
