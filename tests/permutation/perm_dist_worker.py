"""One rank of the distributed-calibration proofs (run by test_perm_calibration.py / test_perm_torchrun.py in subprocesses)."""
from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.permutation.calibration import Shard
from upstream_merged.permutation.merge import align
from upstream_merged.permutation.recipe import Calibration


def run(rank: int, world: int, init: str, dir_a: str, dir_b: str, calibration: dict, out: str) -> None:
    """Calibrate on this rank's share of the clips, all-reduce, match, and save permutations + correlations."""
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    alignment = align(load_hubert_family(dir_a), load_hubert_family(dir_b), ("cnn", "ffn", "attn", "residual"),
                      Calibration(**calibration), seed=3, progress=False,
                      shard=Shard(rank, world) if world > 1 else None)
    tensors = {f"perm/{k}": v.contiguous() for k, v in alignment.perms.items()}
    tensors.update({f"corr/{k}": v.contiguous() for k, v in alignment.correlations.items()})
    save_file(tensors, out, metadata={"clips": str(alignment.calibration["clips_used"])})
    if world > 1:
        dist.destroy_process_group()


def build_entry_in_group(rank: int, world: int, init: str, recipe: dict, result: str) -> None:
    """Inside a ``world``-rank gloo group (as s3prl's DDP training), build a merge through the hub cache on a miss."""
    import os

    from upstream_merged.hub.common import build_cached
    from upstream_merged.recipe import parse_recipe

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    calls = []
    original = dist.all_reduce
    dist.all_reduce = lambda *args, **kwargs: calls.append("all_reduce") or original(*args, **kwargs)
    try:
        built = build_cached(parse_recipe(recipe))
    finally:
        dist.all_reduce = original
    with open(result, "w") as handle:
        json.dump({"dir": str(built), "collectives": len(calls), "pid": os.getpid()}, handle)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    rank, world, init, dir_a, dir_b, calibration, out = sys.argv[1:8]
    run(int(rank), int(world), init, dir_a, dir_b, json.loads(calibration), out)
