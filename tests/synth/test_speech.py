"""upstream_merged.synth.speech: seeded sentences and speakers, deterministic corpus, synth: calibration sets."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from upstream_merged.synth import speech
from upstream_merged.synth.calibration import CalibrationSpecError, materialize_calibration, parse_spec

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                  reason="espeak-ng and sox are required (tools/setup_env.sh installs them)")


def test_sentences_are_seeded():
    a = [speech.sentence(np.random.default_rng(3)) for _ in range(3)]
    assert a == [speech.sentence(np.random.default_rng(3)) for _ in range(3)]
    texts = {speech.sentence(np.random.default_rng(seed)) for seed in range(20)}
    assert len(texts) > 15 and all(t.endswith((".", "?")) for t in texts)


def test_speaker_from_index_is_unchanged_for_the_dataset_tools():
    assert speech.Speaker.from_index(0) == speech.Speaker("en-us", 30, 140)
    assert speech.Speaker.from_index(13) == speech.Speaker("en-gb+m3", 51, 199)


def test_utterance_stream_varies_voices_speeds_pitches():
    utts = [u for _, u in zip(range(60), speech.utterances(0))]
    assert utts[:5] == [u for _, u in zip(range(5), speech.utterances(0))]
    assert len({u.voice for u in utts}) > 20 and len({u.speed for u in utts}) > 20 and len({u.pitch for u in utts}) > 20
    assert {u.kind for u in utts} == {"sentence", "words"}


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.wav"))}


@needs_espeak
def test_speech_corpus_is_deterministic_and_independent_of_workers(tmp_path):
    rows_a = speech.write_speech_corpus(tmp_path / "a", minutes=0.15, seed=1, workers=1, heldout_share=0.5)
    rows_b = speech.write_speech_corpus(tmp_path / "b", minutes=0.15, seed=1, workers=2, heldout_share=0.5)
    assert rows_a == rows_b and sum(r["seconds"] for r in rows_a) >= 9.0
    assert _digests(tmp_path / "a" / "speech") == _digests(tmp_path / "b" / "speech")
    assert {r["split"] for r in rows_a} == {"train", "heldout"}
    import soundfile

    info = soundfile.info(str(tmp_path / "a" / rows_a[0]["path"]))
    assert (info.samplerate, info.channels) == (16000, 1)


def test_calibration_spec_parsing():
    assert parse_spec("synth:speech=3,music=0,seconds=2.5") == {"speech": 3, "music": 0, "seconds": 2.5, "seed": 0}
    for bad in ("speech=3", "synth:voices=3", "synth:speech=x", "synth:speech"):
        with pytest.raises(CalibrationSpecError):
            parse_spec(bad)


@needs_espeak
def test_synth_calibration_manifest_is_built_once(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSTREAM_MERGED_CACHE", str(tmp_path / "cache"))
    manifest = materialize_calibration("synth:speech=3,music=0")
    names = manifest.read_text().split()
    assert names == ["speech_000.wav", "speech_001.wav", "speech_002.wav"]
    before = _digests(manifest.parent)
    assert materialize_calibration("synth:speech=3,music=0") == manifest and _digests(manifest.parent) == before
