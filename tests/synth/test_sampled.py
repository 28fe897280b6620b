"""upstream_merged.synth.sampled: General MIDI scores rendered by fluidsynth, notes at the asked pitch."""
from __future__ import annotations

import mido
import numpy as np
import pytest

from upstream_merged.synth import music, sampled
from upstream_merged.synth.music import Note


def _f0(audio: np.ndarray, rate: int = 16000) -> float:
    """Fundamental by autocorrelation over 60-1000 Hz of the steady part of a note."""
    x = audio[int(0.2 * rate):int(1.2 * rate)]
    x = x - x.mean()
    corr = np.correlate(x, x, mode="full")[len(x) - 1:]
    lo, hi = rate // 1000, rate // 60
    window = corr[lo:hi]
    peaks = [i for i in range(1, len(window) - 1) if window[i - 1] < window[i] >= window[i + 1]]
    best = max(window[i] for i in peaks)
    return rate / (lo + next(i for i in peaks if window[i] >= 0.9 * best))  # shortest period: no octave error


@pytest.mark.parametrize("program,pitch", [(73, 72), (19, 60), (0, 57)])  # flute C5, organ C4, piano A3
def test_a_rendered_note_sounds_at_its_midi_pitch(program, pitch, tmp_path):
    audio = sampled.render_note(program, pitch, 100, 2.0, tmp_path / "n.wav")
    assert audio.shape == (32000,) and np.abs(audio).max() == pytest.approx(music.PEAK, rel=1e-3)
    f0 = _f0(audio)
    expected = music.midi_to_hz(pitch)
    assert abs(1200 * np.log2(f0 / expected)) < 60  # within 60 cents
    assert np.array_equal(audio, sampled.render_note(program, pitch, 100, 2.0))


def test_midi_file_holds_each_part_on_its_program_and_the_drums_on_channel_10(tmp_path):
    parts = [sampled.Part(40, (Note(0.0, 0.5, 60, 90, ""), Note(0.5, 0.5, 64, 80, ""))),
             sampled.Part(33, (Note(0.0, 1.0, 36, 100, ""),))]
    sampled.write_midi(parts, [(0.0, 36, 110), (0.5, 38, 90)], 120.0, tmp_path / "x.mid")
    midi = mido.MidiFile(str(tmp_path / "x.mid"))
    programs = [(m.channel, m.program) for t in midi.tracks for m in t if m.type == "program_change"]
    assert programs == [(0, 40), (1, 33)]
    ons = [(m.channel, m.note) for t in midi.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert sorted(ons) == [(0, 60), (0, 64), (1, 36), (9, 36), (9, 38)]
    assert midi.length == pytest.approx(1.0, abs=0.05)


def test_phrases_are_seeded_labelled_and_use_the_family_programs():
    a, labels = sampled.render_phrase(np.random.default_rng([0, 5]), 3.0)
    b, _ = sampled.render_phrase(np.random.default_rng([0, 5]), 3.0)
    assert np.array_equal(a, b) and a.shape == (48000,)
    assert labels["program"] in sampled.FAMILIES[labels["family"]] and labels["key"] in music.KEYS
    for style in music.STYLES:
        parts, drums, tempo, lab = sampled.compose_phrase(np.random.default_rng(1), 4.0, family="brass", style=style)
        assert lab["style"] == style and parts[0].program in sampled.FAMILIES["brass"]
        assert all(n.onset < 4.0 for p in parts for n in p.notes) and (bool(drums) == (style == "ensemble"))
    with pytest.raises(ValueError, match="family='kazoo'"):
        sampled.compose_phrase(np.random.default_rng(1), 4.0, family="kazoo")


def test_missing_fluidsynth_names_the_packages(monkeypatch):
    monkeypatch.setattr(sampled.shutil, "which", lambda name: None)
    with pytest.raises(sampled.FluidsynthMissingError, match="fluid-soundfont-gm"):
        sampled.soundfont()


def test_render_notes_in_one_run_equals_one_run_per_note():
    notes = [(73, 72, 100), (19, 60, 50), (0, 57, 127), (32, 40, 75)]
    batch = sampled.render_notes(notes, 2.0)
    assert [a.shape for a in batch] == [(32000,)] * 4
    for (program, pitch, velocity), audio in zip(notes, batch):
        single = sampled.render_note(program, pitch, velocity, 2.0)
        # the same note (up to fluidsynth's voice state), nothing leaking in from its neighbours
        assert np.corrcoef(audio, single)[0, 1] > 0.9995
        assert np.abs(audio[:80]).max() <= np.abs(single[:80]).max() + 0.01  # no tail of the previous note
        assert abs(1200 * np.log2(_f0(audio) / music.midi_to_hz(pitch))) < 60
    assert sampled.render_notes([], 2.0) == []
