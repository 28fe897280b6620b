"""Audio-event synthesizer: deterministic, well-formed, SNR honoured, categories distinguishable."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from upstream_merged.synth import events

SR = 16000


@pytest.mark.parametrize("category", events.CATEGORIES)
def test_every_category_is_deterministic_and_well_formed(category):
    a, la = events.render_scene(np.random.default_rng(1), category, 2.0, SR)
    b, lb = events.render_scene(np.random.default_rng(1), category, 2.0, SR)
    c = events.render_event(np.random.default_rng(2), category, 2.0, SR)
    assert np.array_equal(a, b) and la == lb
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == (2 * SR,) and np.isfinite(a).all()
    assert np.abs(a).max() == pytest.approx(events.PEAK, abs=1e-6)
    assert la["category"] == category and la["background"] in events.BACKGROUNDS
    assert events.SNR_RANGE_DB[0] <= la["snr_db"] <= events.SNR_RANGE_DB[1]
    assert la["onsets"] and all(0.0 <= t < 2.0 for t in la["onsets"])


def test_render_event_is_the_scene_audio():
    scene, _ = events.render_scene(np.random.default_rng(4), "bell", 1.0, SR)
    assert np.array_equal(events.render_event(np.random.default_rng(4), "bell", 1.0, SR), scene)


def test_snr_controls_the_background_level():
    # a short event at a known onset: the samples well before it are background only
    def floor(snr):
        audio, labels = events.render_scene(np.random.default_rng(9), "knock", 3.0, SR, background="pink", snr_db=snr)
        onset = int(labels["onsets"][0] * SR)
        assert onset > SR // 10
        return np.sqrt(np.mean(audio[: onset - SR // 20] ** 2))
    ratio_db = 20 * np.log10(floor(0.0) / floor(20.0))
    assert ratio_db == pytest.approx(20.0, abs=2.0)


def _log_spectrum(x: np.ndarray) -> np.ndarray:
    _, _, spec = signal.stft(x, SR, nperseg=512)
    power = np.log(np.abs(spec) ** 2 + 1e-8)
    bands = np.array_split(power, 24, axis=0)
    return np.concatenate([[b.mean() for b in bands], [b.mean(0).std() for b in bands]])


def test_categories_are_distinguishable():
    # nearest class centroid on a crude band-energy feature: far above the 1/12 chance level
    feats = {c: [_log_spectrum(events.render_event(np.random.default_rng(100 * i + s), c, 2.0, SR)) for s in range(6)]
             for i, c in enumerate(events.CATEGORIES)}
    allf = np.array([f for fs in feats.values() for f in fs])
    mu, sd = allf.mean(0), allf.std(0) + 1e-6
    centroids = np.array([(np.array(fs[:4]) - mu).mean(0) / sd for fs in feats.values()])
    correct = [int(np.argmin((((f - mu) / sd - centroids) ** 2).sum(1)) == i)
               for i, fs in enumerate(feats.values()) for f in fs[4:]]
    assert np.mean(correct) > 0.5


def test_invalid_arguments_name_the_argument():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="category='thunder'"):
        events.render_event(rng, "thunder", 1.0)
    with pytest.raises(ValueError, match="background='street'"):
        events.render_scene(rng, "chirp", 1.0, background="street")
