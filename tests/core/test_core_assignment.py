"""Linear assignment: flat and two-level block assignment recover known permutations."""
from __future__ import annotations

import pytest
import torch

from upstream_merged.core.assignment import matched_mean, solve, solve_blocks


def _scrambled(size: int, perm: torch.Tensor, seed: int) -> torch.Tensor:
    """Similarity of A unit i with B unit j when B = A reordered so that B[inv[i]] = A[i], plus noise."""
    generator = torch.Generator().manual_seed(seed)
    truth = torch.eye(size, dtype=torch.float64)[perm]  # truth[i, perm[i]] = 1
    return truth + 0.3 * torch.rand(size, size, generator=generator, dtype=torch.float64)


def test_solve_recovers_a_permutation():
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    similarity = _scrambled(40, perm, 1)
    found = solve(similarity)
    assert torch.equal(found, perm)
    assert matched_mean(similarity, found) > matched_mean(similarity, torch.arange(40))


def test_solve_blocks_recovers_blocks_and_insides_for_two_tied_matrices():
    generator = torch.Generator().manual_seed(2)
    blocks, block = 4, 6
    heads = torch.randperm(blocks, generator=generator)
    perms = []
    for _ in range(2):
        perms.append(torch.cat([heads[h] * block + torch.randperm(block, generator=generator) for h in range(blocks)]))
    result = solve_blocks([_scrambled(24, p, 3 + i) for i, p in enumerate(perms)], block)
    assert torch.equal(result.blocks, heads)
    assert all(torch.equal(found, truth) for found, truth in zip(result.perms, perms))
    assert result.block_scores.shape == (blocks, blocks)


def test_assignment_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        solve(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN"):
        solve(torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match="blocks of 4"):
        solve_blocks([torch.zeros(6, 6)], 4)
