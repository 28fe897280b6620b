"""Aligning several upstreams' hidden states: frame rate, layer count, width; then merging them.

Frames: linear interpolation over time onto one grid (``round(samples / rate)`` frames, the count
s3prl's Featurizer expects; :mod:`upstream_merged.core.frames`).
Layers: linear interpolation over the layer axis onto the largest depth L, first and last layer
kept in place (align_corners=True). Widths: one learned Linear per upstream whose width differs,
shared by its layers. Merges: ``add`` (HConv's unified model), ``concat`` (concatenate widths,
then one Linear back to the common width: CHConv), ``stack`` (keep every layer of every upstream
as its own source: GumD, or a per-model weighted sum).
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from upstream_merged.core.frames import align_frames
from upstream_merged.fusion.spec import Merge


class FusionInputError(ValueError):
    """Hidden states given to the fusion interface do not match what it was built for."""


def layer_interpolation(source: int, target: int) -> torch.Tensor:
    """(target, source) matrix of linear interpolation over the layer axis, end layers mapped onto end layers."""
    if source < 1 or target < 1:
        raise ValueError(f"layer counts must be positive, got source={source}, target={target}")
    matrix = torch.zeros(target, source)
    if source == 1:
        matrix[:, 0] = 1.0
        return matrix
    if target == 1:  # a single target layer: the output layer
        matrix[0, -1] = 1.0
        return matrix
    for row in range(target):
        position = row * (source - 1) / (target - 1)
        left = min(int(position), source - 2)
        weight = position - left
        matrix[row, left] += 1.0 - weight
        matrix[row, left + 1] += weight
    return matrix


class LayerAligner(nn.Module):
    """Per-upstream hidden states -> one (B, L', T, D) stack of aligned (and merged) layers."""

    def __init__(self, widths: Mapping[str, int], depths: Mapping[str, int], merge: Merge,
                 width: Optional[int] = None, layers: Optional[int] = None):
        super().__init__()
        if set(widths) != set(depths) or not widths:
            raise ValueError("widths and depths must name the same, non-empty set of upstreams")
        if merge not in ("add", "concat", "stack"):
            raise ValueError(f"merge must be add, concat or stack, got {merge!r}")
        self.roles: List[str] = list(widths)
        self.widths, self.depths, self.merge = dict(widths), dict(depths), merge
        self.width = int(width or max(widths.values()))
        self.num_layers = int(layers or max(depths.values()))
        if merge == "concat":
            self.concat_projection = nn.Linear(sum(widths.values()), self.width)
        else:
            self.projections = nn.ModuleDict(
                {role: nn.Linear(w, self.width) for role, w in widths.items() if w != self.width})
        for role, depth in depths.items():
            if merge != "stack" and depth != self.num_layers:
                self.register_buffer(f"layer_matrix_{role}", layer_interpolation(depth, self.num_layers), persistent=False)

    @property
    def out_layers(self) -> int:
        """Layers in the aligned stack (sum of depths for stack, else the common depth)."""
        return sum(self.depths.values()) if self.merge == "stack" else self.num_layers

    def _check(self, role: str, states: Sequence[torch.Tensor]) -> None:
        if len(states) != self.depths[role]:
            raise FusionInputError(f"upstream {role!r}: expected {self.depths[role]} hidden states, got {len(states)}")
        width = states[0].shape[-1]
        if width != self.widths[role] or any(s.shape != states[0].shape for s in states):
            shapes = sorted({tuple(s.shape) for s in states})
            raise FusionInputError(f"upstream {role!r}: expected (B, T, {self.widths[role]}) hidden states, got {shapes}")

    def _to_depth(self, role: str, x: torch.Tensor) -> torch.Tensor:
        if self.depths[role] == self.num_layers:
            return x
        return torch.einsum("ls,bstd->bltd", getattr(self, f"layer_matrix_{role}").to(x.dtype), x)

    def _project(self, role: str, x: torch.Tensor) -> torch.Tensor:
        """The role's share of the width projection (for concat: its column block of the shared Linear, no bias)."""
        if self.merge == "concat":
            start = sum(self.widths[r] for r in self.roles[: self.roles.index(role)])
            block = self.concat_projection.weight[:, start:start + self.widths[role]]
            return torch.nn.functional.linear(x, block)
        return self.projections[role](x) if role in self.projections else x

    def forward(self, hidden: Dict[str, Sequence[torch.Tensor]], frames: int) -> torch.Tensor:
        """Hidden states by upstream role (each a list of (B, T_m, D_m)) -> (B, out_layers, frames, width).

        Every step is linear, so the order is chosen for speed: project and interpolate layers first,
        sum upstreams that share a frame count, then interpolate time once per frame count.
        (concat + Linear equals the sum of each upstream's column block of the Linear, plus its bias.)
        """
        missing = set(self.roles) - set(hidden)
        if missing:
            raise FusionInputError(f"no hidden states for upstream(s) {sorted(missing)}; got {sorted(hidden)}")
        batch = {hidden[role][0].shape[0] for role in self.roles}
        if len(batch) != 1:
            raise FusionInputError(f"upstreams disagree on the batch size: {sorted(batch)}")
        for role in self.roles:
            self._check(role, hidden[role])
        if self.merge == "stack":
            parts = [align_frames(self._project(role, torch.stack(list(hidden[role]), dim=1)), frames)
                     for role in self.roles]
            return torch.cat(parts, dim=1)
        by_frames: Dict[int, torch.Tensor] = {}
        for role in self.roles:
            x = self._to_depth(role, self._project(role, torch.stack(list(hidden[role]), dim=1)))  # (B, L, T_m, D)
            length = x.shape[2]
            by_frames[length] = x if length not in by_frames else by_frames[length] + x
        groups = [align_frames(x, frames) for x in by_frames.values()]
        out = groups[0] if len(groups) == 1 else torch.stack(groups).sum(dim=0)
        return out + self.concat_projection.bias if self.merge == "concat" else out
