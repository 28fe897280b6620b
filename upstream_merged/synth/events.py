"""Audio-event synthesizer: event classes (chirps, clicks, barks, sirens, ...) mixed over backgrounds at a random SNR.

numpy + scipy.signal only; deterministic given the ``np.random.Generator``. Each category has a
characteristic spectro-temporal signature (pitched vs noisy, sweep direction, repetition rate,
decay) with enough random variation that a classifier must learn the class, not one waveform.

Public API: :data:`CATEGORIES`, :data:`BACKGROUNDS`, :func:`render_event` (audio only) and
:func:`render_scene` (audio + labels: category, background, SNR, event onsets).
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np
from scipy import signal

log = logging.getLogger(__name__)

PEAK = 0.9  # peak amplitude of every rendered clip
SNR_RANGE_DB = (3.0, 20.0)  # event-to-background power ratio drawn uniformly when not given


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------

def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _fade(x: np.ndarray, sr: int, seconds: float = 0.005) -> np.ndarray:
    """Short linear fade in and out (no clicks at event boundaries)."""
    k = min(len(x) // 2, max(1, int(seconds * sr)))
    ramp = np.linspace(0.0, 1.0, k)
    x = x.copy()
    x[:k] *= ramp
    x[len(x) - k:] *= ramp[::-1]
    return x


def _bandpass(x: np.ndarray, low: float, high: float, sr: int, order: int = 2) -> np.ndarray:
    """Butterworth band-pass; the band is clipped to (20 Hz, 0.45*sr)."""
    high = min(high, 0.45 * sr)
    low = max(20.0, min(low, high * 0.8))
    sos = signal.butter(order, [low, high], btype="bandpass", fs=sr, output="sos")
    return signal.sosfilt(sos, x)


def _resonator(x: np.ndarray, freq: float, bandwidth: float, sr: int) -> np.ndarray:
    """Two-pole resonance at `freq` Hz with `bandwidth` Hz (formants, body modes)."""
    r = np.exp(-np.pi * bandwidth / sr)
    theta = 2 * np.pi * min(freq, 0.45 * sr) / sr
    return signal.lfilter([1.0 - r], [1.0, -2 * r * np.cos(theta), r * r], x)


def _sweep_tone(f_start: float, f_end: float, n: int, sr: int, log_sweep: bool = True) -> np.ndarray:
    """Sine whose frequency moves from f_start to f_end over n samples (exponentially or linearly)."""
    frac = np.linspace(0.0, 1.0, n)
    freq = f_start * (f_end / f_start) ** frac if log_sweep else f_start + (f_end - f_start) * frac
    return np.sin(2 * np.pi * np.cumsum(freq) / sr)


def _place(track: np.ndarray, event: np.ndarray, start: int) -> None:
    """Add `event` into `track` at `start`, truncated at the track's end."""
    if start >= len(track):
        return
    end = min(len(track), start + len(event))
    track[start:end] += event[: end - start]


def _repeat(rng, n: int, sr: int, make: Callable[[], np.ndarray], count: int, gap: tuple[float, float]) -> tuple[np.ndarray, list[float]]:
    """`count` renditions of an event one after the other with random gaps, starting at a random onset that fits."""
    events = [make() for _ in range(count)]
    gaps = [rng.uniform(*gap) for _ in range(count - 1)]
    # drop trailing renditions that would not fit in the clip (at least one stays)
    while len(events) > 1 and sum(len(e) for e in events) / sr + sum(gaps) > n / sr:
        events.pop()
        gaps.pop()
    total = sum(len(e) for e in events) / sr + sum(gaps)
    onset = rng.uniform(0.0, max(0.0, n / sr - total))
    track, onsets = np.zeros(n), []
    for i, event in enumerate(events):
        onsets.append(round(onset, 4))
        _place(track, event, int(onset * sr))
        onset += len(event) / sr + (gaps[i] if i < len(gaps) else 0.0)
    return track, onsets


def _span(rng, n: int, sr: int, min_fraction: float = 0.4) -> tuple[int, int]:
    """A random [start, end) covering at least min_fraction of the clip (continuous sources)."""
    length = int(n * rng.uniform(min_fraction, 1.0))
    start = int(rng.integers(0, n - length + 1))
    return start, length


