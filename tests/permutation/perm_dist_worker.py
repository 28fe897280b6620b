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


def s3prl_upstream_in_group(rank: int, world: int, init: str, entry: str, recipe_file: str, result: str) -> None:
    """Construct hub entry ``entry`` (-g ``recipe_file``) exactly as s3prl 0.4.18's runner does, in a gloo group.

    ``s3prl/downstream/runner.py``, ``Runner._get_upstream``: ranks > 0 wait in a barrier while rank 0
    constructs the upstream, then construct it themselves (with refresh off) once rank 0 reaches its
    own barrier. Any build here (a hub cache miss) would happen inside that window, so the worker makes
    building fail loudly: a cache hit must load on every rank without building.
    """
    import os
    import time

    import s3prl.hub as hub

    import upstream_merged.hub.common as common

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    common.build_atomically = lambda *args, **kwargs: (_ for _ in ()).throw(AssertionError("built inside the group"))
    Upstream = getattr(hub, entry)
    outcome = {"rank": rank, "pid": os.getpid()}
    try:
        upstream_refresh = False
        if dist.is_initialized() and dist.get_rank() > 0:
            torch.distributed.barrier()
            upstream_refresh = False
        model = Upstream(ckpt=None, model_config=recipe_file, refresh=upstream_refresh).to("cpu")
        if dist.is_initialized() and dist.get_rank() == 0:
            torch.distributed.barrier()
        with torch.inference_mode():
            outcome["layers"] = len(model([torch.zeros(1600)])["hidden_states"])
    except BaseException as err:
        outcome.update(error=f"{type(err).__name__}: {err}", ended=time.time())
        with open(result, "w") as handle:
            json.dump(outcome, handle)
        raise
    with open(result, "w") as handle:
        json.dump(outcome, handle)
    dist.destroy_process_group()


def sharded_merge_rank(rank: int, world: int, port: int, recipe: dict, out: str, log: str) -> None:
    """One rank of a torchrun-style merge (env:// rendezvous); rank 1 raises in its calibration and then, as an
    NCCL rank looks to its peers (gloo would wake them when its sockets close), stays alive without a teardown."""
    import logging
    import os
    import time

    import upstream_merged.permutation.merge as merge
    from upstream_merged.permutation.distributed import sharded_merge
    from upstream_merged.recipe import parse_recipe

    torch.set_num_threads(1)
    logging.basicConfig(filename=log, level=logging.INFO, force=True)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if rank == 1:
        def fail(*args, **kwargs):
            with open(log + ".failed", "w") as handle:
                handle.write(str(time.time()))
            raise RuntimeError(f"rank {rank} fails on purpose")

        merge.calibrate_shard = fail
        dist.destroy_process_group = lambda *args, **kwargs: None
        try:
            sharded_merge(parse_recipe(recipe), out, progress=False)
        finally:
            time.sleep(120)
    sharded_merge(parse_recipe(recipe), out, progress=False)


def watched_rank(rank: int, world: int, store_path: str, stale_seconds: float, log: str) -> None:
    """A RankWatch on a FileStore around 60 s of idle work; ends by the watch when a peer stops beating."""
    import logging
    import time

    from upstream_merged.permutation.rank_watch import RankWatch

    logging.basicConfig(filename=log, level=logging.INFO, force=True)
    with RankWatch(dist.FileStore(store_path, world), rank, world, beat_seconds=0.2, stale_seconds=stale_seconds,
                   poll_seconds=0.1):
        time.sleep(60)


if __name__ == "__main__":
    rank, world, init, dir_a, dir_b, calibration, out = sys.argv[1:8]
    run(int(rank), int(world), init, dir_a, dir_b, json.loads(calibration), out)
