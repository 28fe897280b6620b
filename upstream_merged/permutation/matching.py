"""From calibration statistics to one permutation per group.

A group observed at several sites is solved on the mean of their correlation matrices. Flat groups
(CNN channels, FFN units) use one linear assignment; block-structured families (attention heads with
their q/k and v/out insides; the residual stream's positional-conv groups) use the two-level
assignment of :func:`upstream_merged.core.assignment.solve_blocks`.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import torch

from upstream_merged.core.assignment import matched_mean, solve, solve_blocks
from upstream_merged.core.stats import CrossMoments
from upstream_merged.permutation.spec import PermutationSpec


@dataclass(frozen=True)
class GroupMatch:
    """What matching did to one group (the merge report's row)."""

    name: str
    component: str
    size: int
    block: int
    symmetry: bool
    moved_share: float  # share of units whose position changed (the seed's Table II)
    corr_before: float  # mean correlation of unit i of A with unit i of B
    corr_after: float  # mean correlation of unit i of A with its matched unit of B
    dead_a: int
    dead_b: int
    frames: int
    lap_seconds: float  # correlation + assignment time of the group (its family's share)
    blocks_moved: int = 0  # heads / conv groups that changed position (block-structured groups)

    def as_dict(self) -> dict:
        """Plain data for JSON."""
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def group_correlation(moments: Sequence[CrossMoments]) -> torch.Tensor:
    """Mean correlation matrix over a group's probe sites."""
    total = moments[0].correlation()
    for accumulator in moments[1:]:
        total.add_(accumulator.correlation())
    return total.div_(len(moments)) if len(moments) > 1 else total


# A family this wide (FFN units at base size and up) needs a few float64 copies of its matrix while it is
# solved (correlation, scipy's negated copy): such families are solved one after another in one thread,
# so the matching's peak memory stays near one of them, while the small families share the other threads.
LARGE_FAMILY_UNITS = 2048


def _solve_family(spec: PermutationSpec, members: Sequence[str], moments: Dict[str, Sequence[CrossMoments]],
                  keep: Optional[Set[str]]) -> Tuple[Dict[str, torch.Tensor], List[GroupMatch], Dict[str, torch.Tensor]]:
    """Match one tie family (one group, or the tied q/k and v/out of a layer); its accumulators are released."""
    start = time.perf_counter()
    correlations, dead, frames = {}, {}, {}
    for member in members:
        statistics = moments.pop(member)  # each accumulator goes as soon as its correlation exists
        # computed where the statistics live (a GPU after a device calibration), solved on the host
        correlations[member] = group_correlation(statistics).cpu()
        dead[member] = [mask.cpu() for mask in statistics[0].dead()]
        frames[member] = int(statistics[0].count)
        del statistics
    block = spec.groups[members[0]].block
    perms, moved = {}, {}
    if block > 1:
        result = solve_blocks([correlations[m] for m in members], block)
        for member, perm in zip(members, result.perms):
            perms[member] = perm
            moved[member] = int((result.blocks != torch.arange(result.blocks.numel())).sum())
    else:
        for member in members:
            perms[member] = solve(correlations[member], scratch=True)  # no negated copy of a 3072^2 float64 matrix
    elapsed = (time.perf_counter() - start) / len(members)
    rows = []
    for name in members:
        group, perm, corr = spec.groups[name], perms[name], correlations[name]
        dead_a, dead_b = dead[name]
        rows.append(GroupMatch(
            name=name, component=group.component, size=group.size, block=group.block, symmetry=group.symmetry,
            moved_share=float((perm != torch.arange(perm.numel())).float().mean()),
            corr_before=float(torch.diagonal(corr).mean()), corr_after=matched_mean(corr, perm),
            dead_a=int(dead_a.sum()), dead_b=int(dead_b.sum()), frames=frames[name],
            lap_seconds=elapsed, blocks_moved=moved.get(name, 0),
        ))
    kept = {name: corr for name, corr in correlations.items() if keep is None or name in keep}
    return perms, rows, kept


def match(spec: PermutationSpec, moments: Dict[str, Sequence[CrossMoments]], keep: Optional[Iterable[str]] = None
          ) -> Tuple[Dict[str, torch.Tensor], List[GroupMatch], Dict[str, torch.Tensor]]:
    """Permutations (B onto A) for every group in ``moments``, a report row per group, and correlation matrices.

    ``moments`` is emptied as families are solved (peak memory stays near the accumulators' own size);
    only the correlations of groups in ``keep`` are returned (all when ``keep`` is None).
    """
    names = list(moments)
    keep_set = None if keep is None else set(keep)
    families = [members for _, members in spec.ties(names).items()]
    large = [f for f in families if spec.groups[f[0]].size >= LARGE_FAMILY_UNITS]
    small = [f for f in families if spec.groups[f[0]].size < LARGE_FAMILY_UNITS]
    solve_one = lambda members: _solve_family(spec, members, moments, keep_set)  # noqa: E731
    # scipy's assignment releases the GIL for most of its work: independent families run side by side
    workers = max(1, min(len(families), torch.get_num_threads(), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        in_turn = pool.submit(lambda: [solve_one(f) for f in large])  # one large family in flight at a time
        solved = list(pool.map(solve_one, small)) + in_turn.result()
    perms: Dict[str, torch.Tensor] = {}
    rows: Dict[str, GroupMatch] = {}
    correlations: Dict[str, torch.Tensor] = {}
    for family_perms, family_rows, kept in solved:
        perms.update(family_perms)
        rows.update({row.name: row for row in family_rows})
        correlations.update(kept)
    return {n: perms[n] for n in names}, [rows[n] for n in names], {n: correlations[n] for n in names if n in correlations}
