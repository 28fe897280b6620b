"""Streaming cross-correlation between the channels of two models at one site.

Memory is fixed by the channel counts, never by the amount of calibration data: each batch's
co-moments are computed in float32 around the batch mean and merged into the accumulators with
Chan et al.'s parallel update. Counts, means and variances are float64 (vectors, cheap); the
cross-moment matrix - the one large allocation - is float64 by default or float32
(``cross_dtype``), which halves the memory of a merge's statistics. Since every batch adds
co-moments centred on its own mean, the float32 sum only carries rounding of order
sqrt(batches) x 6e-8 relative. Accumulators live on any device (the GEMMs run where the
activations are). Accumulators of several workers merge exactly the same way, and
:meth:`CrossMoments.all_reduce` does it across ``torch.distributed`` ranks (collective tensors on
the accumulators' device, as NCCL needs).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

# A channel is dead when its variance is below this fraction of the site's mean variance.
DEAD_VARIANCE = 1e-10


class CrossMoments:
    """Running count, means, variances and cross-covariance of paired observations ``a`` (n_a) and ``b`` (n_b)."""

    def __init__(self, n_a: int, n_b: int, device: Optional[torch.device | str] = None,
                 cross_dtype: torch.dtype = torch.float64):
        if cross_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"cross_dtype must be torch.float32 or torch.float64, got {cross_dtype}")
        self.count = 0.0
        self.mean_a = torch.zeros(n_a, dtype=torch.float64, device=device)
        self.mean_b = torch.zeros(n_b, dtype=torch.float64, device=device)
        self.m2_a = torch.zeros(n_a, dtype=torch.float64, device=device)
        self.m2_b = torch.zeros(n_b, dtype=torch.float64, device=device)
        self.cross = torch.zeros(n_a, n_b, dtype=cross_dtype, device=device)

    @property
    def device(self) -> torch.device:
        """Where the accumulators live."""
        return self.cross.device

    def update(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Add ``N`` paired rows: ``a`` (N, n_a) and ``b`` (N, n_b), any float dtype."""
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[0]:
            raise ValueError(f"update needs (N, n_a) and (N, n_b) with the same N, got {tuple(a.shape)} and {tuple(b.shape)}")
        rows = a.shape[0]
        if rows == 0:
            return
        a = a.detach().to(self.device, torch.float32)
        b = b.detach().to(self.device, torch.float32)
        mean_a = a.mean(0)
        mean_b = b.mean(0)
        centred_a = a - mean_a
        centred_b = b - mean_b
        self._merge(
            float(rows),
            mean_a.double(),
            mean_b.double(),
            centred_a.square().sum(0).double(),
            centred_b.square().sum(0).double(),
            factors=(centred_a, centred_b),  # (n_a, n_b) float32 GEMM: the costly part, one per batch
        )

    def _merge(self, count: float, mean_a, mean_b, m2_a, m2_b, cross: Optional[torch.Tensor] = None,
               factors: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> None:
        """Chan's parallel update of a batch's co-moments ``cross`` (any float dtype) or ``factors[0].T @ factors[1]``.

        With float32 accumulators the GEMM of ``factors`` adds straight into the accumulator (no temporary).
        """
        if count == 0:
            return
        total = self.count + count
        delta_a = mean_a - self.mean_a
        delta_b = mean_b - self.mean_b
        weight = self.count * count / total
        self.m2_a += m2_a + delta_a.square() * weight
        self.m2_b += m2_b + delta_b.square() * weight
        if factors is not None and self.cross.dtype == factors[0].dtype:
            self.cross.addmm_(factors[0].T, factors[1])
        else:
            self.cross.add_(cross if cross is not None else factors[0].T @ factors[1])
        if weight:
            dtype = self.cross.dtype
            self.cross.addr_(delta_a.to(dtype), delta_b.to(dtype), alpha=weight)
        self.mean_a += delta_a * (count / total)
        self.mean_b += delta_b * (count / total)
        self.count = total

    def merge(self, other: "CrossMoments") -> None:
        """Fold another accumulator of the same site into this one (as if its data had been added here)."""
        if other.cross.shape != self.cross.shape:
            raise ValueError(f"cannot merge moments of shape {tuple(other.cross.shape)} into {tuple(self.cross.shape)}")
        device = self.device
        self._merge(other.count, other.mean_a.to(device), other.mean_b.to(device), other.m2_a.to(device),
                    other.m2_b.to(device), other.cross.to(device))

    def all_reduce(self, group: Optional[object] = None) -> None:
        """Combine the accumulators of every rank in place (a no-op unless torch.distributed is initialised)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        count = torch.full((1,), self.count, dtype=torch.float64, device=self.device)
        head = torch.cat([count, self.mean_a * self.count, self.mean_b * self.count])
        dist.all_reduce(head, group=group)
        total = float(head[0])
        if total == 0:
            return
        n_a = self.mean_a.numel()
        mean_a = head[1:1 + n_a] / total
        mean_b = head[1 + n_a:] / total
        # Shift each rank's centred moments to the global mean, then sum them (exact, no cancellation).
        shift_a = self.mean_a - mean_a
        shift_b = self.mean_b - mean_b
        self.m2_a += self.count * shift_a.square()
        self.m2_b += self.count * shift_b.square()
        if self.count:
            self.cross.add_(torch.outer(shift_a, shift_b).mul_(self.count).to(self.cross.dtype))
        for tensor in (self.m2_a, self.m2_b, self.cross):
            dist.all_reduce(tensor, group=group)
        self.count, self.mean_a, self.mean_b = total, mean_a, mean_b

    def variances(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Population variances of every a and b channel."""
        denominator = max(self.count, 1.0)
        return self.m2_a / denominator, self.m2_b / denominator

    def dead(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Boolean masks of channels with (numerically) zero variance in a and in b."""
        var_a, var_b = self.variances()
        return _dead(var_a), _dead(var_b)

    def correlation(self) -> torch.Tensor:
        """Pearson correlation (n_a, n_b), float64 in [-1, 1]; rows/columns of dead channels are 0, never NaN."""
        var_a, var_b = self.variances()
        denominator = max(self.count, 1.0)
        # 1 / (N std): zero for dead channels, so their rows and columns come out 0 without a masking pass
        inv_a = torch.where(_dead(var_a), torch.zeros_like(var_a), (var_a * denominator ** 2).rsqrt())
        inv_b = torch.where(_dead(var_b), torch.zeros_like(var_b), var_b.rsqrt())
        return self.cross.mul(inv_a[:, None]).mul_(inv_b[None, :]).clamp_(-1.0, 1.0)


def _dead(var: torch.Tensor) -> torch.Tensor:
    scale = float(var.mean()) if var.numel() else 0.0
    return var <= DEAD_VARIANCE * scale if scale > 0 else torch.ones_like(var, dtype=torch.bool)
