"""Generic operations on permutations described by a :class:`PermutationSpec`: check, apply, invert, compose.

Convention: ``new[i] = old[perm[i]]`` along every axis mapped to the group, so applying ``perm`` to
model B makes B's unit ``perm[i]`` the new unit ``i`` (the one matched to model A's unit ``i``).
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional

import torch

from upstream_merged.permutation.spec import PermutationSpec, SpecError

Permutations = Dict[str, torch.Tensor]


def identity(size: int) -> torch.Tensor:
    """The identity permutation of ``size`` units."""
    return torch.arange(size, dtype=torch.long)


def invert(perm: torch.Tensor) -> torch.Tensor:
    """The inverse permutation: applying ``perm`` then ``invert(perm)`` restores the original order."""
    return torch.argsort(perm)


def compose(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The single permutation equal to applying ``first`` and then ``second``."""
    return first[second]


def block_map(perm: torch.Tensor, block: int) -> torch.Tensor:
    """The block permutation a block-structured ``perm`` induces (new block b = old block result[b])."""
    return perm.view(-1, block)[:, 0] // block


def check_permutation(spec: PermutationSpec, name: str, perm: torch.Tensor) -> None:
    """Raise unless ``perm`` is a valid permutation of group ``name`` (size, bijection, block structure)."""
    if name not in spec.groups:
        raise SpecError(f"unknown permutation group {name!r}")
    group = spec.groups[name]
    if perm.dim() != 1 or perm.numel() != group.size:
        raise SpecError(f"permutation {name!r} must have {group.size} entries, got shape {tuple(perm.shape)}")
    if not torch.equal(torch.sort(perm.long()).values, identity(group.size)):
        raise SpecError(f"permutation {name!r} is not a bijection of 0..{group.size - 1}")
    if group.block > 1:
        blocks = perm.long().view(-1, group.block) // group.block
        if not bool((blocks == blocks[:, :1]).all()):
            raise SpecError(f"permutation {name!r} splits a block of {group.block} units (heads / conv groups must move whole)")


def check_permutations(spec: PermutationSpec, perms: Mapping[str, torch.Tensor]) -> None:
    """Check every permutation and that tied groups (q/k and v/out of one layer) share their block mapping."""
    for name, perm in perms.items():
        check_permutation(spec, name, perm)
    present = set(perms)
    for tie, names in spec.ties(list(spec.groups)).items():
        given = [n for n in names if n in present]
        if len(names) < 2 or not given:
            continue
        first = block_map(perms[given[0]].long(), spec.groups[given[0]].block)
        for other in given[1:]:
            if not torch.equal(first, block_map(perms[other].long(), spec.groups[other].block)):
                raise SpecError(f"permutations {given[0]!r} and {other!r} must move the blocks of {tie!r} together")
        if len(given) < len(names) and not torch.equal(first, identity(first.numel())):
            absent = sorted(set(names) - present)
            raise SpecError(f"{given[0]!r} moves the blocks of {tie!r} but tied {absent} stays in place; "
                            "permute tied groups together")


def _permute_grouped_in(tensor: torch.Tensor, axis: int, perm: torch.Tensor, conv_groups: int) -> torch.Tensor:
    """Reorder the in-channel axis of a grouped conv whose out-channel axis 0 was already reordered by ``perm``."""
    per_group = tensor.shape[axis]
    pieces = []
    for g in range(conv_groups):
        rows = tensor.narrow(0, g * per_group, per_group)  # new output group g
        inner = perm[g * per_group:(g + 1) * per_group] % per_group  # its inputs, inside the old group
        pieces.append(rows.index_select(axis, inner))
    return torch.cat(pieces, dim=0)


def apply_permutations(
    state: Mapping[str, torch.Tensor], spec: PermutationSpec, perms: Mapping[str, torch.Tensor],
    check: bool = True,
) -> Dict[str, torch.Tensor]:
    """A new state dict with every tensor reordered along the axes of the groups in ``perms``.

    Groups absent from ``perms`` stay in place. Tensors the spec does not know raise a SpecError.
    """
    perms = {name: perm.long() for name, perm in perms.items()}
    if check:
        check_permutations(spec, perms)
    out: Dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name not in spec.axes:
            raise SpecError(f"tensor {name!r} is not declared in the permutation spec")
        result = tensor
        for axis, entry in enumerate(spec.axes[name]):
            if entry is None or entry.group not in perms:
                continue
            perm = perms[entry.group]
            if entry.conv_groups > 1:
                lead = spec.axes[name][0]
                if lead is None or lead.group != entry.group:
                    raise SpecError(f"{name!r}: a grouped in-channel axis needs axis 0 in the same group")
                result = _permute_grouped_in(result, axis, perm, entry.conv_groups)
            else:
                result = result.index_select(axis, perm)
        out[name] = result if result is not tensor else tensor.clone()
    return out


def permute_model_(model: torch.nn.Module, spec: PermutationSpec, perms: Mapping[str, torch.Tensor]) -> None:
    """Reorder ``model``'s own tensors in place, one at a time: the values ``apply_permutations`` gives, no full copy."""
    perms = {name: perm.long() for name, perm in perms.items()}
    check_permutations(spec, perms)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(apply_permutations({name: tensor}, spec, perms, check=False)[name])


def invert_all(perms: Mapping[str, torch.Tensor]) -> Permutations:
    """Invert every permutation of a mapping."""
    return {name: invert(perm.long()) for name, perm in perms.items()}


def compose_all(first: Mapping[str, torch.Tensor], second: Mapping[str, torch.Tensor]) -> Permutations:
    """Group-wise composition (``first`` applied, then ``second``); a group missing on one side is its identity."""
    out = dict(first)
    for name, perm in second.items():
        out[name] = compose(first[name].long(), perm.long()) if name in first else perm.long()
    return out


def random_permutations(
    spec: PermutationSpec, names: Iterable[str], generator: Optional[torch.Generator] = None
) -> Permutations:
    """Seeded random permutations of groups ``names`` that respect blocks and ties (function-preserving)."""
    names = list(names)
    perms: Permutations = {}
    for tie, members in spec.ties(names).items():
        block = spec.groups[members[0]].block
        size = spec.groups[members[0]].size
        blocks = torch.randperm(size // block, generator=generator)
        for name in members:
            inner = [torch.randperm(block, generator=generator) for _ in range(size // block)]
            perms[name] = torch.cat([blocks[b] * block + inner[b] for b in range(size // block)])
    return {name: perms[name] for name in names}
