"""Music synthesizer: deterministic, notes at the right pitch, labels that describe the audio."""
from __future__ import annotations

import numpy as np
import pytest

from upstream_merged.synth import music

SR = 16000


def estimate_f0(audio: np.ndarray, sr: int) -> float:
    """Lowest spectral peak within 20% of the strongest one (zero-padded Hann FFT of the first second)."""
    x = audio[: sr]
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), 1 << 20))
    freqs = np.fft.rfftfreq(1 << 20, 1 / sr)
    spectrum[freqs < 20] = 0.0
    peaks = np.where((spectrum[1:-1] > spectrum[:-2]) & (spectrum[1:-1] >= spectrum[2:])
                     & (spectrum[1:-1] > 0.2 * spectrum.max()))[0] + 1
    return float(freqs[peaks[0]])


@pytest.mark.parametrize("timbre", music.TIMBRES)
def test_note_pitch_matches_f0(timbre):
    for pitch in (40, 57, 69, 81, 93):
        rng = np.random.default_rng(pitch)
        note = music.render_note(rng, pitch, timbre, 1.2, SR, velocity=int(rng.integers(30, 128)))
        f0 = music.midi_to_hz(pitch)
        # 2% is a third of a semitone: a wrong note or octave fails
        assert estimate_f0(note, SR) == pytest.approx(f0, rel=0.02), (timbre, pitch)


def test_note_format_and_velocity():
    note = music.render_note(np.random.default_rng(0), 60, "plucked", 0.5, SR, velocity=127)
    assert note.dtype == np.float32 and note.shape == (8000,)
    assert np.abs(note).max() == pytest.approx(1.0, abs=1e-6)
    soft = music.render_note(np.random.default_rng(0), 60, "plucked", 0.5, SR, velocity=32)
    assert np.abs(soft).max() == pytest.approx(32 / 127, abs=1e-6)
    # notes fade out at their end (no click when a sustained note is cut)
    organ = music.render_note(np.random.default_rng(0), 60, "organ", 0.5, SR)
    assert abs(organ[-1]) < 1e-3


def test_deterministic_given_rng():
    for style in music.STYLES:
        a, la = music.render_phrase(np.random.default_rng(7), 3.0, SR, style=style)
        b, lb = music.render_phrase(np.random.default_rng(7), 3.0, SR, style=style)
        c, _ = music.render_phrase(np.random.default_rng(8), 3.0, SR, style=style)
        assert np.array_equal(a, b) and la == lb, style
        assert not np.array_equal(a, c), style
    n1 = music.render_note(np.random.default_rng(1), 64, "bowed", 0.3, SR)
    n2 = music.render_note(np.random.default_rng(1), 64, "bowed", 0.3, SR)
    assert np.array_equal(n1, n2)


def test_fixing_one_argument_keeps_the_other_draws():
    _, free = music.render_phrase(np.random.default_rng(3), 2.0, SR)
    _, fixed = music.render_phrase(np.random.default_rng(3), 2.0, SR, timbre="organ")
    assert (free["key"], free["tempo"], free["style"]) == (fixed["key"], fixed["tempo"], fixed["style"])
    assert fixed["timbre"] == "organ"


@pytest.mark.parametrize("style", music.STYLES)
def test_phrase_labels_consistent(style):
    rng = np.random.default_rng(11)
    audio, labels = music.render_phrase(rng, 3.0, SR, timbre="reed", key="E minor", tempo=120, style=style)
    assert audio.dtype == np.float32 and audio.shape == (3 * SR,) and np.isfinite(audio).all()
    assert np.abs(audio).max() == pytest.approx(music.PEAK, abs=1e-6)
    assert (labels["style"], labels["timbre"], labels["key"], labels["tempo"]) == (style, "reed", "E minor", 120.0)
    assert labels["tonic"] == 4 and labels["mode"] == "minor" and labels["sample_rate"] == SR
    assert labels["notes"], style
    scale = {(4 + step) % 12 for step in music.SCALES["minor"]}
    for note in labels["notes"]:
        assert 0 <= note["onset"] < 3.0 and note["duration"] > 0
        assert 1 <= note["velocity"] <= 127 and note["timbre"] in music.TIMBRES
        assert note["pitch"] % 12 in scale, (style, note)  # diatonic: every note in E minor
    if style != "ensemble":
        assert {n["timbre"] for n in labels["notes"]} == {"reed"}
        assert labels["drums"] == "none"
    else:
        assert labels["drums"] in music.DRUM_PATTERNS and labels["drums"] != "none"


def test_labels_describe_the_audio():
    audio, labels = music.render_phrase(np.random.default_rng(5), 4.0, SR, timbre="organ", tempo=60, style="notes")
    first = labels["notes"][0]
    start = int(first["onset"] * SR)
    segment = audio[start:start + int(min(first["duration"], 0.5) * SR)]
    assert estimate_f0(segment, SR) == pytest.approx(music.midi_to_hz(first["pitch"]), rel=0.02)
    # silence where no note sounds (gaps are part of the 'notes' style; 0.1 s after the release tail)
    ends = sorted((n["onset"], n["onset"] + n["duration"] + 0.08) for n in labels["notes"])
    for (_, end), (next_onset, _) in zip(ends, ends[1:]):
        if next_onset - end > 0.15:
            gap = audio[int((end + 0.02) * SR): int((next_onset - 0.01) * SR)]
            assert np.abs(gap).max() < 1e-6


def test_drums_hit_on_the_grid():
    drums = music.render_drums(np.random.default_rng(0), 4.0, SR, tempo=120, pattern="disco")
    assert drums.dtype == np.float32 and drums.shape == (4 * SR,)
    # four-on-the-floor: energy right after each beat, far more than right before it
    beat = SR // 2
    after = [np.abs(drums[b * beat + 80: b * beat + 800]).mean() for b in range(1, 8)]
    before = [np.abs(drums[b * beat - 1400: b * beat - 700]).mean() for b in range(1, 8)]
    assert min(after) > 3 * max(before)
    assert not music.render_drums(np.random.default_rng(0), 1.0, SR, 120, "none").any()


def test_invalid_arguments_name_the_argument():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="timbre='kazoo'"):
        music.render_note(rng, 60, "kazoo", 1.0)
    with pytest.raises(ValueError, match="style='polka'"):
        music.render_phrase(rng, 1.0, style="polka")
    with pytest.raises(ValueError, match="key='H major'"):
        music.render_phrase(rng, 1.0, key="H major")
    with pytest.raises(ValueError, match="velocity"):
        music.render_note(rng, 60, "fm", 1.0, velocity=200)


@pytest.mark.parametrize("timbre", music.TIMBRES)
def test_notes_cut_to_a_few_samples_are_well_formed(timbre):
    # phrases truncate the last notes at the clip's end, down to a single sample
    for n in (1, 2, 5, 9, 50):
        for pitch in (36, 96):
            note = music.render_note(np.random.default_rng(0), pitch, timbre, n / SR, SR)
            assert note.shape == (n,) and np.isfinite(note).all()


@pytest.mark.parametrize("sr", [22050, 44100])
def test_other_sample_rates(sr):
    audio, labels = music.render_phrase(np.random.default_rng(2), 1.5, sr, style="ensemble")
    assert audio.shape == (int(1.5 * sr),) and labels["sample_rate"] == sr
    assert np.abs(audio).max() == pytest.approx(music.PEAK, abs=1e-6)
