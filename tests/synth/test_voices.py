"""upstream_merged.synth.voices: three engines, independent speaker traits, trimmed silence, determinism, distinct speakers, batch synthesis."""
from __future__ import annotations

import collections
import itertools
import shutil
from dataclasses import replace

import numpy as np
import pytest
import soundfile
import soundfile as sf
from scipy.stats import spearmanr

from upstream_merged.synth import voices
from upstream_merged.synth.speech import Speaker
from upstream_merged.synth.voices import Voice

ENGINES_PRESENT = all(shutil.which(p) for p in ("espeak-ng", "flite", "text2wave", "festival", "sox"))
needs_engines = pytest.mark.skipif(not ENGINES_PRESENT, reason="espeak-ng, flite, festival and sox are required "
                                                                "(tools/setup_env.sh installs them)")


@pytest.mark.parametrize("engine", voices.ENGINES)
def test_every_engine_speaks_16k_mono_with_silence_trimmed_deterministically(engine, tmp_path):
    voice = Voice(engine, voices.engine_names()[engine][0])
    seconds = voices.synthesize("open the window please", voice, tmp_path / "a.wav")
    voices.synthesize("open the window please", voice, tmp_path / "b.wav")
    audio, rate = soundfile.read(str(tmp_path / "a.wav"))
    assert rate == 16000 and audio.ndim == 1 and 0.5 < seconds < 4.0
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    edge = int(0.01 * rate)
    rms = np.sqrt(np.mean(audio ** 2))
    # trimmed: the clip starts and ends close to speech, not in 100+ ms of digital silence
    assert np.abs(audio[:edge * 5]).max() > 0.01 * rms or np.abs(audio[-edge * 5:]).max() > 0.01 * rms


def test_speaker_traits_change_the_audio_independently(tmp_path):
    base = Voice("flite", "kal16")
    durations = {}
    for name, voice in {"base": base, "slow": Voice("flite", "kal16", rate=0.7),
                        "pitch": Voice("flite", "kal16", pitch_cents=400),
                        "formant": Voice("flite", "kal16", formant=1.15)}.items():
        durations[name] = voices.synthesize("seven green bottles", voice, tmp_path / f"{name}.wav")
    assert durations["slow"] > 1.25 * durations["base"]  # tempo 0.7 stretches by ~1/0.7
    assert abs(durations["pitch"] - durations["base"]) < 0.1  # pitch shift keeps the duration
    assert abs(durations["formant"] - durations["base"] / 1.15) < 0.1  # speed scales duration, pitch restored
    assert Voice("flite", "kal16", formant=1.1).sox_effects()[:4] == ["speed", "1.1000", "pitch", "-165"]


def test_distinct_voices_spread_every_trait_and_no_two_speakers_coincide():
    speakers = voices.distinct_voices(48, seed=0)
    assert len({(v.engine, v.name, v.pitch_cents, v.formant, v.rate) for v in speakers}) == 48
    assert {v.engine for v in speakers} == set(voices.ENGINES)
    pitch = np.array([v.pitch_cents for v in speakers])
    formant = np.array([v.formant for v in speakers])
    rate = np.array([v.rate for v in speakers])
    # every trait covers its range evenly, and the traits are not tied to each other
    assert pitch.max() - pitch.min() > 800 and len(set(pitch)) == 48
    assert abs(np.corrcoef(pitch, formant)[0, 1]) < 0.5 and abs(np.corrcoef(pitch, rate)[0, 1]) < 0.5
    gaps = [min(abs(pitch[i] - pitch[j]) / 900 + abs(formant[i] - formant[j]) / 0.3 + abs(rate[i] - rate[j]) / 0.54
                for j in range(48) if j != i) for i in range(48)]
    assert min(gaps) > 0.02  # no two speakers share all three continuous traits
    assert voices.distinct_voices(48, seed=0) == speakers and voices.distinct_voices(48, seed=1) != speakers


def test_a_missing_engine_names_the_apt_packages(monkeypatch):
    monkeypatch.setattr(voices.shutil, "which", lambda name: None if name == "text2wave" else "/usr/bin/" + name)
    with pytest.raises(voices.ToolMissingError, match="apt-get install -y festival festvox-kallpc16k"):
        voices.require_programs("text2wave", "sox")