# ----------------------------------------------------------------------------------------------
# event categories: each returns (foreground over n samples, onsets in seconds)
# ----------------------------------------------------------------------------------------------

def _chirp(rng, n, sr):
    """Bird-like chirps: short fast frequency glides at 2-6 kHz, repeated in a quick series."""
    base, up = rng.uniform(2000, 4500), rng.random() < 0.5

    def one():
        m = int(rng.uniform(0.04, 0.12) * sr)
        span = rng.uniform(1.3, 1.8)
        f1, f2 = (base, base * span) if up else (base * span, base)
        tone = _sweep_tone(f1, f2, m, sr) + 0.2 * _sweep_tone(2 * f1, 2 * f2, m, sr) * (2 * f2 < 0.45 * sr)
        return tone * np.hanning(m)
    return _repeat(rng, n, sr, one, int(rng.integers(3, 8)), (0.03, 0.15))


def _click_train(rng, n, sr):
    """Clock/ratchet: sharp resonant clicks at a steady rate of 4-30 per second."""
    rate = rng.uniform(4, 30)
    res = rng.uniform(2000, 5000)
    start, length = _span(rng, n, sr)
    track, onsets = np.zeros(n), []
    for k in range(int(length / sr * rate)):
        pos = start + int(k * sr / rate + rng.normal(0, 0.0005) * sr)
        click = np.zeros(int(0.02 * sr))
        click[0] = 1.0
        click = _resonator(click, res, 300.0, sr) * np.exp(-_t(len(click), sr) / 0.003)
        _place(track, click, max(0, pos))
        onsets.append(round(pos / sr, 4))
    return track, onsets[:1]


def _noise_burst(rng, n, sr):
    """Bursts of band-limited noise with an abrupt attack and exponential decay (slam, pop)."""
    low = rng.uniform(100, 1500)
    high = low * rng.uniform(2, 6)

    def one():
        m = int(rng.uniform(0.08, 0.35) * sr)
        return _bandpass(rng.standard_normal(m), low, high, sr) * np.exp(-_t(m, sr) / rng.uniform(0.02, 0.08))
    return _repeat(rng, n, sr, one, int(rng.integers(1, 4)), (0.2, 0.8))


def _hum(rng, n, sr):
    """Appliance hum/buzz: steady 90-300 Hz tone with many harmonics, slow fade in and out."""
    f0 = rng.uniform(90, 300)
    start, length = _span(rng, n, sr)
    t = _t(length, sr)
    tone = sum((k ** -rng.uniform(0.7, 1.2)) * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3))
               for k in range(1, 16) if k * f0 < 0.45 * sr)
    tone = tone * (1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
    track = np.zeros(n)
    _place(track, _fade(tone, sr, 0.15), start)
    return track, [round(start / sr, 4)]


def _sweep(rng, n, sr):
    """Pure-tone sweeps over octaves (test-signal-like), up or down, once or twice."""
    lo, hi = rng.uniform(200, 800), rng.uniform(2500, min(7000, 0.4 * sr))
    up = rng.random() < 0.5

    def one():
        m = int(rng.uniform(0.5, 1.5) * sr)
        return _fade(_sweep_tone(lo, hi, m, sr) if up else _sweep_tone(hi, lo, m, sr), sr, 0.02)
    return _repeat(rng, n, sr, one, int(rng.integers(1, 3)), (0.1, 0.4))


def _dog_bark(rng, n, sr):
    """Dog-bark-like: harsh pitched pulses (300-700 Hz, rise-fall contour) through two formants, noisy onset."""
    f0 = rng.uniform(300, 700)
    formants = (rng.uniform(600, 1100), rng.uniform(1500, 2600))

    def one():
        m = int(rng.uniform(0.12, 0.25) * sr)
        contour = f0 * (1.0 + 0.35 * np.sin(np.pi * np.linspace(0, 1, m)))
        phase = np.cumsum(contour) / sr
        pulses = (np.mod(phase, 1.0) < 0.25).astype(float) - 0.25  # buzzy glottal-like pulse train
        src = pulses + 0.4 * rng.standard_normal(m) * np.exp(-_t(m, sr) / 0.03)
        voiced = _resonator(src, formants[0], 200, sr) + 0.6 * _resonator(src, formants[1], 300, sr)
        env = np.minimum(_t(m, sr) / 0.01, 1.0) * np.exp(-_t(m, sr) / rng.uniform(0.06, 0.12))
        return voiced * env
    return _repeat(rng, n, sr, one, int(rng.integers(1, 5)), (0.1, 0.4))


def _siren(rng, n, sr):
    """Siren: a wailing tone (slow sinusoidal glide) or a two-tone hi-lo, with harmonics."""
    start, length = _span(rng, n, sr, 0.6)
    t = _t(length, sr)
    lo, hi = rng.uniform(500, 800), rng.uniform(1000, 1600)
    if rng.random() < 0.5:
        freq = lo + (hi - lo) * 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(0.25, 0.6) * t))
    else:
        period = rng.uniform(0.4, 0.8)
        freq = np.where(np.mod(t, period) < period / 2, hi, lo)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    tone = np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.2 * np.sin(3 * phase)
    track = np.zeros(n)
    _place(track, _fade(tone, sr, 0.05), start)
    return track, [round(start / sr, 4)]


