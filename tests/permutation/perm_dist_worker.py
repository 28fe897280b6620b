"""One rank of the distributed-calibration proof (run by test_perm_calibration.py in a subprocess)."""
from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.permutation.merge import align
from upstream_merged.permutation.recipe import Calibration


def run(rank: int, world: int, init: str, dir_a: str, dir_b: str, calibration: dict, out: str) -> None:
    """Calibrate on this rank's share of the clips, all-reduce, match, and save permutations + correlations."""
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    alignment = align(load_hubert_family(dir_a), load_hubert_family(dir_b), ("cnn", "ffn", "attn", "residual"),
                      Calibration(**calibration), seed=3, progress=False)
    tensors = {f"perm/{k}": v.contiguous() for k, v in alignment.perms.items()}
    tensors.update({f"corr/{k}": v.contiguous() for k, v in alignment.correlations.items()})
    save_file(tensors, out, metadata={"clips": str(alignment.calibration["clips_used"])})
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    rank, world, init, dir_a, dir_b, calibration, out = sys.argv[1:8]
    run(int(rank), int(world), init, dir_a, dir_b, json.loads(calibration), out)