@pytest.mark.parametrize("count,seed", [(40, 0), (60, 0), (60, 1)])
def test_distinct_voices_have_no_near_duplicates(count, seed):
    speakers = voices.distinct_voices(count, seed)
    assert speakers == voices.distinct_voices(count, seed)
    assert len(set(speakers)) == count
    # no two speakers of one timbre (the same recorded/modelled voice) within 0.2 of the trait spans
    assert voices.near_duplicates(speakers, 0.2) == []
    # every speaker of the 25 timbres is used about equally often: no timbre takes a big share
    per_timbre = collections.Counter(voices.timbre(v) for v in speakers)
    assert max(per_timbre.values()) <= int(np.ceil(count * 0.5 / 5)) + 1
    assert {v.engine for v in speakers} == set(voices.ENGINES)


def test_distinct_voice_traits_are_spread_and_independent():
    speakers = voices.distinct_voices(60, 0)
    pitch = np.array([v.pitch_cents for v in speakers])
    formant = np.array([v.formant for v in speakers])
    rate = np.array([v.rate for v in speakers])
    for values, (low, high) in ((pitch, voices.PITCH_RANGE), (formant, voices.FORMANT_RANGE), (rate, voices.RATE_RANGE)):
        assert len(np.unique(values)) == 60 and values.min() == pytest.approx(low) and values.max() == pytest.approx(high)
        # an evenly spaced grid: no clusters (the old Speaker.from_index had 3 pitch clusters)
        gaps = np.diff(np.sort(values))
        assert gaps.max() < 2.5 * (high - low) / 59
    for a, b in itertools.combinations((pitch, formant, rate), 2):
        assert abs(spearmanr(a, b)[0]) < 0.35
    assert {v.espeak_pitch for v in speakers} == {50}  # pitch_cents alone sets the pitch offset
    accents = {v.name.split("+")[0] for v in speakers if v.engine == "espeak"}
    assert len(accents) == len(voices.ESPEAK_ACCENTS)


def test_near_duplicates_finds_a_copied_speaker():
    speakers = voices.distinct_voices(20, 0)
    twin = replace(speakers[3], pitch_cents=speakers[3].pitch_cents + 20, rate=speakers[3].rate + 0.01)
    found = voices.near_duplicates(speakers + [twin], 0.2)
    assert [(i, j) for i, j, _ in found] == [(3, 20)]
    # an alias of the same recorded speaker counts as the same timbre
    assert voices.timbre(Voice("flite", "kal16")) == voices.timbre(Voice("festival", "kal_diphone"))


def test_old_speaker_from_index_is_kept_for_old_sets():
    assert Speaker.from_index(0) == Speaker("en-us", 30, 140)
    pitches = sorted(Speaker.from_index(i).pitch for i in range(16))
    assert max(np.diff(pitches)) > 10  # the clusters the docstring now warns about


@needs_engines
def test_synthesize_many_equals_synthesize(tmp_path):
    jobs = [("yes.", Voice("espeak", "en-gb+f2", pitch_cents=120, formant=1.05, rate=0.9), tmp_path / "a.wav", ()),
            ("no.", Voice("flite", "awb", pitch_cents=-80, formant=0.95), tmp_path / "b.wav", ("gain", "-3")),
            ("the old dog sees a red river.", Voice("festival", "kal_diphone", rate=1.1), tmp_path / "c.wav", ()),
            ("go.", Voice("festival", "kal_diphone", pitch_cents=200), tmp_path / "d.wav", ())]
    done = []
    seconds = voices.synthesize_many(jobs, workers=2, festival_chunk=2, progress=done.append)
    assert sum(done) == len(jobs) and all(s > 0.1 for s in seconds)
    for text, voice, path, effects in jobs:
        single = tmp_path / f"single_{path.name}"
        assert voices.synthesize(text, voice, single, extra_effects=effects) == pytest.approx(seconds[jobs.index((text, voice, path, effects))])
        assert np.array_equal(sf.read(path)[0], sf.read(single)[0]), path.name