def _drip(rng, n, sr):
    """Water drips: very short tones gliding sharply upward (bubble resonance), irregular intervals."""
    def one():
        m = int(rng.uniform(0.03, 0.07) * sr)
        f1 = rng.uniform(700, 1500)
        tone = _sweep_tone(f1, f1 * rng.uniform(1.8, 3.0), m, sr)
        return tone * np.exp(-_t(m, sr) / rng.uniform(0.01, 0.025)) * np.minimum(_t(m, sr) / 0.001, 1)
    return _repeat(rng, n, sr, one, int(rng.integers(2, 8)), (0.1, 0.6))


def _engine(rng, n, sr):
    """Engine idle: low firing-rate pulse train (20-60 Hz) through body resonances, slowly wandering rpm, plus noise."""
    start, length = _span(rng, n, sr, 0.6)
    t = _t(length, sr)
    rate = rng.uniform(20, 60) * (1.0 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t))
    phase = np.cumsum(rate) / sr
    pulses = np.diff(np.floor(phase), prepend=0.0)
    body = _resonator(pulses, rng.uniform(80, 200), 60, sr) + 0.5 * _resonator(pulses, rng.uniform(300, 700), 150, sr)
    body = body / (np.abs(body).max() + 1e-9) + 0.15 * _bandpass(rng.standard_normal(length), 50, 1500, sr)
    track = np.zeros(n)
    _place(track, _fade(body, sr, 0.2), start)
    return track, [round(start / sr, 4)]


def _bell(rng, n, sr):
    """Bell strikes: inharmonic partials (church-bell ratios) with long, partial-dependent decays."""
    base = rng.uniform(250, 1000)
    ratios = (0.5, 1.0, 1.183, 1.506, 2.0, 2.514, 2.662, 3.011)

    def one():
        m = int(rng.uniform(0.6, 1.5) * sr)
        t = _t(m, sr)
        tone = sum(rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * r * base * t) * np.exp(-t * r / rng.uniform(0.4, 1.0))
                   for r in ratios if r * base < 0.45 * sr)
        return tone * np.minimum(t / 0.002, 1.0) * np.linspace(1, 0, m) ** 0.5
    return _repeat(rng, n, sr, one, int(rng.integers(1, 3)), (0.05, 0.3))


def _knock(rng, n, sr):
    """Knocks on wood: 2-4 quick thumps of damped low resonances plus a click."""
    modes = (rng.uniform(100, 250), rng.uniform(300, 600), rng.uniform(800, 1400))

    def one():
        m = int(0.12 * sr)
        t = _t(m, sr)
        tone = sum(a * np.sin(2 * np.pi * f * t) * np.exp(-t / d) for f, a, d in zip(modes, (1, .6, .3), (.03, .02, .01)))
        tone[: int(0.002 * sr)] += rng.uniform(-0.5, 0.5, int(0.002 * sr))
        return tone
    return _repeat(rng, n, sr, one, int(rng.integers(2, 5)), (0.05, 0.2))


