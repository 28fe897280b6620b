"""Interfaces from a stack of aligned layers (B, L, T, D) to one feature per frame.

HConv follows Shih & Harwath, "Interface Design for Self-Supervised Speech Models" (Interspeech
2024): Conv1d over the layer axis with the feature dim as channels, kernel 5, stride 3, padding 2,
ReLU after every conv, no normalisation inside (an optional parameter-free layer norm of each
layer first), floor(log L / log 3) convs, all D -> D except the last (D -> floor(D / L_final)),
then channels x remaining layers flattened. GumD lets every feature dimension pick its source
layer through a Gumbel-softmax, then projects.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F
from torch import nn

from upstream_merged.fusion.align import FusionInputError

KERNEL, STRIDE, PADDING = 5, 3, 2


def hconv_depths(num_layers: int) -> List[int]:
    """Layer counts before and after each HConv conv, e.g. 13 -> [13, 5, 2]."""
    convs, power = 0, STRIDE
    while power <= num_layers:  # floor(log L / log 3) without floating-point error at exact powers
        convs, power = convs + 1, power * STRIDE
    depths = [num_layers]
    for _ in range(convs):
        depths.append((depths[-1] + 2 * PADDING - KERNEL) // STRIDE + 1)
    return depths


def _check_stack(x: torch.Tensor, layers: int, width: int, who: str) -> None:
    if x.dim() != 4 or x.shape[1] != layers or x.shape[3] != width:
        raise FusionInputError(f"{who} expects (B, {layers} layers, T, {width}), got {tuple(x.shape)}")


class HConv(nn.Module):
    """Hierarchical convolution over the layer axis: (B, L, T, D) -> (B, T, output_dim)."""

    def __init__(self, num_layers: int, width: int, layer_norm: bool = False):
        super().__init__()
        self.num_layers, self.width, self.layer_norm = int(num_layers), int(width), bool(layer_norm)
        depths = hconv_depths(self.num_layers)
        final = depths[-1]
        channels = [width] * (len(depths) - 1) + [width // final if len(depths) > 1 else width]
        if channels[-1] < 1:
            raise ValueError(f"HConv: width {width} is smaller than the final layer count {final}")
        self.convs = nn.ModuleList(
            nn.Conv1d(channels[i], channels[i + 1], KERNEL, stride=STRIDE, padding=PADDING)
            for i in range(len(depths) - 1)
        )
        self.output_dim = channels[-1] * final

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_stack(x, self.num_layers, self.width, "HConv")
        batch, layers, frames, width = x.shape
        if self.layer_norm:
            x = F.layer_norm(x, (width,))
        h = x.transpose(1, 2).reshape(batch * frames, layers, width)  # (B*T, L, D): one layer sequence per frame
        for conv in self.convs:
            h = F.relu(_conv_over_layers(h, conv))
        return h.transpose(1, 2).reshape(batch, frames, self.output_dim)  # channels x remaining layers, flattened


def _conv_over_layers(h: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """``conv`` along the layer axis of (N, L, C_in) -> (N, L_out, C_out), skipping the zero-padding taps.

    Equal to ``conv(h.transpose(1, 2)).transpose(1, 2)``; with L this short, about a fifth of the
    kernel taps fall on padding, so each output position is one matmul over its real taps only.
    """
    rows, layers, channels = h.shape
    weight = conv.weight.permute(0, 2, 1)  # (C_out, K, C_in)
    outputs = []
    for start in range(-PADDING, layers + PADDING - KERNEL + 1, STRIDE):
        first, last = max(start, 0), min(start + KERNEL, layers)
        taps = weight[:, first - start:last - start].reshape(weight.shape[0], -1)  # (C_out, k * C_in)
        outputs.append(F.linear(h[:, first:last].reshape(rows, -1), taps, conv.bias))
    return torch.stack(outputs, dim=1)


class GumbelDimensionSelect(nn.Module):
    """GumD: each feature dimension picks one source layer via Gumbel-softmax, then a Linear.

    Training samples a straight-through (hard) or soft selection per step; eval mode uses the
    argmax of the logits, so evaluation is deterministic.
    """

    def __init__(self, num_sources: int, width: int, output_dim: int, tau: float = 1.0, hard: bool = True):
        super().__init__()
        self.num_sources, self.width, self.tau, self.hard = int(num_sources), int(width), float(tau), bool(hard)
        # Small random logits: the initial eval-mode choice is spread over sources, not all on the first.
        self.logits = nn.Parameter(0.01 * torch.randn(self.width, self.num_sources))
        self.projection = nn.Linear(self.width, int(output_dim))
        self.output_dim = int(output_dim)

    def selection(self) -> torch.Tensor:
        """(D, S) weights of each source per dimension: a Gumbel-softmax sample in training, one-hot argmax in eval."""
        if self.training:
            return F.gumbel_softmax(self.logits, tau=self.tau, hard=self.hard, dim=-1)
        return F.one_hot(self.logits.argmax(dim=-1), self.num_sources).to(self.logits.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_stack(x, self.num_sources, self.width, "GumD")
        selected = torch.einsum("bstd,ds->btd", x, self.selection().to(x.dtype))
        return self.projection(selected)
