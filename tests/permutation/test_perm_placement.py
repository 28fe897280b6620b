"""Device choice and the batch-seconds default as pure decisions (no GPU here: CUDA facts are passed in)."""
from __future__ import annotations

import pytest
import torch

from upstream_merged.permutation.audio import CalibrationError
from upstream_merged.permutation.placement import (CPU_BATCH_SECONDS, LaunchPlace, auto_batch_seconds, choose_device,
                                                   launch_place, resolve_batch_seconds)
from upstream_merged.permutation.recipe import Calibration

GIB = 2 ** 30
TORCHRUN_4 = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}


def test_launch_place_reads_torchrun_variables_and_defaults_outside_it():
    assert launch_place(TORCHRUN_4) == LaunchPlace(rank=5, world=8, local_rank=1, local_world=4)
    assert launch_place({}) == LaunchPlace(rank=0, world=1, local_rank=None, local_world=1)
    assert launch_place({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}).local_world == 2  # older launchers


@pytest.mark.parametrize("name", ["auto", "cuda", None])
def test_every_torchrun_rank_takes_its_local_rank_gpu(name):
    for local in range(4):
        place = launch_place(dict(TORCHRUN_4, LOCAL_RANK=str(local)))
        assert choose_device(name, True, 4, current=0, place=place) == torch.device("cuda", local)


def test_outside_torchrun_cuda_is_the_current_device_and_cuda_n_is_kept():
    assert choose_device("cuda", True, 4, current=2) == torch.device("cuda", 2)
    assert choose_device("auto", True, 4, current=3) == torch.device("cuda", 3)
    assert choose_device("cuda:1", True, 4) == torch.device("cuda", 1)
    assert choose_device("auto", False, 0) == torch.device("cpu")


def test_a_fixed_gpu_for_several_torchrun_ranks_is_refused_with_the_fix():
    place = launch_place(TORCHRUN_4)
    with pytest.raises(CalibrationError, match=r"'cuda:0' under torchrun with 4 ranks.*--device cuda.*CUDA_VISIBLE_DEVICES"):
        choose_device("cuda:0", True, 4, place=place)
    assert choose_device("cuda:1", True, 4, place=place) == torch.device("cuda", 1)  # its own GPU, said explicitly
    one_per_node = LaunchPlace(rank=1, world=2, local_rank=0, local_world=1)
    assert choose_device("cuda:3", True, 4, place=one_per_node) == torch.device("cuda", 3)
    assert choose_device("cpu", True, 4, place=place) == torch.device("cpu")  # told otherwise


def test_more_ranks_than_gpus_and_missing_cuda_name_the_problem():
    with pytest.raises(CalibrationError, match=r"cuda:3.*only 2 CUDA device.*at most as many ranks per node"):
        choose_device("cuda", True, 2, place=LaunchPlace(rank=3, world=4, local_rank=3, local_world=4))
    with pytest.raises(CalibrationError, match="'cuda' was asked for but CUDA is not available"):
        choose_device("cuda", False, 0)
    with pytest.raises(CalibrationError, match="unknown device 'gpu'"):
        choose_device("gpu", True, 1)


def test_auto_batch_seconds_is_five_on_the_cpu_and_grows_with_gpu_memory():
    assert auto_batch_seconds("cpu") == CPU_BATCH_SECONDS == 5.0
    assert auto_batch_seconds("cpu", 80 * GIB) == 5.0  # host memory does not scale it
    assert auto_batch_seconds("cuda", 16 * GIB) == 64.0  # six 10 s clips per forward
    assert auto_batch_seconds("cuda", 80 * GIB) == 320.0
    assert auto_batch_seconds("cuda", 1 * GIB) == 5.0  # never below the CPU value
    sizes = [auto_batch_seconds("cuda", g * GIB) for g in (8, 12, 16, 24, 40, 80)]
    assert sizes == sorted(sizes) and sizes[0] > 10.0  # an 8 GB card already batches several 10 s clips


def test_the_recipe_default_is_auto_and_resolves_to_five_seconds_on_the_cpu():
    calibration = Calibration(synthetic={})
    assert calibration.max_batch_seconds == "auto"
    assert resolve_batch_seconds(calibration.max_batch_seconds, torch.device("cpu")) == 5.0
    assert resolve_batch_seconds(10.0, torch.device("cpu")) == 10.0  # a pinned value is kept on every device
    assert resolve_batch_seconds(None, torch.device("cpu")) is None  # whole batches
    with pytest.raises(ValueError, match="max_batch_seconds"):
        Calibration(synthetic={}, max_batch_seconds="big")
