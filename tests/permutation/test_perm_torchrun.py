"""torchrun merges on 2 gloo ranks: the bytes of one process; a failed rank ends the other within seconds.

Hub entries inside someone else's group (s3prl's DDP barrier pattern): a cache miss is an immediate
error with the pre-build command; after it, every rank loads the build.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from perm_helpers import scrambled_copy, write_pair

from upstream_merged.__main__ import main
from upstream_merged.permutation.merge import build
from upstream_merged.recipe import parse_recipe
from upstream_merged.tiny.hubert import build_tiny_hubert

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


def _start(target, args_per_rank) -> list:
    context = multiprocessing.get_context("fork")
    ranks = [context.Process(target=target, args=args) for args in args_per_rank]
    for proc in ranks:
        proc.start()
    return ranks


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_s3prl_ddp_on_a_cold_cache_stops_at_once_with_the_prebuild_command_then_loads_on_every_rank(
        tmp_path, noisy_pair, monkeypatch):
    from perm_dist_worker import s3prl_upstream_in_group

    monkeypatch.setenv("UPSTREAM_MERGED_CACHE", str(tmp_path / "cache"))
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(_recipe(*noisy_pair)))
    entry = "merged_hubert_mert_custom"

    def run(attempt: str) -> list:
        results = [tmp_path / f"{attempt}{r}.json" for r in range(2)]
        init = f"file://{tmp_path / attempt}"
        ranks = _start(s3prl_upstream_in_group, [(r, 2, init, entry, str(recipe_file), str(results[r])) for r in range(2)])
        for proc in ranks:
            proc.join(timeout=120)
        ended = time.time()
        for proc in ranks:
            if proc.is_alive():
                proc.kill()
                pytest.fail(f"{attempt}: a rank still runs after 120 s (waiting in s3prl's barrier)")
        return [proc.exitcode for proc in ranks], [json.loads(p.read_text()) if p.exists() else {} for p in results], ended

    codes, (first, second), ended = run("cold")
    assert codes[0] != 0 and "PrebuildRequired" in first["error"], first
    message = first["error"]
    assert entry in message and "rank 0 of a 2-rank torch.distributed group" in message
    assert codes[1] != 0 and "layers" not in second  # its barrier partner is gone: it ends too, it never builds
    assert ended - first["ended"] < 30, "rank 1 outlived rank 0's error by more than 30 s"
    merged = tmp_path / "cache" / "merged"
    assert not [d for d in merged.iterdir() if d.is_dir()], "something was built inside the group"

    command = next(line.strip() for line in message.splitlines() if line.strip().startswith("python -m upstream_merged merge"))
    assert "torchrun --nproc_per_node NUM_GPUS -m upstream_merged merge" in message
    argv = shlex.split(command)[3:]
    assert _single_thread(lambda: main(argv + ["--quiet"])) == 0  # the pre-build step, as the message gives it

    codes, results, _ = run("warm")
    assert codes == [0, 0], results
    assert [r["layers"] for r in results] == [results[0]["layers"]] * 2 and results[0]["layers"] > 1
    built = [d for d in merged.iterdir() if d.is_dir()]
    assert len(built) == 1 and str(built[0]) == argv[2]
    reference = build(parse_recipe(_recipe(*noisy_pair)), tmp_path / "reference", progress=False)
    assert _files(built[0]) == _files(reference)  # the pre-built entry is the merge the entry would have built


def test_a_rank_that_raises_ends_the_other_within_seconds_not_at_the_group_timeout(tmp_path, noisy_pair):
    from perm_dist_worker import sharded_merge_rank

    logs = [tmp_path / f"rank{r}.log" for r in range(2)]
    port = _free_port()
    ranks = _start(sharded_merge_rank, [(r, 2, port, _recipe(*noisy_pair), str(tmp_path / "out"), str(logs[r]))
                                       for r in range(2)])
    try:
        ranks[0].join(timeout=150)
        ended = time.time()
        assert not ranks[0].is_alive(), "rank 0 still waits for the rank that failed"
        failed = float(Path(f"{logs[1]}.failed").read_text())
        assert ended - failed < 20, f"rank 0 ended {ended - failed:.1f} s after rank 1 failed"
        assert ranks[1].is_alive()  # the failed rank never tore its group down: only the watch can have ended rank 0
        assert ranks[0].exitcode == 1
        assert "rank 1 failed: RuntimeError: rank 1 fails on purpose" in logs[0].read_text()
        assert not (tmp_path / "out").exists()
    finally:
        for proc in ranks:
            proc.kill()


def test_a_rank_that_stops_beating_ends_the_others(tmp_path):
    from perm_dist_worker import watched_rank

    logs = [tmp_path / f"rank{r}.log" for r in range(2)]
    ranks = _start(watched_rank, [(r, 2, str(tmp_path / "store"), 2.0, str(logs[r])) for r in range(2)])
    try:
        time.sleep(1.0)  # both beat
        os.kill(ranks[1].pid, signal.SIGSTOP)  # frozen, as a hung or swapped-out rank: alive, silent
        stopped = time.time()
        ranks[0].join(timeout=30)
        assert not ranks[0].is_alive() and ranks[0].exitcode == 1
        assert time.time() - stopped < 20
        assert "rank 1 sent no heartbeat for 2 s" in logs[0].read_text()
    finally:
        for proc in ranks:
            proc.kill()
