"""upstream_merged.synth.degrade: conditions drawn per profile, and each effect does what it records."""
from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from upstream_merged.synth import degrade
from upstream_merged.synth.degrade import Condition

RATE = 16000
needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is required (tools/setup_env.sh installs it)")


def _tone(seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_draws_are_seeded_and_stay_in_the_profile_ranges():
    draws = [degrade.draw_condition(np.random.default_rng([3, i]), "test") for i in range(200)]
    assert draws[:5] == [degrade.draw_condition(np.random.default_rng([3, i]), "test") for i in range(5)]
    profile = degrade.PROFILES["test"]
    assert all(c.noise != "none" and profile.snr_db[0] <= c.snr_db <= profile.snr_db[1] for c in draws)
    assert all(profile.peak_dbfs[0] <= c.peak_dbfs <= profile.peak_dbfs[1] for c in draws)
    reverberant = [c for c in draws if c.reverberance > 0]
    assert 0.65 < len(reverberant) / len(draws) < 0.95  # p_reverb 0.8
    assert {c.channel for c in draws} == set(degrade.CHANNELS) and {c.noise for c in draws} == set(degrade.NOISE_KINDS)
    clean = degrade.draw_condition(np.random.default_rng(0), "clean")
    assert clean.is_clean and clean.peak_dbfs == -1.0
    assert Condition.from_json(draws[0].to_json()) == draws[0]


def test_bad_conditions_name_the_field():
    with pytest.raises(ValueError, match="channel"):
        Condition(channel="radio")
    with pytest.raises(ValueError, match="snr_db"):
        Condition(noise="pink")
    with pytest.raises(ValueError, match="peak_dbfs"):
        Condition(peak_dbfs=3.0)
    with pytest.raises(ValueError, match="profile"):
        degrade.draw_condition(np.random.default_rng(0), "studio")


def test_noise_is_mixed_at_the_recorded_snr_and_the_level_is_the_recorded_peak():
    clean = _tone()
    for snr in (0.0, 10.0, 20.0):
        out = degrade.apply(clean, RATE, Condition(noise="pink", snr_db=snr, peak_dbfs=-6.0, noise_seed=1))
        assert np.max(np.abs(out)) == pytest.approx(10 ** (-6 / 20), rel=1e-5)
        scale = float(out @ clean / (clean @ clean))  # the tone's share of the mix
        residual = out - scale * clean
        measured = 10 * np.log10(np.mean((scale * clean) ** 2) / np.mean(residual**2))
        assert measured == pytest.approx(snr, abs=0.5)


def test_noise_depends_on_the_seed_only():
    clean, condition = _tone(), Condition(noise="babble", snr_db=5.0, noise_seed=7)
    a, b = degrade.apply(clean, RATE, condition), degrade.apply(clean, RATE, condition)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, degrade.apply(clean, RATE, replace(condition, noise_seed=8)))
    for kind in degrade.NOISE_KINDS:
        noise = degrade.make_noise(kind, RATE, RATE, np.random.default_rng(0))
        assert np.sqrt(np.mean(noise.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)


@needs_sox
def test_reverberation_leaves_a_tail_and_the_telephone_channel_cuts_the_lows():
    click = np.zeros(RATE, np.float32)
    click[:160] = 0.9
    dry = degrade.apply(click, RATE, Condition())
    wet = degrade.apply(click, RATE, Condition(reverberance=80, room_scale=90))
    assert len(wet) == RATE and np.abs(dry[4000:]).max() == 0.0 and np.abs(wet[4000:]).max() > 1e-3
    low = _tone(hz=100.0)
    phone = degrade.apply(low + _tone(hz=1000.0), RATE, Condition(channel="telephone"))
    spectrum = np.abs(np.fft.rfft(phone))
    assert spectrum[100] < 0.05 * spectrum[1000]  # 1 Hz bins: 100 Hz is gone, 1 kHz kept
