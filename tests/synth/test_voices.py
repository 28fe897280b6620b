"""upstream_merged.synth.voices: three engines, independent speaker traits, trimmed silence, determinism."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile

from upstream_merged.synth import voices
from upstream_merged.synth.voices import Voice


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
