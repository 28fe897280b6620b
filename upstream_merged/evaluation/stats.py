"""Accuracy with a confidence interval, and paired comparisons of two classifiers on the same test clips.

A test accuracy is a binomial proportion: :func:`wilson_interval` is its 95% interval (it stays inside
[0, 1] and keeps its coverage near 0 and 1, where the normal interval does not; :func:`normal_interval`
is there for comparison). Two upstreams probed on the same clips are compared *paired*: the clips both
get right or both get wrong say nothing about the difference, so :func:`mcnemar_test` looks only at the
discordant clips (exact binomial test), and :func:`paired_bootstrap` resamples clips - the same draw for
both systems - to give the accuracy difference with its interval. With several probe seeds per system
(arrays of shape ``(seeds, clips)``) the bootstrap also resamples each system's seeds, so the interval
covers probe-training noise as well as the choice of test clips.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np
from scipy import stats as scipy_stats

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


@dataclass(frozen=True)
class Accuracy:
    """``correct`` of ``total`` clips, the proportion and its confidence interval."""

    correct: int
    total: int
    value: float
    low: float
    high: float
    method: str = "wilson"

    def text(self, digits: int = 3) -> str:
        """``0.812 [0.776, 0.844]``."""
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def as_dict(self) -> dict:
        """Plain data (JSON)."""
        return asdict(self)


def wilson_interval(correct: int, total: int, z: float = Z95) -> Tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927); (0, 1) for no trials."""
    if total <= 0:
        return 0.0, 1.0
    if not 0 <= correct <= total:
        raise ValueError(f"correct={correct} must lie in 0..total={total}")
    p = correct / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def normal_interval(correct: int, total: int, z: float = Z95) -> Tuple[float, float]:
    """Normal-approximation (Wald) interval p +- z sqrt(p(1-p)/n), clipped to [0, 1]."""
    if total <= 0:
        return 0.0, 1.0
    p = correct / total
    half = z * math.sqrt(p * (1 - p) / total)
    return max(0.0, p - half), min(1.0, p + half)


def accuracy(correct: Sequence[bool] | np.ndarray, method: str = "wilson") -> Accuracy:
    """Accuracy of per-clip correctness flags with its 95% interval (``wilson`` or ``normal``)."""
    flags = np.asarray(correct, dtype=bool).ravel()
    k, n = int(flags.sum()), int(flags.size)
    if method not in ("wilson", "normal"):
        raise ValueError(f"method {method!r} is not 'wilson' or 'normal'")
    low, high = (wilson_interval if method == "wilson" else normal_interval)(k, n)
    return Accuracy(k, n, k / n if n else float("nan"), low, high, method)


@dataclass(frozen=True)
class McNemar:
    """Discordant clips (only A right, only B right) and the exact two-sided McNemar p-value."""

    only_a: int
    only_b: int
    p_value: float


def mcnemar_test(a_correct: Sequence[bool] | np.ndarray, b_correct: Sequence[bool] | np.ndarray) -> McNemar:
    """Exact McNemar test of two classifiers on the same clips (binomial test on the discordant pairs)."""
    a, b = _paired_flags(a_correct, b_correct)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(scipy_stats.binomtest(only_a, discordant, 0.5).pvalue)
    return McNemar(only_a, only_b, p)


