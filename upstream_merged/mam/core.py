"""The MAM merge itself: ``W = (1-λ)·W_target + λ·W_source`` on attention projections, per layer.

Everything here is plain data: which target layer takes which source layer with which λ (a
:class:`MergePlan`), which tensor pairs that implies, and the merged state dict.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from upstream_merged.core.interpolate import interpolate_state_dicts
from upstream_merged.mam.layouts import QKV, AttentionLayout

LambdaSpec = Union[float, Sequence[float]]


class MAMError(ValueError):
    """Target and source cannot be merged as asked; the message names the parameter."""


@dataclass(frozen=True)
class Dims:
    """Width, head count and layer count of an attention encoder."""

    width: int
    heads: int
    layers: int


@dataclass(frozen=True)
class LayerMerge:
    """Target layer ``target`` takes source layer ``source`` with weight ``lam``."""

    target: int
    source: int
    lam: float


@dataclass(frozen=True)
class MergePlan:
    """Per-layer merges plus the projection roles touched (q/k/v, optionally out)."""

    layers: Tuple[LayerMerge, ...]
    roles: Tuple[str, ...]

    def lambdas(self, num_layers: int) -> List[float]:
        """λ of every target layer (0.0 where the layer is not merged)."""
        values = [0.0] * num_layers
        for item in self.layers:
            values[item.target] = item.lam
        return values


def check_dims(target: Dims, source: Dims, target_layout: AttentionLayout, source_layout: AttentionLayout,
               layer_map: Optional[Mapping[int, int]] = None) -> None:
    """Raise :class:`MAMError` naming the config parameter when width, heads or depth differ."""
    checks = (
        ("width", target.width, source.width, target_layout.width_key, source_layout.width_key),
        ("attention head count", target.heads, source.heads, target_layout.heads_key, source_layout.heads_key),
    )
    for what, t, s, t_key, s_key in checks:
        if t != s:
            raise MAMError(f"{what} mismatch: target {t_key}={t} ({target_layout.arch}) but source {s_key}={s} "
                           f"({source_layout.arch}); MAM needs equal {what}s — pick a source of the target's size")
    if target.layers != source.layers and not layer_map:
        raise MAMError(
            f"layer count mismatch: target {target_layout.layers_key}={target.layers} ({target_layout.arch}) but source "
            f"{source_layout.layers_key}={source.layers} ({source_layout.arch}); give an explicit `layer_map` "
            f"(target layer -> source layer) in the recipe"
        )


def resolve_plan(target_layers: int, source_layers: int, lam: LambdaSpec, layers: Optional[Sequence[int]] = None,
                 layer_map: Optional[Mapping[int, int]] = None, include_out_proj: bool = False) -> MergePlan:
    """Turn recipe values (λ float or list, layer subset, layer map) into a validated :class:`MergePlan`."""
    if layers is None:
        layers = sorted(layer_map) if layer_map else list(range(target_layers))
    layers = list(layers)
    if len(set(layers)) != len(layers):
        raise MAMError(f"`layers` lists a layer twice: {layers}")
    for layer in layers:
        if not 0 <= layer < target_layers:
            raise MAMError(f"`layers` entry {layer} is out of range: the target has {target_layers} layers (0..{target_layers - 1})")
    if isinstance(lam, (int, float)):
        values = [float(lam)] * len(layers)
    else:
        values = [float(v) for v in lam]
        if len(values) != len(layers):
            raise MAMError(f"`lambda` has {len(values)} values but {len(layers)} layers are merged "
                           f"({'`layers`' if layers != list(range(target_layers)) else 'every target layer'}); give one per layer")
    for index, value in enumerate(values):
        if not 0.0 <= value <= 1.0:
            raise MAMError(f"`lambda` value {value} (layer {layers[index]}) is outside [0, 1]")
    merges = []
    for layer, value in zip(layers, values):
        if layer_map:
            if layer not in layer_map:
                raise MAMError(f"`layer_map` has no entry for merged target layer {layer}")
            source = int(layer_map[layer])
        else:
            source = layer
        if not 0 <= source < source_layers:
            raise MAMError(f"`layer_map` sends target layer {layer} to source layer {source}, but the source has "
                           f"{source_layers} layers (0..{source_layers - 1})")
        merges.append(LayerMerge(layer, source, value))
    roles = QKV + (("out",) if include_out_proj else ())
    return MergePlan(tuple(merges), roles)


def tensor_pairs(plan: MergePlan, target_layout: AttentionLayout,
                 source_layout: AttentionLayout) -> Dict[str, Tuple[str, float]]:
    """target tensor name -> (source tensor name, λ) for every weight and bias the plan merges."""
    pairs = {}
    for item in plan.layers:
        for role in plan.roles:
            for t_name, s_name in zip(target_layout.tensor_names(role, item.target),
                                      source_layout.tensor_names(role, item.source)):
                pairs[t_name] = (s_name, item.lam)
    return pairs


def check_pairs(pairs: Mapping[str, Tuple[str, float]], target: Mapping[str, torch.Tensor],
                source: Mapping[str, torch.Tensor]) -> None:
    """Every paired tensor exists on both sides with the same shape; errors name the tensor."""
    for t_name, (s_name, _) in pairs.items():
        if t_name not in target:
            raise MAMError(f"target has no tensor {t_name!r} (is the target architecture right?)")
        if s_name not in source:
            raise MAMError(f"source has no tensor {s_name!r} (is the source architecture right?)")
        if tuple(target[t_name].shape) != tuple(source[s_name].shape):
            raise MAMError(f"shape mismatch: target {t_name} {tuple(target[t_name].shape)} vs source {s_name} "
                           f"{tuple(source[s_name].shape)}")


def merge_states(target: Mapping[str, torch.Tensor], source: Mapping[str, torch.Tensor], plan: MergePlan,
                 target_layout: AttentionLayout, source_layout: AttentionLayout) -> Dict[str, torch.Tensor]:
    """The target state dict with its planned projections replaced by ``(1-λ)·target + λ·source``."""
    pairs = tensor_pairs(plan, target_layout, source_layout)
    check_pairs(pairs, target, source)
    aligned = {t_name: source[s_name] for t_name, (s_name, _) in pairs.items()}
    weight_target = {t_name: 1.0 - lam for t_name, (_, lam) in pairs.items()}
    return interpolate_state_dicts(dict(target), aligned, weight_target.get, keys=list(pairs))


def relative_change(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor],
                    names: Sequence[str]) -> float:
    """‖after - before‖ / ‖before‖ over ``names`` (for the merge report)."""
    num = sum(float((after[n].double() - before[n].double()).pow(2).sum()) for n in names)
    den = sum(float(before[n].double().pow(2).sum()) for n in names)
    return (num / den) ** 0.5 if den > 0 else 0.0
