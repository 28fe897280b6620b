"""Music synthesizer: pitched notes in several timbres, drum kits, and labelled phrases over keys and tempi.

Everything is numpy (+ ``scipy.signal.lfilter`` for the Karplus-Strong loop and drum filters) and
deterministic given the ``np.random.Generator`` passed in. Notes are bandlimited (no partial above
Nyquist). Phrases are peak-normalised to :data:`PEAK`, so nothing clips when written as 16-bit PCM.

Public API (stable; the music pretraining corpus and the NSynth/GTZAN data tools build on it):

- :data:`TIMBRES`, :func:`render_note` — one note, ``float32``, peak = ``velocity / 127``.
- :data:`STYLES`, :data:`KEYS`, :func:`render_phrase` — a phrase + labels (notes, key, tempo, ...).
- :class:`Arrangement`, :func:`render_arrangement` — a multi-part piece (chords, bass, melody,
  drums) with explicit distributions, used for genre-style classes.
- :data:`DRUM_PATTERNS`, :func:`render_drums`, :func:`midi_to_hz`.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable

import numpy as np
from scipy import signal

log = logging.getLogger(__name__)

PEAK = 0.9  # peak amplitude of every rendered phrase / arrangement
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
KEYS = tuple(f"{pc} {mode}" for mode in ("major", "minor") for pc in PITCH_CLASSES)
STYLES = ("notes", "chords", "arpeggios", "melody", "ensemble")
TEMPO_RANGE = (60.0, 180.0)  # bpm drawn uniformly when tempo is None
PITCH_RANGE = (36, 96)  # MIDI range render_note is designed and tested for (C2..C7)


def midi_to_hz(pitch: float) -> float:
    """Equal-tempered frequency of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def note_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI pitch, e.g. 60 -> 'C4'."""
    return f"{PITCH_CLASSES[pitch % 12]}{pitch // 12 - 1}"


# ----------------------------------------------------------------------------------------------
# envelopes and oscillators
# ----------------------------------------------------------------------------------------------

def _adsr(n: int, sr: int, attack: float, decay: float, sustain: float, release: float) -> np.ndarray:
    """Linear-attack, exponential-decay ADSR over n samples; the release occupies the last samples."""
    t = np.arange(n) / sr
    env = np.where(t < attack, t / max(attack, 1e-4),
                   sustain + (1.0 - sustain) * np.exp(-(t - attack) / max(decay, 1e-4)))
    n_rel = min(n, max(1, int(release * sr)))
    env[n - n_rel:] *= np.linspace(1.0, 0.0, n_rel) ** 2
    return env


def _release(n: int, sr: int, release: float = 0.03) -> np.ndarray:
    """A short fade-out at the end of n samples (avoids clicks when a decaying note is cut)."""
    env = np.ones(n)
    n_rel = min(n, max(1, int(release * sr)))
    env[n - n_rel:] = np.linspace(1.0, 0.0, n_rel)
    return env


def _phase(f0: float, n: int, sr: int, vib_rate: float = 0.0, vib_depth: float = 0.0) -> np.ndarray:
    """Running phase (radians) of the fundamental, with optional sinusoidal vibrato (depth as a ratio)."""
    t = np.arange(n) / sr
    if vib_depth == 0.0:
        return 2 * np.pi * f0 * t
    # the vibrato fades in over 0.3 s so the attack is at the nominal pitch
    depth = vib_depth * np.minimum(t / 0.3, 1.0)
    inst = f0 * (1.0 + depth * np.sin(2 * np.pi * vib_rate * t))
    return 2 * np.pi * np.cumsum(inst) / sr


def _harmonics(rng: np.random.Generator, phase: np.ndarray, f0: float, sr: int, amps: np.ndarray,
               envs: np.ndarray | None = None) -> np.ndarray:
    """Sum of harmonics k*f0 (k = 1..len(amps)) below Nyquist, random start phases, optional per-partial envelopes."""
    out = np.zeros(phase.shape[0])
    starts = rng.uniform(0, 2 * np.pi, size=len(amps))
    for k, amp in enumerate(amps, start=1):
        if k * f0 >= 0.45 * sr or amp == 0.0:
            continue
        partial = amp * np.sin(k * phase + starts[k - 1])
        out += partial if envs is None else partial * envs[k - 1]
    return out


# ----------------------------------------------------------------------------------------------
# timbres: each renders n samples of a note at f0 Hz with a brightness in [0, 1] (from velocity)
# ----------------------------------------------------------------------------------------------

def _additive(rng, f0, n, sr, bright):
    """Flute-like additive tone: smoothly decaying harmonic series, soft attack, light vibrato and breath."""
    rolloff = rng.uniform(1.6, 2.4) - 0.6 * bright
    amps = np.arange(1, 13, dtype=float) ** -rolloff * rng.uniform(0.8, 1.2, size=12)
    amps[0] = 1.0
    ph = _phase(f0, n, sr, rng.uniform(4.5, 6.0), rng.uniform(0.0, 0.004))
    tone = _harmonics(rng, ph, f0, sr, amps)
    breath = signal.lfilter(np.ones(8) / 8, [1.0], rng.standard_normal(n)) * 0.02
    return (tone + breath) * _adsr(n, sr, rng.uniform(0.03, 0.08), 0.3, 0.8, 0.08)


def _fm(rng, f0, n, sr, bright):
    """Two-operator FM (electric-piano-like): harmonic modulator ratio, modulation index decaying over time."""
    t = np.arange(n) / sr
    ratio = float(rng.choice([1.0, 2.0]))
    index = (0.5 + 1.5 * bright * rng.uniform(0.7, 1.0)) * np.exp(-t / rng.uniform(0.15, 0.5)) + 0.2
    # keep the modulator's sidebands below Nyquist: cap the index for high notes
    index *= min(1.0, 0.45 * sr / (f0 * (1 + ratio * 4)))
    mod = index * np.sin(2 * np.pi * ratio * f0 * t + rng.uniform(0, 2 * np.pi))
    tone = np.sin(2 * np.pi * f0 * t + mod + rng.uniform(0, 2 * np.pi))
    return tone * _adsr(n, sr, 0.005, rng.uniform(0.4, 1.2), rng.uniform(0.0, 0.3), 0.05)


def _plucked(rng, f0, n, sr, bright):
    """Karplus-Strong plucked string with a linearly interpolated fractional delay (exact tuning)."""
    period = sr / f0
    # loop filter 0.5*(z^-N + z^-(N+1)) delays N + 0.5; a 2-tap linear interpolator adds `frac`
    delay = int(np.floor(period - 0.5))
    frac = period - 0.5 - delay
    t60 = rng.uniform(1.0, 3.0) * (1.0 if f0 < 400 else 400 / f0 + 0.3)
    gain = 10.0 ** (-3.0 * period / (sr * t60))
    taps = gain * 0.5 * np.convolve([1.0, 1.0], [1.0 - frac, frac])  # taps at N, N+1, N+2
    a = np.zeros(delay + 3)
    a[0] = 1.0
    a[delay:delay + 3] -= taps
    # excitation = the plucked string's triangular shape (harmonic k ~ sin(k*pi*pos)/k^2, so the
    # fundamental always leads) plus some noise for the attack's grain
    size = max(delay, 2)
    pos = rng.uniform(0.12, 0.3)
    x = np.arange(size) / size
    shape = np.where(x < pos, x / pos, (1.0 - x) / (1.0 - pos))
    burst = shape + (0.2 + 0.3 * bright) * rng.uniform(-1.0, 1.0, size=size)
    # a darker pluck for soft velocities: smooth the excitation
    smooth = int(round(1 + 3 * (1.0 - bright)))
    burst = signal.lfilter(np.ones(smooth) / smooth, [1.0], burst)
    burst -= burst.mean()
    excitation = np.zeros(n)
    excitation[:len(burst)] = burst[:n]
    out = signal.lfilter([1.0], a, excitation)
    return out * _release(n, sr, 0.05)


def _percussive(rng, f0, n, sr, bright):
    """Mallet (marimba-like): decaying fundamental + inharmonic 3.93x and 9.2x partials + a strike click."""
    t = np.arange(n) / sr
    tau = rng.uniform(0.25, 0.6) * min(1.0, (220.0 / f0) ** 0.5 + 0.2)
    out = np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t / tau)
    for ratio, amp, tau_ratio in ((3.93, 0.3 * (0.5 + bright), 0.25), (9.2, 0.1 * bright, 0.1)):
        if ratio * f0 < 0.45 * sr:
            out += amp * np.sin(2 * np.pi * ratio * f0 * t) * np.exp(-t / (tau * tau_ratio))
    n_click = min(n, int(0.003 * sr))
    out[:n_click] += 0.3 * bright * rng.uniform(-1, 1, size=n_click) * np.linspace(1, 0, n_click)
    attack = np.minimum(t / 0.001, 1.0)
    return out * attack * _release(n, sr, 0.02)


def _organ(rng, f0, n, sr, bright):
    """Drawbar organ: fixed harmonic registration (8', 4', 2 2/3', 2', ...), flat sustain, no decay."""
    amps = np.zeros(8)
    amps[0] = 1.0
    for k in (2, 3, 4, 6, 8):
        amps[k - 1] = float(rng.choice([0.0, 0.25, 0.5, 0.75])) * (0.6 + 0.4 * bright)
    ph = _phase(f0, n, sr)
    tone = _harmonics(rng, ph, f0, sr, amps)
    return tone * _adsr(n, sr, 0.008, 0.1, 1.0, 0.04)


def _brass(rng, f0, n, sr, bright):
    """Brass-like: sawtooth-ish spectrum whose upper partials open up with the envelope (brightness follows loudness)."""
    env = _adsr(n, sr, rng.uniform(0.04, 0.09), 0.2, 0.7, 0.07)
    k = np.arange(1, 17, dtype=float)
    amps = k ** -rng.uniform(0.9, 1.3)
    envs = env[None, :] ** (1.0 + (k[:, None] - 1.0) * (0.5 - 0.35 * bright))
    ph = _phase(f0, n, sr, rng.uniform(4.5, 5.5), rng.uniform(0.0, 0.003))
    return _harmonics(rng, ph, f0, sr, amps, envs)


def _bowed(rng, f0, n, sr, bright):
    """Bowed string: full harmonic series (1/k), slow attack, clear vibrato."""
    k = np.arange(1, 21, dtype=float)
    amps = k ** -(1.3 - 0.4 * bright) * rng.uniform(0.7, 1.3, size=20)
    amps[0] = 1.0
    ph = _phase(f0, n, sr, rng.uniform(5.0, 6.5), rng.uniform(0.002, 0.004))
    return _harmonics(rng, ph, f0, sr, amps) * _adsr(n, sr, rng.uniform(0.08, 0.2), 0.3, 0.85, 0.1)


def _reed(rng, f0, n, sr, bright):
    """Clarinet-like reed: strong odd harmonics, weak even ones."""
    k = np.arange(1, 16, dtype=float)
    amps = np.where(k % 2 == 1, 1.0, rng.uniform(0.05, 0.15)) / k ** (1.2 - 0.4 * bright)
    ph = _phase(f0, n, sr, rng.uniform(4.0, 5.0), rng.uniform(0.0, 0.002))
    return _harmonics(rng, ph, f0, sr, amps) * _adsr(n, sr, rng.uniform(0.02, 0.05), 0.2, 0.9, 0.05)


_RENDERERS: dict[str, Callable[..., np.ndarray]] = {
    "additive": _additive,
    "fm": _fm,
    "plucked": _plucked,
    "percussive": _percussive,
    "organ": _organ,
    "brass": _brass,
    "bowed": _bowed,
    "reed": _reed,
}
TIMBRES = tuple(_RENDERERS)
SUSTAINED_TIMBRES = ("additive", "organ", "brass", "bowed", "reed")  # hold for the note length
DECAYING_TIMBRES = ("fm", "plucked", "percussive")  # decay by themselves


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {list(allowed)}")


def render_note(rng: np.random.Generator, midi_pitch: float, timbre: str, seconds: float, sr: int = 16000,
                velocity: int = 100) -> np.ndarray:
    """One note of `seconds` (release included) as float32; peak = velocity / 127, brightness grows with velocity."""
    _check_choice("timbre", timbre, _RENDERERS)
    if not 1 <= velocity <= 127:
        raise ValueError(f"velocity={velocity!r} must be a MIDI velocity in 1..127")
    f0 = midi_to_hz(midi_pitch)
    if f0 >= 0.45 * sr:
        raise ValueError(f"midi_pitch={midi_pitch} ({f0:.0f} Hz) is too high for sr={sr}")
    n = int(round(seconds * sr))
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    out = _RENDERERS[timbre](rng, f0, n, sr, velocity / 127.0)
    peak = float(np.max(np.abs(out)))
    if peak > 0:
        out = out * (velocity / 127.0 / peak)
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# drums
# ----------------------------------------------------------------------------------------------

# one bar of 16 sixteenth steps per instrument; 'x' = hit, 'o' = ghost (soft) hit
DRUM_PATTERNS: dict[str, dict[str, str]] = {
    "none": {},
    "rock": {"kick": "x.......x.x.....", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
    "pop": {"kick": "x.....x.x.......", "snare": "....x.......x...", "hat": "x.x.x.x.x.x.x.x."},
    "disco": {"kick": "x...x...x...x...", "snare": "....x.......x...", "hat": "..x...x...x...x.",
              "ride": "x.x.x.x.x.x.x.x."},
    "hiphop": {"kick": "x......x..x.....", "snare": "....x.......x..o", "hat": "x.x.x.x.x.x.x.x."},
    "metal": {"kick": "xxxxxxxxxxxxxxxx", "snare": "....x.......x...", "ride": "x.x.x.x.x.x.x.x."},
    "reggae": {"kick": "........x.......", "snare": "........x.......", "hat": "..x...x...x...x."},
    "jazz": {"ride": "x...x.x.x...x.x.", "hat": "....x.......x...",
             "kick": "x..........o....", "snare": "......o.......o."},
    "country": {"kick": "x.......x.......", "snare": "..x...x...x...x.", "hat": "x.x.x.x.x.x.x.x."},
    "shuffle": {"kick": "x.......x.......", "snare": "....x.......x...", "hat": "x..xx..xx..xx..x"},
}
DRUMS = ("kick", "snare", "hat", "ride")


def _drum_hit(rng: np.random.Generator, kind: str, sr: int, velocity: float) -> np.ndarray:
    """One drum hit (kick: pitch-swept sine; snare: tone + band-passed noise; hat/ride: high-passed noise + metal)."""
    if kind == "kick":
        n = int(0.35 * sr)
        t = np.arange(n) / sr
        freq = 45.0 + 110.0 * np.exp(-t / 0.03)
        out = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.12)
    elif kind == "snare":
        n = int(0.25 * sr)
        t = np.arange(n) / sr
        sos = signal.butter(2, [1000.0, min(7000.0, 0.45 * sr)], btype="bandpass", fs=sr, output="sos")
        noise = signal.sosfilt(sos, rng.standard_normal(n)) * np.exp(-t / 0.06)
        out = 0.5 * np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.04) + 2.0 * noise
    elif kind in ("hat", "ride"):
        n = int((0.08 if kind == "hat" else 0.6) * sr)
        t = np.arange(n) / sr
        sos = signal.butter(2, min(6000.0, 0.4 * sr), btype="highpass", fs=sr, output="sos")
        metal = sum(np.sign(np.sin(2 * np.pi * f * t)) for f in (205.3, 304.4, 369.6, 522.7, 540.0, 800.0))
        tone = signal.sosfilt(sos, 0.5 * rng.standard_normal(n) + 0.3 * metal)
        out = tone * np.exp(-t / (0.02 if kind == "hat" else 0.25))
    else:
        raise ValueError(f"drum kind={kind!r} is not one of {list(DRUMS)}")
    n_att = max(1, int(0.0015 * sr))
    out[:n_att] *= np.linspace(0.0, 1.0, n_att)
    peak = float(np.max(np.abs(out)))
    return out * (velocity / peak if peak > 0 else 0.0)


def render_drums(rng: np.random.Generator, seconds: float, sr: int, tempo: float, pattern: str,
                 swing: float = 0.0) -> np.ndarray:
    """A drum track looping one bar of `pattern` at `tempo` bpm; swing delays odd eighth-steps by a fraction of a step."""
    _check_choice("pattern", pattern, DRUM_PATTERNS)
    n = int(round(seconds * sr))
    out = np.zeros(n)
    step = 60.0 / tempo / 4.0  # sixteenth note
    n_steps = int(np.ceil(seconds / step))
    for kind, grid in DRUM_PATTERNS[pattern].items():
        for i in range(n_steps):
            mark = grid[i % 16]
            if mark == ".":
                continue
            onset = i * step + (swing * step if i % 4 == 2 else 0.0) + rng.normal(0.0, 0.003)
            start = max(0, int(round(onset * sr)))
            if start >= n:
                continue
            vel = (0.9 if mark == "x" else 0.35) * rng.uniform(0.85, 1.0) * (0.6 if kind in ("hat", "ride") else 1.0)
            hit = _drum_hit(rng, kind, sr, vel)[: n - start]
            out[start:start + len(hit)] += hit
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# scores: notes, chords, melodies
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Note:
    """A scheduled note: onset and sounding duration in seconds, MIDI pitch and velocity, timbre."""

    onset: float
    duration: float
    pitch: int
    velocity: int
    timbre: str

    def as_label(self) -> dict:
        """JSON-ready label of the note."""
        return {"onset": round(self.onset, 4), "duration": round(self.duration, 4), "pitch": int(self.pitch),
                "velocity": int(self.velocity), "timbre": self.timbre}


def render_notes(rng: np.random.Generator, notes: list[Note], seconds: float, sr: int) -> np.ndarray:
    """Mix scheduled notes into a float64 buffer of `seconds` (not normalised); sustained notes get a release tail."""
    n = int(round(seconds * sr))
    out = np.zeros(n)
    for note in notes:
        start = int(round(note.onset * sr))
        if start >= n:
            continue
        tail = 0.08 if note.timbre in SUSTAINED_TIMBRES else 0.4  # decaying timbres ring a little past the note
        length = min(note.duration + tail, (n - start) / sr)
        audio = render_note(rng, note.pitch, note.timbre, length, sr, note.velocity)
        out[start:start + len(audio)] += audio
    return out


def _parse_key(key: str) -> tuple[int, str]:
    """'F# minor' -> (6, 'minor'); modes are those of SCALES."""
    parts = key.split()
    if len(parts) != 2 or parts[0] not in PITCH_CLASSES or parts[1] not in SCALES:
        raise ValueError(f"key={key!r} must be '<pitch class> <mode>' with a pitch class in {list(PITCH_CLASSES)} "
                         f"and a mode in {list(SCALES)}, e.g. 'C major'")
    return PITCH_CLASSES.index(parts[0]), parts[1]


def _scale_pitch(tonic: int, mode: str, degree: int, octave_base: int) -> int:
    """MIDI pitch of a scale degree (any integer, wraps octaves) above the tonic in the octave starting at octave_base."""
    scale = SCALES[mode]
    octave, idx = divmod(degree, len(scale))
    base = octave_base + (tonic - octave_base) % 12
    return base + 12 * octave + scale[idx]


def _chord(tonic: int, mode: str, degree: int, octave_base: int, size: int) -> list[int]:
    """Diatonic chord on a scale degree: size 2 = power chord (root, fifth, octave), 3 = triad, 4 = seventh."""
    if size == 2:
        root = _scale_pitch(tonic, mode, degree, octave_base)
        return [root, root + 7, root + 12]
    return [_scale_pitch(tonic, mode, degree + 2 * i, octave_base) for i in range(size)]


PROGRESSIONS: dict[str, tuple[int, ...]] = {  # scale degrees (0 = I), one chord per bar
    "I-IV-V-I": (0, 3, 4, 0),
    "I-V-vi-IV": (0, 4, 5, 3),
    "I-vi-IV-V": (0, 5, 3, 4),
    "ii-V-I-I": (1, 4, 0, 0),
    "i-VI-III-VII": (0, 5, 2, 6),
    "i-iv-v-i": (0, 3, 4, 0),
    "twelve-bar": (0, 0, 0, 0, 3, 3, 0, 0, 4, 3, 0, 4),
    "I-IV": (0, 3),
    "i-VII-VI-VII": (0, 6, 5, 6),
}
COMPING = ("block", "half", "quarter", "offbeat", "arpeggio", "arpeggio16", "none")


def _comp_notes(rng, chord: list[int], bar_start: float, beat: float, comp: str, timbre: str,
                velocity: int, beats_per_bar: int = 4) -> list[Note]:
    """Accompaniment notes for one bar of one chord in a comping pattern."""
    def vel() -> int:
        return int(np.clip(velocity + rng.integers(-8, 9), 1, 127))

    notes: list[Note] = []
    if comp == "none":
        return notes
    if comp in ("arpeggio", "arpeggio16"):
        sub = 2 if comp == "arpeggio" else 4
        tones = chord + [chord[0] + 12]
        order = tones + tones[-2:0:-1] if rng.random() < 0.5 else tones
        for i in range(beats_per_bar * sub):
            notes.append(Note(bar_start + i * beat / sub, beat / sub * 0.95, order[i % len(order)], vel(), timbre))
        return notes
    hits = {"block": [(0.0, beats_per_bar)], "half": [(0.0, 2.0), (2.0, 2.0)],
            "quarter": [(float(b), 0.9) for b in range(beats_per_bar)],
            "offbeat": [(b + 0.5, 0.35) for b in range(beats_per_bar)]}[comp]
    for pos, length in hits:
        for p in chord:
            notes.append(Note(bar_start + pos * beat, length * beat * 0.95, p, vel(), timbre))
    return notes


def _melody_notes(rng, tonic: int, mode: str, start: float, end: float, beat: float, density: float,
                  timbre: str, velocity: int, octave_base: int = 60, chord_degrees: list[int] | None = None,
                  bar: float = 0.0) -> list[Note]:
    """A stepwise random-walk melody in the scale; `density` ~ notes per beat; it ends on the tonic."""
    durations = np.array([0.25, 0.5, 1.0, 1.5, 2.0])
    weights = np.exp(-np.abs(np.log2(durations * density)))
    weights /= weights.sum()
    notes: list[Note] = []
    t, degree = start, int(rng.integers(0, 5))
    while t < end - 1e-6:
        length = float(rng.choice(durations, p=weights)) * beat
        length = min(length, end - t)
        if rng.random() < 0.12 and notes:  # a rest
            t += length
            continue
        if chord_degrees is not None and bar > 0 and rng.random() < 0.5:
            # lean towards the current chord's tones on strong positions
            root = chord_degrees[int(t // bar) % len(chord_degrees)]
            degree = root + 2 * int(rng.integers(0, 3)) + 7 * int(np.floor(degree / 7))
        else:
            degree += int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]))
        degree = int(np.clip(degree, -3, 10))
        is_last = t + length >= end - 1e-6
        pitch = _scale_pitch(tonic, mode, 7 * int(np.floor(degree / 7)) if is_last else degree, octave_base)
        notes.append(Note(t, length * 0.9, pitch, int(np.clip(velocity + rng.integers(-12, 13), 1, 127)), timbre))
        t += length
    return notes


@dataclasses.dataclass(frozen=True)
class Arrangement:
    """A multi-part piece: key/mode, tempo, progression and per-part timbres / patterns ('none' drops a part)."""

    tonic: int
    mode: str
    tempo: float
    progression: tuple[int, ...]
    chord_timbre: str | None = "organ"
    chord_size: int = 3
    comping: str = "block"
    bass_timbre: str | None = "plucked"
    bass_pattern: str = "root"  # root | walking | octaves
    melody_timbre: str | None = None
    melody_density: float = 1.0
    drums: str = "none"
    swing: float = 0.0
    drum_gain: float = 0.5
    drive: float = 0.0  # > 0: tanh overdrive of the pitched parts (rock/metal guitars)

    def as_label(self) -> dict:
        """JSON-ready description."""
        d = dataclasses.asdict(self)
        d["progression"] = list(self.progression)
        d["key"] = f"{PITCH_CLASSES[self.tonic]} {self.mode}"
        return d


def _bass_notes(rng, arr: Arrangement, bar_start: float, beat: float, degree: int) -> list[Note]:
    """Bass line for one bar: chord roots, octave jumps, or a walking line through the scale."""
    root = _scale_pitch(arr.tonic, arr.mode, degree, 36)
    vel = int(np.clip(95 + rng.integers(-6, 7), 1, 127))
    if arr.bass_pattern == "root":
        return [Note(bar_start, 2 * beat * 0.95, root, vel, arr.bass_timbre),
                Note(bar_start + 2 * beat, 2 * beat * 0.95, root, vel, arr.bass_timbre)]
    if arr.bass_pattern == "octaves":
        return [Note(bar_start + i * beat / 2, beat / 2 * 0.9, root + 12 * (i % 2), vel, arr.bass_timbre)
                for i in range(8)]
    if arr.bass_pattern == "walking":
        steps = [0, 2, 4, int(rng.choice([3, 5, 6]))]
        return [Note(bar_start + i * beat, beat * 0.95, _scale_pitch(arr.tonic, arr.mode, degree + s, 36), vel,
                     arr.bass_timbre) for i, s in enumerate(steps)]
    raise ValueError(f"bass_pattern={arr.bass_pattern!r} is not one of ['root', 'octaves', 'walking']")


def arrangement_notes(rng: np.random.Generator, arr: Arrangement, seconds: float) -> list[Note]:
    """The pitched notes of an arrangement over `seconds` (the progression loops)."""
    beat = 60.0 / arr.tempo
    bar = 4 * beat
    notes: list[Note] = []
    n_bars = int(np.ceil(seconds / bar))
    for b in range(n_bars):
        degree = arr.progression[b % len(arr.progression)]
        if arr.chord_timbre is not None:
            chord = _chord(arr.tonic, arr.mode, degree, 48, arr.chord_size)
            notes += _comp_notes(rng, chord, b * bar, beat, arr.comping, arr.chord_timbre, 70)
        if arr.bass_timbre is not None:
            notes += _bass_notes(rng, arr, b * bar, beat, degree)
    if arr.melody_timbre is not None:
        notes += _melody_notes(rng, arr.tonic, arr.mode, 0.0, n_bars * bar, beat, arr.melody_density,
                               arr.melody_timbre, 90, 60, list(arr.progression), bar)
    return [n for n in notes if n.onset < seconds]


def _normalise(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio * (PEAK / peak) if peak > 0 else audio).astype(np.float32)


def render_arrangement(rng: np.random.Generator, arr: Arrangement, seconds: float,
                       sr: int = 16000) -> tuple[np.ndarray, dict]:
    """Render an arrangement (pitched parts + drums) peak-normalised to PEAK; labels include every note."""
    notes = arrangement_notes(rng, arr, seconds)
    audio = render_notes(rng, notes, seconds, sr)
    if arr.drive > 0:
        peak = float(np.max(np.abs(audio))) or 1.0
        audio = np.tanh(arr.drive * audio / peak) / np.tanh(arr.drive) * peak
    if arr.drums != "none":
        drums = render_drums(rng, seconds, sr, arr.tempo, arr.drums, arr.swing)
        pitched_peak = float(np.max(np.abs(audio))) or 1.0
        audio = audio + arr.drum_gain * pitched_peak * drums
    labels = {"arrangement": arr.as_label(), "notes": [n.as_label() for n in notes], "sample_rate": sr,
              "seconds": seconds}
    return _normalise(audio), labels


def render_phrase(rng: np.random.Generator, seconds: float, sr: int = 16000, *, timbre: str | None = None,
                  key: str | None = None, tempo: float | None = None,
                  style: str | None = None) -> tuple[np.ndarray, dict]:
    """A labelled phrase: single notes, chords, arpeggios, a melody, or an ensemble (chords+bass+melody+drums).

    Unset arguments are drawn from `rng` (always the same draws, so fixing one argument does not change
    the others). Returns float32 audio of round(seconds*sr) samples peak-normalised to PEAK and labels:
    style, timbre, key, tonic (0-11), mode, tempo (bpm), notes (onset/duration/pitch/velocity/timbre),
    drums, sample_rate, seconds.
    """
    drawn_timbre = str(rng.choice(TIMBRES))
    drawn_key = str(rng.choice(KEYS))
    drawn_tempo = float(rng.uniform(*TEMPO_RANGE))
    drawn_style = str(rng.choice(STYLES))
    timbre = drawn_timbre if timbre is None else timbre
    key = drawn_key if key is None else key
    tempo = drawn_tempo if tempo is None else float(tempo)
    style = drawn_style if style is None else style
    _check_choice("timbre", timbre, TIMBRES)
    _check_choice("style", style, STYLES)
    tonic, mode = _parse_key(key)
    if not 20.0 <= tempo <= 400.0:
        raise ValueError(f"tempo={tempo} bpm is outside 20..400")
    beat = 60.0 / tempo
    bar = 4 * beat
    drums = "none"
    if style == "notes":
        notes, t = [], 0.0
        while t < seconds:
            length = beat * float(rng.choice([0.5, 1.0, 2.0]))
            pitch = _scale_pitch(tonic, mode, int(rng.integers(-7, 10)), 60)
            notes.append(Note(t, length * 0.85, pitch, int(rng.integers(60, 121)), timbre))
            t += length + beat * float(rng.choice([0.0, 0.0, 0.5, 1.0]))
    elif style in ("chords", "arpeggios"):
        prog = PROGRESSIONS[str(rng.choice([p for p in PROGRESSIONS if p != "twelve-bar"]))]
        size = int(rng.choice([3, 3, 4]))
        comp = str(rng.choice(["block", "half", "quarter"])) if style == "chords" else str(
            rng.choice(["arpeggio", "arpeggio16"]))
        notes = []
        for b in range(int(np.ceil(seconds / bar))):
            chord = _chord(tonic, mode, prog[b % len(prog)], 48, size)
            notes += _comp_notes(rng, chord, b * bar, beat, comp, timbre, int(rng.integers(70, 111)))
    elif style == "melody":
        notes = _melody_notes(rng, tonic, mode, 0.0, seconds, beat, float(rng.uniform(0.7, 2.0)), timbre,
                              int(rng.integers(70, 111)))
    else:  # ensemble: the given timbre carries the melody over chords, bass and drums
        drums = str(rng.choice([p for p in DRUM_PATTERNS if p != "none"]))
        arr = Arrangement(
            tonic=tonic, mode=mode, tempo=tempo,
            progression=PROGRESSIONS[str(rng.choice(list(PROGRESSIONS)))],
            chord_timbre=str(rng.choice(SUSTAINED_TIMBRES + ("fm",))), chord_size=int(rng.choice([3, 4])),
            comping=str(rng.choice(COMPING[:-1])), bass_timbre="plucked",
            bass_pattern=str(rng.choice(["root", "octaves", "walking"])), melody_timbre=timbre,
            melody_density=float(rng.uniform(0.7, 2.0)), drums=drums, swing=float(rng.choice([0.0, 0.0, 0.3])),
            drum_gain=float(rng.uniform(0.3, 0.7)))
        audio, arr_labels = render_arrangement(rng, arr, seconds, sr)
        return audio, _phrase_labels(style, timbre, tonic, mode, tempo, arr_labels["notes"], drums, sr, seconds)
    notes = [n for n in notes if n.onset < seconds]
    audio = _normalise(render_notes(rng, notes, seconds, sr))
    return audio, _phrase_labels(style, timbre, tonic, mode, tempo, [n.as_label() for n in notes], drums, sr, seconds)


def _phrase_labels(style, timbre, tonic, mode, tempo, notes, drums, sr, seconds) -> dict:
    return {"style": style, "timbre": timbre, "key": f"{PITCH_CLASSES[tonic]} {mode}", "tonic": tonic,
            "mode": mode, "tempo": round(float(tempo), 3), "notes": notes, "drums": drums, "sample_rate": sr,
            "seconds": seconds}