@dataclass(frozen=True)
class PairedDifference:
    """Accuracy of A minus accuracy of B on the same clips, its bootstrap interval, and McNemar's test."""

    difference: float
    low: float
    high: float
    clips: int
    seeds_a: int
    seeds_b: int
    mcnemar: McNemar
    resamples: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely on one side of 0 (the two differ at this confidence)."""
        return self.low > 0.0 or self.high < 0.0

    def text(self, digits: int = 3) -> str:
        """``+0.021 [-0.010, +0.052]``."""
        return f"{self.difference:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"

    def as_dict(self) -> dict:
        """Plain data (JSON)."""
        out = asdict(self)
        out["excludes_zero"] = self.excludes_zero
        return out


def paired_bootstrap(a_correct, b_correct, resamples: int = 10000, confidence: float = 0.95,
                     seed: int = 0) -> PairedDifference:
    """Paired bootstrap of accuracy(A) - accuracy(B) over test clips (and seeds, for ``(seeds, clips)`` arrays).

    Each resample draws clips with replacement - the same clips for A and B - and, when several seeds are
    given, draws each system's seeds with replacement too; the interval is the percentile interval of the
    resampled differences. McNemar's test compares one probe with one probe: the first seed of each.
    """
    a = _as_seed_matrix(a_correct, "a_correct")
    b = _as_seed_matrix(b_correct, "b_correct")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"A has {a.shape[1]} clips and B {b.shape[1]}: pair them by clip id first (align_by_id)")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie in (0, 1)")
    n = a.shape[1]
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    a_f, b_f = a.astype(np.float64), b.astype(np.float64)
    for start in range(0, resamples, 256):  # chunks bound memory: (chunk, seeds, clips) arrays
        size = min(resamples, start + 256) - start
        clips = rng.integers(0, n, size=(size, n))
        a_mean = a_f[rng.integers(0, a.shape[0], size=(size, a.shape[0]))].mean(axis=1)  # (chunk, clips)
        b_mean = b_f[rng.integers(0, b.shape[0], size=(size, b.shape[0]))].mean(axis=1)
        diffs[start:start + size] = np.take_along_axis(a_mean - b_mean, clips, axis=1).mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [tail, 1.0 - tail])
    return PairedDifference(float(a_f.mean() - b_f.mean()), float(low), float(high), n, a.shape[0], b.shape[0],
                            mcnemar_test(a[0], b[0]), resamples, confidence)


def align_by_id(a: Mapping[str, bool], b: Mapping[str, bool]) -> Tuple[np.ndarray, np.ndarray, list]:
    """Correctness of A and B on the same clip ids, in sorted id order; differing id sets are an error naming them."""
    missing_b, missing_a = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if missing_a or missing_b:
        raise ValueError(f"the two prediction sets cover different clips: only in A {missing_b[:5]} "
                         f"({len(missing_b)}), only in B {missing_a[:5]} ({len(missing_a)}); compare runs on the same test set")
    ids = sorted(a)
    return np.array([bool(a[i]) for i in ids]), np.array([bool(b[i]) for i in ids]), ids


def compare_predictions(a: Mapping[str, bool], b: Mapping[str, bool], **bootstrap) -> PairedDifference:
    """Paired difference of two runs' per-clip correctness maps ({clip id: correct}); see :func:`paired_bootstrap`."""
    a_flags, b_flags, _ = align_by_id(a, b)
    return paired_bootstrap(a_flags, b_flags, **bootstrap)


def compare_seeds(a: Sequence[Mapping[str, bool]], b: Sequence[Mapping[str, bool]], **bootstrap) -> PairedDifference:
    """Paired difference of two systems given one {clip id: correct} map per probe seed each (same clips throughout)."""
    if not a or not b:
        raise ValueError("compare_seeds needs at least one seed per system")
    reference = a[0]
    a_rows = np.stack([align_by_id(run, reference)[0] for run in a])  # (seeds, clips), clips in sorted id order
    b_rows = np.stack([align_by_id(run, reference)[0] for run in b])
    return paired_bootstrap(a_rows, b_rows, **bootstrap)


def _as_seed_matrix(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=bool)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"{name} must be per-clip flags (clips,) or (seeds, clips), got shape {array.shape}")
    return array


def _paired_flags(a, b) -> Tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=bool).ravel(), np.asarray(b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired flags must cover the same clips: {a.size} vs {b.size}")
    return a, b


def summary(result: Dict[str, bool]) -> Accuracy:
    """Accuracy with Wilson interval of a {clip id: correct} map."""
    return accuracy(list(result.values()))
