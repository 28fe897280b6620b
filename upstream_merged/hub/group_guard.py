"""A hub entry never builds a merge inside someone else's multi-rank process group (s3prl's DDP training).

s3prl 0.4.18's runner (``downstream/runner.py``, ``_get_upstream``) puts ranks > 0 in
``torch.distributed.barrier()`` while rank 0 constructs the upstream, then lets them construct it
after rank 0 passes its own barrier. That group has the collective timeout s3prl gives it (torch's
default: 10 minutes for NCCL), and a paper-scale merge takes 25-60 minutes, so a build on rank 0
would get the waiting ranks killed. Inside an initialised group of more than one rank, a cache miss
(or ``-r``) is therefore an immediate error naming the entry and the one-line command that
pre-builds exactly the cache directory the entry reads; a cache hit loads on every rank.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from upstream_merged.core.atomic import write_text_atomically
from upstream_merged.recipe import RecipeBase, recipe_yaml

NCCL_DEFAULT_TIMEOUT_MINUTES = 10


class PrebuildRequired(RuntimeError):
    """A merge would be built inside a multi-rank process group; the message gives the command that pre-builds it."""


def process_group_place() -> tuple[int, int]:
    """(rank, world size) in the initialised default torch.distributed group; (0, 1) when there is none."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def prebuild_recipe_file(recipe: RecipeBase, target: Path) -> Path:
    """Write ``recipe`` beside the cache dir ``target`` (atomically) for the pre-build command and return its path."""
    path = target.parent / f"{target.name}.recipe.yaml"
    return write_text_atomically(path, recipe_yaml(recipe))


def prebuild_commands(recipe: RecipeBase, recipe_file: Path, target: Path) -> list[str]:
    """The command lines that build ``recipe_file`` into ``target`` (torchrun too for a permutation merge)."""
    force = " --force" if target.exists() else ""  # an unfinished dir left in place by an interrupted build
    args = f"{shlex.quote(str(recipe_file))} {shlex.quote(str(target))}{force}"
    commands = [f"python -m upstream_merged merge {args}"]
    if recipe.method == "permutation":
        commands.append(f"torchrun --nproc_per_node NUM_GPUS -m upstream_merged merge {args}")
    return commands


def refuse_build_in_process_group(entry: str, recipe: RecipeBase, target: Path, refresh: bool) -> None:
    """Raise :class:`PrebuildRequired` when this process is in a multi-rank group (nothing happens outside one)."""
    rank, world = process_group_place()
    if world <= 1:
        return
    target = Path(target)
    commands = prebuild_commands(recipe, prebuild_recipe_file(recipe, target), target)
    what = f"-r (refresh) asks to rebuild {target}" if refresh else f"its {recipe.method} merge is not in the cache ({target})"
    raise PrebuildRequired(
        f"{entry}: {what}, and this process is rank {rank} of a {world}-rank torch.distributed group "
        "(s3prl's multi-GPU training). A hub entry does not build inside someone else's process group: a merge of the "
        f"published models takes 25-60 minutes, the other ranks wait in s3prl's barrier, and the group's timeout "
        f"(NCCL: {NCCL_DEFAULT_TIMEOUT_MINUTES} minutes by default) would kill them. Pre-build it once before training "
        "(once the directory exists, every rank loads it), then start the training again:\n  "
        + "\n  ".join(commands)
        + ("\n(torchrun shards the calibration over NUM_GPUS GPUs.)" if len(commands) > 1 else "")
        + "\nOn several nodes, pre-build on each node or put UPSTREAM_MERGED_CACHE on a shared filesystem."
    )
