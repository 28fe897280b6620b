"""Streaming cross-correlation: equals numpy on the concatenated data, merges exactly, never NaN."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from upstream_merged.core.stats import CrossMoments


def _data(rows: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    latent = torch.randn(rows, 6, generator=generator, dtype=torch.float64)
    a = latent @ torch.randn(6, 5, generator=generator, dtype=torch.float64) + 100.0  # large offset: tests centring
    b = latent @ torch.randn(6, 7, generator=generator, dtype=torch.float64) - 30.0
    return a, b


def _numpy_cross_corr(a, b):
    full = np.corrcoef(np.concatenate([a.numpy(), b.numpy()], axis=1), rowvar=False)
    return full[: a.shape[1], a.shape[1]:]


def test_streaming_equals_numpy_corrcoef_on_concatenated_batches():
    a, b = _data(1000, 0)
    moments = CrossMoments(5, 7)
    for start, stop in [(0, 3), (3, 250), (250, 251), (251, 251), (251, 1000)]:  # uneven, one empty
        moments.update(a[start:stop], b[start:stop])
    assert moments.count == 1000
    np.testing.assert_allclose(moments.correlation().numpy(), _numpy_cross_corr(a, b), atol=2e-6)
    np.testing.assert_allclose(moments.mean_a.numpy(), a.mean(0).numpy(), rtol=1e-6)


def test_merge_of_partials_equals_one_pass():
    a, b = _data(600, 1)
    whole, left, right = CrossMoments(5, 7), CrossMoments(5, 7), CrossMoments(5, 7)
    whole.update(a, b)
    left.update(a[:100], b[:100])
    right.update(a[100:], b[100:])
    left.merge(right)
    assert left.count == whole.count
    np.testing.assert_allclose(left.correlation().numpy(), whole.correlation().numpy(), atol=3e-6)  # float32 batch products
    np.testing.assert_allclose(left.correlation().numpy(), _numpy_cross_corr(a, b), atol=3e-6)
    np.testing.assert_allclose(left.cross.numpy(), whole.cross.numpy(), rtol=1e-5, atol=1e-3)


def test_zero_variance_channels_give_zero_not_nan():
    a, b = _data(200, 2)
    a[:, 2] = 7.0  # dead in a
    b[:, 0] = 0.0  # dead in b
    moments = CrossMoments(5, 7)
    moments.update(a, b)
    corr = moments.correlation()
    assert torch.isfinite(corr).all()
    assert (corr[2] == 0).all() and (corr[:, 0] == 0).all()
    dead_a, dead_b = moments.dead()
    assert dead_a.tolist() == [False, False, True, False, False] and bool(dead_b[0]) and not bool(dead_b[1:].any())
    empty = CrossMoments(3, 3).correlation()
    assert torch.equal(empty, torch.zeros(3, 3))


def test_float32_accumulators_track_float64_over_many_batches():
    a, b = _data(20000, 3)
    wide, narrow = CrossMoments(5, 7), CrossMoments(5, 7, cross_dtype=torch.float32)
    for start in range(0, 20000, 37):  # 541 uneven batches, large offsets
        wide.update(a[start:start + 37], b[start:start + 37])
        narrow.update(a[start:start + 37], b[start:start + 37])
    assert narrow.raw.dtype == torch.float32 and narrow.correlation().dtype == torch.float64
    np.testing.assert_allclose(narrow.correlation().numpy(), _numpy_cross_corr(a, b), atol=2e-5)
    np.testing.assert_allclose(narrow.correlation().numpy(), wide.correlation().numpy(), atol=2e-5)
    other = CrossMoments(5, 7, cross_dtype=torch.float32)
    other.update(a[:10], b[:10])
    other.merge(wide)  # mixed dtypes merge
    assert other.count == 20010 and other.raw.dtype == torch.float32


def test_accumulators_live_on_the_given_device():
    moments = CrossMoments(3, 4, device="meta", cross_dtype=torch.float32)
    assert moments.device.type == "meta" and moments.mean_a.is_meta and moments.m2_b.is_meta
    moments.update(torch.zeros(5, 3, device="meta"), torch.zeros(5, 4, device="meta"))
    assert moments.count == 5 and moments.raw.is_meta
    with pytest.raises(ValueError, match="cross_dtype"):
        CrossMoments(3, 4, cross_dtype=torch.float16)
