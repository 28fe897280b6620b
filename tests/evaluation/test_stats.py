import math

import numpy as np
import pytest

from upstream_merged.evaluation.stats import (Z95, accuracy, align_by_id, compare_predictions, mcnemar_test,
                                              normal_interval, paired_bootstrap, wilson_interval)


@pytest.mark.parametrize("k,n", [(81, 263), (1, 10), (0, 20), (20, 20), (500, 1000)])
def test_wilson_bounds_are_where_the_score_statistic_equals_z(k, n):
    low, high = wilson_interval(k, n)
    p = k / n

    def score(p0):
        return abs(p - p0) / math.sqrt(p0 * (1 - p0) / n)

    for bound in (low, high):
        if 0.0 < bound < 1.0:  # the interval is [0, .] at k=0 and [., 1] at k=n
            assert score(bound) == pytest.approx(Z95, rel=1e-9)
    assert low <= p <= high
    assert (low == 0.0) == (k == 0) and (high == 1.0) == (k == n)


def test_wilson_stays_inside_zero_one_where_the_normal_interval_collapses():
    assert normal_interval(0, 20) == (0.0, 0.0)  # the Wald interval claims certainty
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.1 < high < 0.2  # Wilson: 0 of 20 is compatible with up to ~16%


def test_accuracy_counts_flags_and_refuses_unknown_methods():
    acc = accuracy([True, False, True, True])
    assert (acc.correct, acc.total, acc.value) == (3, 4, 0.75)
    assert acc.low < 0.75 < acc.high
    with pytest.raises(ValueError, match="wilson"):
        accuracy([True], method="exact")


def test_mcnemar_counts_only_discordant_clips():
    a = np.array([True] * 10 + [True] * 30 + [False] * 5)
    b = np.array([False] * 10 + [True] * 30 + [False] * 5)
    result = mcnemar_test(a, b)
    assert (result.only_a, result.only_b) == (10, 0)
    assert result.p_value == pytest.approx(2 * 0.5 ** 10)
    assert mcnemar_test(a, a).p_value == 1.0


def test_paired_bootstrap_of_identical_systems_is_zero():
    flags = np.random.default_rng(0).random(200) < 0.6
    result = paired_bootstrap(flags, flags, resamples=500)
    assert result.difference == 0.0 and result.low == 0.0 and result.high == 0.0
    assert not result.excludes_zero


def test_paired_bootstrap_finds_a_clear_difference_and_its_size():
    rng = np.random.default_rng(1)
    b = rng.random(400) < 0.5
    a = b | (rng.random(400) < 0.5)  # A fixes about half of B's errors: +~0.25
    result = paired_bootstrap(a, b, resamples=2000)
    assert result.difference == pytest.approx(a.mean() - b.mean())
    assert result.excludes_zero and result.low > 0.15 and result.high < 0.35
    assert result.mcnemar.only_b == 0 and result.mcnemar.p_value < 1e-10


def test_pairing_narrows_the_interval_against_unpaired_noise():
    rng = np.random.default_rng(2)
    b = rng.random(500) < 0.7
    a = b.copy()
    flip = rng.choice(500, 10, replace=False)
    a[flip] = ~a[flip]  # A and B differ on 10 clips only
    paired = paired_bootstrap(a, b, resamples=2000)
    unpaired_half = Z95 * math.sqrt(2 * 0.7 * 0.3 / 500)  # what two independent samples would give
    assert (paired.high - paired.low) / 2 < 0.5 * unpaired_half


def test_seed_matrices_add_seed_noise_to_the_interval():
    rng = np.random.default_rng(3)
    clips = rng.random(300) < 0.6
    seeds_a = np.stack([clips ^ (rng.random(300) < s) for s in (0.0, 0.2, 0.4)])  # seeds that differ a lot
    one = paired_bootstrap(seeds_a[:1], clips[None], resamples=2000)
    many = paired_bootstrap(seeds_a, clips[None], resamples=2000)
    assert many.seeds_a == 3 and (many.high - many.low) > (one.high - one.low)


def test_shapes_and_ids_must_match():
    with pytest.raises(ValueError, match="clips"):
        paired_bootstrap([True, False], [True])
    with pytest.raises(ValueError, match="only in A"):
        align_by_id({"x": True, "y": False}, {"x": True, "z": True})
    a, b, ids = align_by_id({"y": False, "x": True}, {"x": False, "y": False})
    assert ids == ["x", "y"] and a.tolist() == [True, False] and b.tolist() == [False, False]
    assert compare_predictions({"x": True, "y": True}, {"x": False, "y": True}, resamples=200).difference == 0.5
