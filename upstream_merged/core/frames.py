"""Frame arithmetic shared by upstreams, calibration and fusion: CNN frame counts, receptive fields, time resampling.

A wav2vec2-style CNN (kernels, strides, no padding) turns ``length`` samples into
``conv_output_length`` frames and needs ``receptive_field`` samples for its first frame. Frames of
models on different grids are brought onto one grid by linear interpolation over time with
F.interpolate's half-pixel (align_corners=False) coordinates; s3prl's Featurizer expects
``round(samples / rate)`` frames (:func:`target_frames`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F


def conv_output_length(length: int, kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Frames a stride/kernel CNN stack without padding produces for ``length`` samples."""
    for kernel, stride in zip(kernels, strides):
        length = max((length - kernel) // stride + 1, 0)
    return length


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Samples needed for one output frame of the CNN stack."""
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * jump
        jump *= stride
    return field


def target_frames(num_samples: int, rate: int) -> int:
    """Frames on the common grid for ``num_samples`` 16 kHz samples (s3prl's round(len / rate), at least 1)."""
    return max(1, round(num_samples / rate))


def interpolate_frames(features: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Linearly resample (B, T, D) features along time to (B, num_frames, D)."""
    if features.shape[1] == num_frames:
        return features
    return F.interpolate(features.transpose(1, 2), size=num_frames, mode="linear", align_corners=False).transpose(1, 2)


def frame_interpolation(source: int, target: int, device: Optional[torch.device] = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left index, right index and right weight of linear interpolation from ``source`` to ``target`` frames (on ``device``)."""
    position = (torch.arange(target, dtype=torch.float64, device=device) + 0.5) * (source / target) - 0.5
    position = position.clamp(min=0.0, max=source - 1)
    left = position.floor().long()
    right = (left + 1).clamp(max=source - 1)
    return left, right, (position - left).float()


def align_frames(layers: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, L, T, D) -> (B, L, frames, D) by linear interpolation over time (identity when T == frames)."""
    source = layers.shape[2]
    if source == frames:
        return layers
    left, right, weight = frame_interpolation(source, frames, device=layers.device)  # built where the layers are
    weight = weight.to(layers.dtype)[:, None]  # (frames, 1)
    lo, hi = layers[:, :, left], layers[:, :, right]
    return torch.lerp(lo, hi, weight)
