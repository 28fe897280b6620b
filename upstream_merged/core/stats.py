"""Streaming cross-correlation between the channels of two models at one site.

Memory is fixed by the channel counts, never by the amount of calibration data. The accumulators hold
sums of the data shifted by a fixed reference (the first batch's mean): ``sum (a - s)``,
``sum (a - s)^2`` and the cross-product matrix ``sum (a - s_a)^T (b - s_b)``; centred moments are
derived when asked for. Shifting by a value close to the mean keeps the sums free of cancellation
(the shifted-data algorithm), and each batch costs one fused GEMM into the matrix (``addmm_``) and a
few vector reductions - no per-batch rank-1 correction pass over the matrix. Counts and the vector
sums are float64; the matrix - the one large allocation - is float64 or float32 (``cross_dtype``),
which halves the memory of a merge's statistics (per-batch products are float32 either way).
Accumulators live on any device (the GEMMs run where the activations are); accumulators of several
workers merge exactly by re-shifting (:meth:`CrossMoments.merge`), and :meth:`CrossMoments.all_reduce`
does it across ``torch.distributed`` ranks (collective tensors on the accumulators' device, as NCCL needs).
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
        vector = dict(dtype=torch.float64, device=device)
        self.shift_a, self.shift_b = torch.zeros(n_a, **vector), torch.zeros(n_b, **vector)
        self.sum_a, self.sum_b = torch.zeros(n_a, **vector), torch.zeros(n_b, **vector)
        self.sq_a, self.sq_b = torch.zeros(n_a, **vector), torch.zeros(n_b, **vector)
        self.raw = torch.zeros(n_a, n_b, dtype=cross_dtype, device=device)  # sum (a - shift_a)^T (b - shift_b)
        self._shift32: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    @property
    def device(self) -> torch.device:
        """Where the accumulators live."""
        return self.raw.device

    # -- derived moments ------------------------------------------------------------------------------
    @property
    def mean_a(self) -> torch.Tensor:
        """Mean of every a channel (float64)."""
        return self.shift_a + self.sum_a / max(self.count, 1.0)

    @property
    def mean_b(self) -> torch.Tensor:
        """Mean of every b channel (float64)."""
        return self.shift_b + self.sum_b / max(self.count, 1.0)

    @property
    def m2_a(self) -> torch.Tensor:
        """Sum of squared deviations from the mean of every a channel (float64)."""
        return (self.sq_a - self.sum_a.square() / max(self.count, 1.0)).clamp_(min=0.0)

    @property
    def m2_b(self) -> torch.Tensor:
        """Sum of squared deviations from the mean of every b channel (float64)."""
        return (self.sq_b - self.sum_b.square() / max(self.count, 1.0)).clamp_(min=0.0)

    @property
    def cross(self) -> torch.Tensor:
        """Centred co-moment matrix ``sum (a - mean_a)^T (b - mean_b)`` (float64, a new tensor)."""
        return self.raw.to(torch.float64, copy=True).addr_(self.sum_a, self.sum_b, alpha=-1.0 / max(self.count, 1.0))

    # -- accumulation ---------------------------------------------------------------------------------
    def update(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Add ``N`` paired rows: ``a`` (N, n_a) and ``b`` (N, n_b), any float dtype."""
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[0]:
            raise ValueError(f"update needs (N, n_a) and (N, n_b) with the same N, got {tuple(a.shape)} and {tuple(b.shape)}")
        rows = a.shape[0]
        if rows == 0:
            return
        a = a.detach().to(self.device, torch.float32)
        b = b.detach().to(self.device, torch.float32)
        if self._shift32 is None:
            if self.count == 0:  # unless set_shift chose one, the first batch's mean becomes the reference
                self.shift_a, self.shift_b = a.mean(0).double(), b.mean(0).double()
            self._shift32 = (self.shift_a.float(), self.shift_b.float())
        a = a - self._shift32[0]
        b = b - self._shift32[1]
        self.sum_a += a.sum(0)
        self.sum_b += b.sum(0)
        self.sq_a += a.square().sum(0)  # not einsum("nc,nc->c"): that runs as a batched matmul, ~70x slower on CPU
        self.sq_b += b.square().sum(0)
        if self.raw.dtype == torch.float32:
            self.raw.addmm_(a.T, b)  # the costly part: one GEMM per batch, straight into the accumulator
        else:
            self.raw.add_(a.T @ b)
        self.count += float(rows)

    def set_shift(self, shift_a: torch.Tensor, shift_b: torch.Tensor) -> None:
        """Choose the reference the data will be shifted by (before any update; default: the first batch's mean)."""
        if self.count:
            raise ValueError("set_shift must come before the first update")
        self.shift_a = shift_a.detach().to(self.device, torch.float64)
        self.shift_b = shift_b.detach().to(self.device, torch.float64)
        self._shift32 = (self.shift_a.float(), self.shift_b.float())

    def _reshift(self, shift_a: torch.Tensor, shift_b: torch.Tensor) -> None:
        """Express the sums relative to new references (exact algebra, no data needed)."""
        delta_a, delta_b = self.shift_a - shift_a, self.shift_b - shift_b  # x - new = (x - old) + delta
        n = self.count
        self.raw.add_((torch.outer(self.sum_a, delta_b) + torch.outer(delta_a, self.sum_b)
                       + n * torch.outer(delta_a, delta_b)).to(self.raw.dtype))
        self.sq_a += 2 * delta_a * self.sum_a + n * delta_a.square()
        self.sq_b += 2 * delta_b * self.sum_b + n * delta_b.square()
        self.sum_a += n * delta_a
        self.sum_b += n * delta_b
        self.shift_a, self.shift_b = shift_a.clone(), shift_b.clone()
        self._shift32 = None

    def merge(self, other: "CrossMoments") -> None:
        """Fold another accumulator of the same site into this one (as if its data had been added here)."""
        if other.raw.shape != self.raw.shape:
            raise ValueError(f"cannot merge moments of shape {tuple(other.raw.shape)} into {tuple(self.raw.shape)}")
        if other.count == 0:
            return
        device = self.device
        if self.count == 0:
            self.shift_a, self.shift_b = other.shift_a.to(device).clone(), other.shift_b.to(device).clone()
            self._shift32 = None
        moved = CrossMoments(0, 0, device=device, cross_dtype=torch.float64)
        moved.count = other.count
        moved.shift_a, moved.shift_b = other.shift_a.to(device), other.shift_b.to(device)
        moved.sum_a, moved.sum_b = other.sum_a.to(device).clone(), other.sum_b.to(device).clone()
        moved.sq_a, moved.sq_b = other.sq_a.to(device).clone(), other.sq_b.to(device).clone()
        moved.raw = other.raw.to(device, torch.float64, copy=True)
        moved._reshift(self.shift_a, self.shift_b)
        self.raw.add_(moved.raw.to(self.raw.dtype))
        self.sum_a += moved.sum_a
        self.sum_b += moved.sum_b
        self.sq_a += moved.sq_a
        self.sq_b += moved.sq_b
        self.count += moved.count

    def all_reduce(self, group: Optional[object] = None, common_shift: bool = False) -> None:
        """Combine the accumulators of every rank in place (a no-op unless torch.distributed is initialised).

        ``common_shift``: every rank used the same reference (:meth:`set_shift`), so the sums add as they are.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        if common_shift:
            count = torch.full((1,), self.count, dtype=torch.float64, device=self.device)
            for tensor in (count, self.sum_a, self.sum_b, self.sq_a, self.sq_b, self.raw):
                dist.all_reduce(tensor, group=group)
            self.count = float(count.item())
            return
        count = torch.full((1,), self.count, dtype=torch.float64, device=self.device)
        head = torch.cat([count, self.mean_a * self.count, self.mean_b * self.count])
        dist.all_reduce(head, group=group)
        total = float(head[0])
        if total == 0:
            return
        n_a = self.shift_a.numel()
        # every rank re-expresses its sums around the global mean, then the sums add up exactly
        self._reshift(head[1:1 + n_a] / total, head[1 + n_a:] / total)
        for tensor in (self.sum_a, self.sum_b, self.sq_a, self.sq_b, self.raw):
            dist.all_reduce(tensor, group=group)
        self.count = total

    # -- results --------------------------------------------------------------------------------------
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
        return self.cross.mul_(inv_a[:, None]).mul_(inv_b[None, :]).clamp_(-1.0, 1.0)


def _dead(var: torch.Tensor) -> torch.Tensor:
    scale = float(var.mean()) if var.numel() else 0.0
    return var <= DEAD_VARIANCE * scale if scale > 0 else torch.ones_like(var, dtype=torch.bool)
