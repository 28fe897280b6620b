"""Linear assignment on similarity matrices: flat, and two-level for block-structured units (heads, groups).

Both return permutations in the convention ``new[i] = old[perm[i]]``: row ``i`` of the similarity
matrix (a unit of model A) is matched to column ``perm[i]`` (a unit of model B).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class BlockAssignment:
    """Result of a two-level assignment: the block mapping and one flat permutation per similarity matrix."""

    blocks: torch.Tensor  # (n_blocks,) block of B matched to each block of A
    perms: List[torch.Tensor]  # per similarity matrix, a flat (n,) permutation that moves whole blocks
    block_scores: torch.Tensor  # (n_blocks, n_blocks) summed best within-block assignment values


def solve(similarity: torch.Tensor | np.ndarray, scratch: bool = False) -> torch.Tensor:
    """The permutation maximising the summed similarity of matched pairs (scipy linear_sum_assignment).

    ``scratch``: a float64 CPU matrix is negated in place for the solve and restored after it (negation
    is exact), instead of scipy's negated copy - one matrix less in memory; nothing else may read it meanwhile.
    """
    matrix = np.asarray(similarity.detach().cpu().numpy() if torch.is_tensor(similarity) else similarity, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"assignment needs a square matrix, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("assignment got a similarity matrix with NaN or inf entries")
    if scratch and matrix.flags.c_contiguous and matrix.flags.writeable:
        np.negative(matrix, out=matrix)  # what maximize=True does to a copy
        try:
            rows, cols = linear_sum_assignment(matrix)
        finally:
            np.negative(matrix, out=matrix)
    else:
        rows, cols = linear_sum_assignment(matrix, maximize=True)
    perm = np.empty(matrix.shape[0], dtype=np.int64)
    perm[rows] = cols
    return torch.from_numpy(perm)


def solve_blocks(similarities: Sequence[torch.Tensor], block: int) -> BlockAssignment:
    """Two-level assignment shared by several similarity matrices over the same blocks.

    The score of pairing block ``a`` of A with block ``b`` of B is the sum, over the matrices, of the
    best within-block assignment value; blocks are matched on that score, then each matrix keeps the
    within-block assignment of the matched pairs.
    """
    if not similarities:
        raise ValueError("solve_blocks needs at least one similarity matrix")
    matrices = [np.asarray(s.detach().cpu().numpy() if torch.is_tensor(s) else s, dtype=np.float64) for s in similarities]
    size = matrices[0].shape[0]
    if size % block:
        raise ValueError(f"{size} units do not split into blocks of {block}")
    count = size // block
    scores = np.zeros((count, count))
    within = np.zeros((len(matrices), count, count, block), dtype=np.int64)
    for m, matrix in enumerate(matrices):
        if matrix.shape != (size, size):
            raise ValueError(f"similarity matrices must all be {size}x{size}, got {matrix.shape}")
        tiles = matrix.reshape(count, block, count, block).transpose(0, 2, 1, 3)  # (a, b, i, j)
        for a in range(count):
            for b in range(count):
                rows, cols = linear_sum_assignment(tiles[a, b], maximize=True)
                within[m, a, b, rows] = cols
                scores[a, b] += tiles[a, b][rows, cols].sum()
    blocks = solve(scores)
    perms = []
    for m in range(len(matrices)):
        flat = [int(blocks[a]) * block + torch.from_numpy(within[m, a, int(blocks[a])]) for a in range(count)]
        perms.append(torch.cat(flat).long())
    return BlockAssignment(blocks=blocks, perms=perms, block_scores=torch.from_numpy(scores))


def matched_mean(similarity: torch.Tensor, perm: torch.Tensor) -> float:
    """Mean similarity of the pairs ``(i, perm[i])``."""
    return float(similarity[torch.arange(perm.numel()), perm].mean()) if perm.numel() else 0.0
