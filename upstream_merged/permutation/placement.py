"""Where a calibration pass runs and how much audio one forward takes there: pure decisions, testable without a GPU.

- :func:`choose_device`: a device name (auto, cpu, cuda, cuda:N) to a torch device, given what CUDA
  offers; under torchrun with several ranks on a node every rank takes ``cuda:LOCAL_RANK`` (a fixed
  ``cuda:N`` would put them all on one GPU, which NCCL refuses, so it is an error naming the fix).
- :func:`auto_batch_seconds`: ``calibration.max_batch_seconds: auto``, the padded audio per forward:
  5 s on the CPU (the measured sweet spot for peak RSS), a quarter of a GPU's memory at a conservative
  activation cost per second of audio on CUDA (several 10 s clips per forward instead of one).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Mapping, Optional, Union

import torch

from upstream_merged.permutation.audio import CalibrationError

logger = logging.getLogger(__name__)

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
AUTO = "auto"
CPU_BATCH_SECONDS = 5.0  # forwards of <= 5 s keep the CPU merge's peak RSS flat (docs/permutation_merge.md)
# Activation memory of one calibration forward per second of padded audio, with margin: measured on the CPU
# (tools/bench_activation_memory.py: peak RSS growth of one whole forward, inference mode) at 15.6 MiB/s for
# HuBERT Base at 16 kHz and 29.8-31.3 MiB/s for the HuBERT Large layout at 24 kHz (MERT-v1-330M's rate);
# about x2 on that for the CUDA caching allocator, cuDNN workspaces and fragmentation (not measured: no GPU here).
ACTIVATION_BYTES_PER_SECOND = 64 * 2 ** 20
GPU_ACTIVATION_SHARE = 0.25  # of the device's memory; both models and the accumulators (~5 GB for the large pair) use the rest


@dataclass(frozen=True)
class LaunchPlace:
    """This process's place in a torchrun launch (one process outside torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: Optional[int] = None  # None outside torchrun
    local_world: int = 1


def launch_place(env: Optional[Mapping[str, str]] = None) -> LaunchPlace:
    """RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE as torchrun sets them (defaults outside it)."""
    env = os.environ if env is None else env
    local = env.get("LOCAL_RANK")
    world = int(env.get("WORLD_SIZE", "1"))
    return LaunchPlace(rank=int(env.get("RANK", "0")), world=world, local_rank=None if local is None else int(local),
                       local_world=int(env.get("LOCAL_WORLD_SIZE", str(world))))


def choose_device(name: Optional[str], cuda_available: bool, device_count: int, current: int = 0,
                  place: LaunchPlace = LaunchPlace()) -> torch.device:
    """The torch device ``name`` means here ('auto': CUDA when available); under torchrun: this rank's GPU."""
    name = (name or AUTO).strip().lower()
    if name == AUTO:
        name = "cuda" if cuda_available else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and not name.startswith("cuda:"):
        raise CalibrationError(f"unknown device {name!r}: use {DEVICE_CHOICES}")
    if not cuda_available:
        raise CalibrationError(f"device {name!r} was asked for but CUDA is not available here; "
                               "use --device cpu (or calibration.device: cpu / auto)")
    if ":" in name:
        index = int(name.split(":", 1)[1])
        if place.local_rank is not None and place.local_world > 1 and index != place.local_rank:
            raise CalibrationError(
                f"device {name!r} under torchrun with {place.local_world} ranks on this node would put every rank on "
                f"GPU {index} (NCCL refuses two ranks on one GPU); use --device cuda (or auto): rank with LOCAL_RANK r "
                "calibrates on cuda:r. Choose the GPUs with CUDA_VISIBLE_DEVICES, or calibrate on the CPU with --device cpu"
            )
    else:  # plain "cuda": this rank's GPU under torchrun, else the current device (a DDP process has set its own)
        index = place.local_rank if place.local_rank is not None else current
    if index >= device_count:
        raise CalibrationError(f"device {name!r} (cuda:{index}): only {device_count} CUDA device(s) are visible"
                               + ("; under torchrun run at most as many ranks per node as GPUs"
                                  if place.local_rank is not None else ""))
    return torch.device("cuda", index)


def resolve_device(name: Optional[str], place: Optional[LaunchPlace] = None) -> torch.device:
    """:func:`choose_device` with this machine's CUDA devices (``place``: this process's torchrun place, None: none)."""
    available = torch.cuda.is_available()
    return choose_device(name, available, torch.cuda.device_count() if available else 0,
                         current=torch.cuda.current_device() if available else 0, place=place or LaunchPlace())


def auto_batch_seconds(device_type: str, total_memory: Optional[int] = None) -> float:
    """``max_batch_seconds: auto`` on a device: 5 s on the CPU; on CUDA a quarter of ``total_memory`` (bytes) of activations."""
    if device_type != "cuda" or not total_memory:
        return CPU_BATCH_SECONDS
    return max(CPU_BATCH_SECONDS, float(int(total_memory * GPU_ACTIVATION_SHARE // ACTIVATION_BYTES_PER_SECOND)))


def resolve_batch_seconds(setting: Union[float, str, None], device: torch.device) -> Optional[float]:
    """The padded audio per forward that ``calibration.max_batch_seconds`` means on ``device`` (None: whole batches)."""
    if setting != AUTO:
        return setting
    device = torch.device(device)
    memory = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else None
    seconds = auto_batch_seconds(device.type, memory)
    logger.info("calibration.max_batch_seconds: auto = %g s of padded audio per forward on %s", seconds, device)
    return seconds