def _whistle(rng, n, sr):
    """Human whistle: near-pure 1-3 kHz tone with vibrato and a slow glide, a little breath noise."""
    start, length = _span(rng, n, sr, 0.3)
    t = _t(length, sr)
    f = rng.uniform(1000, 2500) * (1 + rng.uniform(-0.3, 0.3) * t / t[-1]) * (
        1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 7) * t))
    tone = np.sin(2 * np.pi * np.cumsum(f) / sr) + 0.05 * _bandpass(rng.standard_normal(length), 1000, 4000, sr)
    track = np.zeros(n)
    _place(track, _fade(tone, sr, 0.05), start)
    return track, [round(start / sr, 4)]


_EVENTS: dict[str, Callable[..., tuple[np.ndarray, list[float]]]] = {
    "chirp": _chirp,
    "click_train": _click_train,
    "noise_burst": _noise_burst,
    "hum": _hum,
    "sweep": _sweep,
    "dog_bark": _dog_bark,
    "siren": _siren,
    "drip": _drip,
    "engine": _engine,
    "bell": _bell,
    "knock": _knock,
    "whistle": _whistle,
}
CATEGORIES = tuple(_EVENTS)


# ----------------------------------------------------------------------------------------------
# backgrounds
# ----------------------------------------------------------------------------------------------

def _pink(rng, n, sr):
    """1/f noise by spectral shaping."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0.0
    return np.fft.irfft(spec, n)


def _brown(rng, n, sr):
    """1/f^2 noise: leaky integration of white noise (DC removed)."""
    x = signal.lfilter([1.0], [1.0, -0.995], rng.standard_normal(n))
    return x - x.mean()


def _mains_hum(rng, n, sr):
    """Mains hum (50 or 60 Hz and harmonics) under faint white noise."""
    f0 = float(rng.choice([50.0, 60.0]))
    t = _t(n, sr)
    hum = sum(k ** -1.0 * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3)) for k in (1, 2, 3, 5))
    return hum + 0.05 * rng.standard_normal(n)


def _room(rng, n, sr):
    """Room tone: low-passed noise (ventilation) with a slow level drift."""
    x = _bandpass(rng.standard_normal(n), 30, rng.uniform(300, 900), sr)
    return x * (1.0 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * _t(n, sr)))


_BACKGROUNDS: dict[str, Callable[..., np.ndarray]] = {"pink": _pink, "brown": _brown, "hum": _mains_hum, "room": _room}
BACKGROUNDS = tuple(_BACKGROUNDS)


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {list(allowed)}")


def _power(x: np.ndarray) -> float:
    return float(np.mean(x ** 2))


def render_scene(rng: np.random.Generator, category: str, seconds: float, sr: int = 16000, *,
                 background: str | None = None, snr_db: float | None = None) -> tuple[np.ndarray, dict]:
    """One event of `category` over a background at an SNR (drawn when None); float32 peak PEAK, plus labels."""
    _check_choice("category", category, _EVENTS)
    drawn_background = str(rng.choice(BACKGROUNDS))
    drawn_snr = float(rng.uniform(*SNR_RANGE_DB))
    background = drawn_background if background is None else background
    snr_db = drawn_snr if snr_db is None else float(snr_db)
    _check_choice("background", background, _BACKGROUNDS)
    n = int(round(seconds * sr))
    if n <= 0:
        raise ValueError(f"seconds={seconds} gives no samples at sr={sr}")
    foreground, onsets = _EVENTS[category](rng, n, sr)
    noise = _BACKGROUNDS[background](rng, n, sr)
    # SNR over the samples where the event is active, so a short event is as audible as a long one
    active = np.abs(foreground) > 1e-3 * (np.abs(foreground).max() + 1e-12)
    fg_power = _power(foreground[active]) if active.any() else _power(foreground)
    noise *= np.sqrt(fg_power / (_power(noise) * 10 ** (snr_db / 10) + 1e-20))
    mix = foreground + noise
    mix *= PEAK / (np.abs(mix).max() + 1e-12)
    labels = {"category": category, "background": background, "snr_db": round(snr_db, 3), "onsets": onsets,
              "sample_rate": sr, "seconds": seconds}
    return mix.astype(np.float32), labels


def render_event(rng: np.random.Generator, category: str, seconds: float, sr: int = 16000) -> np.ndarray:
    """A clip of one event of `category` over a random background at a random SNR (float32, peak PEAK)."""
    return render_scene(rng, category, seconds, sr)[0]
