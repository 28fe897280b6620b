"""torchrun merges: 2 gloo ranks write the same OUT bytes as one process; entries built inside a group never shard."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from perm_helpers import scrambled_copy, write_pair

from upstream_merged.__main__ import main
from upstream_merged.permutation.merge import build
from upstream_merged.recipe import parse_recipe
from upstream_merged.testing.tiny_hubert import build_tiny_hubert

# 7 clips in batches of 2: four global batches, so the ranks get unequal shares (2 + 2 batches, 4 + 3 clips).
# float64 statistics: the float32 batch products are bitwise those of one process (same batches, same shift),
# and float64 sums of them do not depend on the order ranks add them in. (With float32 statistics the
# permutations and weights are identical too, the report's correlations agree to ~1e-7: test_perm_calibration.)
CALIBRATION = {"synthetic": {"clips": 7, "seconds": 1.0}, "batch_size": 2, "frames_per_second": 20.0, "device": "cpu",
               "statistics_dtype": "float64"}


@pytest.fixture(scope="module")
def noisy_pair(tmp_path_factory):
    """A tiny model and a scrambled, perturbed copy (correlations informative, not all 1), written as HF dirs."""
    a = build_tiny_hubert(71)
    b, _ = scrambled_copy(a, seed=72)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(73)
        for tensor in b.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.3 * tensor.std().nan_to_num() * torch.randn(tensor.shape, generator=generator))
    return write_pair(tmp_path_factory.mktemp("pair"), a, b)


def _recipe(dir_a, dir_b) -> dict:
    return {"method": "permutation", "preset": "cnn_ffn_attn_residual", "sources": {"a": str(dir_a), "b": str(dir_b)},
            "seed": 5, "calibration": CALIBRATION, "report": {"heatmap_groups": []}}


def _files(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir()) if p.is_file() and p.name != ".complete"}


def _single_thread(fn):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torchrun gives each rank OMP_NUM_THREADS=1: same kernels, same float32 bits
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


def test_two_torchrun_gloo_ranks_write_the_bytes_of_one_process(tmp_path, noisy_pair):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(*noisy_pair)))
    env = dict(os.environ, OMP_NUM_THREADS="1", UPSTREAM_MERGED_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2",
                           "-m", "upstream_merged", "merge", str(recipe), str(tmp_path / "sharded"), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote") == 1  # only rank 0 writes (and says so)
    assert _single_thread(lambda: main(["merge", str(recipe), str(tmp_path / "single"), "--quiet"])) == 0

    sharded, single = _files(tmp_path / "sharded"), _files(tmp_path / "single")
    assert sorted(sharded) == sorted(single)
    for name in single:
        assert sharded[name] == single[name], f"{name} differs between 2 ranks and one process"
    report = json.loads(single["merge_report.json"])
    assert report["calibration"]["clips_used"] == 7
    moved = [g for g in report["groups"].values() if g["moved_share"] > 0]
    assert len(moved) >= 5  # real permutations, not identities


def test_an_entry_built_inside_a_two_rank_group_is_the_single_process_build(tmp_path, noisy_pair, monkeypatch):
    recipe = _recipe(*noisy_pair)
    monkeypatch.setenv("UPSTREAM_MERGED_CACHE", str(tmp_path / "cache"))
    from perm_dist_worker import build_entry_in_group

    context = multiprocessing.get_context("fork")
    init = f"file://{tmp_path / 'rendezvous'}"
    ranks = [context.Process(target=build_entry_in_group, args=(r, 2, init, recipe, str(tmp_path / f"rank{r}.json")))
             for r in range(2)]
    for proc in ranks:
        proc.start()
    for proc in ranks:
        proc.join(timeout=180)
        assert proc.exitcode == 0, f"rank exited with {proc.exitcode}"
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert results[0]["dir"] == results[1]["dir"]  # built once (the other rank waited on the cache lock), loaded by both
    assert [r["collectives"] for r in results] == [0, 0]  # the surrounding group is never used
    reference = build(parse_recipe(recipe), tmp_path / "reference", progress=False)
    entry = _files(Path(results[0]["dir"]))
    assert entry == _files(reference)
    assert json.loads(entry["merge_report.json"])["calibration"]["clips_used"] == 7  # all clips, not 1/world
