"""Calibration audio: files from directories or a manifest, Hugging Face datasets, or a seeded synthetic speech/music mix.

Clips are listed once, in a seeded order, before any audio is read; each keeps its position in that
order (``index``), which seeds its frame subsample, so statistics do not depend on batching or on
how clips are split across ranks. Audio is read one batch at a time and never written anywhere.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")
SYNTHETIC_RATE = 16000


class CalibrationError(ValueError):
    """Calibration audio is missing, unreadable or unusable (the message says what to change)."""


@dataclass(frozen=True)
class ClipRef:
    """One calibration clip: a file, or a synthetic clip identified by kind and seed."""

    index: int
    path: Optional[str] = None
    kind: str = "file"  # "file", "speech" or "music"
    seed: int = 0
    seconds: float = 0.0  # synthetic length; files are cropped to the recipe's clip_seconds
    source: str = ""  # where the clip comes from (dir:..., manifest, dataset:..., synthetic:speech ...), for the report


def audio_files(directory: Path) -> List[Path]:
    """Every .wav/.flac below ``directory``, sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CalibrationError(f"calibration directory not found: {directory}")
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def manifest_files(manifest: Path) -> List[Path]:
    """Paths listed in a manifest: one per line, relative to the manifest's folder (text after a tab ignored).

    A fairseq-style .tsv whose first line is a directory uses that directory as the root.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise CalibrationError(f"calibration manifest not found: {manifest}")
    lines = [line.split("\t")[0].strip() for line in manifest.read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    root = manifest.parent
    if lines and Path(lines[0]).is_dir() and Path(lines[0]).suffix.lower() not in AUDIO_SUFFIXES:
        root = Path(lines[0])
        lines = lines[1:]
    paths = [(root / line) if not Path(line).is_absolute() else Path(line) for line in lines]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise CalibrationError(f"manifest {manifest} lists {len(missing)} missing file(s), e.g. {missing[0]}")
    return paths


def list_clips(calibration, seed: int) -> List[ClipRef]:
    """The calibration clips of a recipe's ``calibration`` section, in their seeded global order."""
    refs: List[ClipRef] = []
    for directory in calibration.dirs:
        found = audio_files(Path(directory))
        if not found:
            raise CalibrationError(f"no .wav/.flac files under calibration directory {directory}")
        refs.extend(ClipRef(0, path=str(p), source=f"dir:{directory}") for p in found)
    if calibration.manifest:
        manifest = calibration.manifest
        if manifest.startswith("synth:"):  # a seeded synthetic set, written into the cache on first use
            from upstream_merged.synth.calibration import materialize_calibration

            manifest = materialize_calibration(manifest)
        refs.extend(ClipRef(0, path=str(p), source=f"manifest:{calibration.manifest}") for p in manifest_files(Path(manifest)))
    for entry in calibration.datasets:
        from upstream_merged.permutation.calibration_datasets import dataset_clips, dataset_label

        refs.extend(ClipRef(0, path=str(p), source=f"dataset:{dataset_label(entry)}")
                    for p in dataset_clips(entry, seed, calibration.clip_seconds))
    synthetic = calibration.synthetic
    if synthetic is not None:
        speech = int(round(synthetic.clips * synthetic.speech_share))
        for n in range(synthetic.clips):
            kind = "speech" if n < speech else "music"
            refs.append(ClipRef(0, kind=kind, seed=seed * 100_003 + n, seconds=synthetic.seconds, source=f"synthetic:{kind}"))
    if not refs:
        raise CalibrationError("calibration has no audio: set calibration.dirs, manifest, datasets or synthetic")
    if calibration.shuffle:
        random.Random(seed).shuffle(refs)  # domains are mixed, as the seed shuffles speech and music together
    if calibration.max_clips is not None:
        refs = refs[: calibration.max_clips]
    if calibration.max_seconds is not None:
        refs = _within_budget(refs, calibration.max_seconds, calibration.clip_seconds)
    return [ClipRef(i, r.path, r.kind, r.seed, r.seconds, r.source) for i, r in enumerate(refs)]


def _within_budget(refs: Sequence[ClipRef], budget: float, clip_seconds: float) -> List[ClipRef]:
    kept, total = [], 0.0
    for ref in refs:
        if total >= budget:
            break
        kept.append(ref)
        total += min(clip_duration(ref), clip_seconds)
    return kept


def clip_duration(ref: ClipRef) -> float:
    """Length of a clip in seconds (file header only)."""
    if ref.kind != "file":
        return ref.seconds
    import soundfile

    info = soundfile.info(ref.path)
    return info.frames / info.samplerate


def load_clip(ref: ClipRef, clip_seconds: float) -> Tuple[np.ndarray, int]:
    """The clip as mono float32 samples (cropped to ``clip_seconds`` from the start) and its sample rate."""
    if ref.kind != "file":
        return synthesize(ref.kind, ref.seed, min(ref.seconds, clip_seconds)), SYNTHETIC_RATE
    import soundfile

    try:
        info = soundfile.info(ref.path)
        frames = min(info.frames, int(round(clip_seconds * info.samplerate)))
        data, rate = soundfile.read(ref.path, frames=frames, dtype="float32", always_2d=True)
    except RuntimeError as err:  # soundfile raises LibsndfileError (a RuntimeError) on unreadable files
        raise CalibrationError(f"cannot read calibration audio {ref.path}: {err}") from None
    return data.mean(axis=1).astype(np.float32), int(rate)


# ---------------------------------------------------------------------------------------------------
# Synthetic calibration audio: deterministic, needs no files. Speech-like = glottal pulse trains through
# moving formant resonators with fricative noise and pauses; music-like = notes and chords with harmonic
# partials, envelopes and percussive hits. Good enough to excite both domains of a model; use real
# corpora (calibration.dirs) for a faithful reproduction of the paper.

def synthesize(kind: str, seed: int, seconds: float, rate: int = SYNTHETIC_RATE) -> np.ndarray:
    """A seeded synthetic clip of ``kind`` ('speech' or 'music'), float32 in [-1, 1]."""
    rng = np.random.default_rng([seed, 0 if kind == "speech" else 1])
    samples = max(int(round(seconds * rate)), 1)
    if kind == "speech":
        wave = _speech(rng, samples, rate)
    elif kind == "music":
        wave = _music(rng, samples, rate)
    else:
        raise CalibrationError(f"unknown synthetic audio kind {kind!r} (speech or music)")
    peak = float(np.abs(wave).max())
    return (wave / peak * 0.5 if peak > 0 else wave).astype(np.float32)


def _resonate(signal: np.ndarray, freq: float, bandwidth: float, rate: int) -> np.ndarray:
    """Two-pole resonator (a formant)."""
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bandwidth / rate)
    theta = 2 * np.pi * freq / rate
    return lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], signal)


_VOWELS = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410), (440, 1020, 2240)]


def _speech(rng: np.random.Generator, samples: int, rate: int) -> np.ndarray:
    out = np.zeros(samples)
    base_f0 = rng.uniform(90, 240)
    position = int(rng.uniform(0, 0.15) * rate)
    while position < samples:
        length = int(rng.uniform(0.08, 0.28) * rate)
        stop = min(position + length, samples)
        n = stop - position
        if n <= 0:
            break
        choice = rng.random()
        if choice < 0.65:  # voiced syllable: pulse train through three formants
            f0 = base_f0 * (1 + 0.15 * np.sin(np.linspace(0, rng.uniform(1, 4), n)) + 0.05 * rng.standard_normal())
            phase = np.cumsum(f0 / rate)
            pulses = np.diff(np.floor(phase), prepend=0.0)
            formants = _VOWELS[rng.integers(len(_VOWELS))]
            voiced = sum(_resonate(pulses, f * rng.uniform(0.9, 1.1), 80 + 40 * k, rate) / (k + 1) for k, f in enumerate(formants))
            out[position:stop] += voiced * np.hanning(n)
        elif choice < 0.85:  # fricative: high-passed noise
            noise = rng.standard_normal(n)
            out[position:stop] += 0.3 * np.diff(noise, prepend=0.0) * np.hanning(n)
        position = stop + int(rng.uniform(0.0, 0.12) * rate)  # pause
    return out + 1e-3 * rng.standard_normal(samples)


def _music(rng: np.random.Generator, samples: int, rate: int) -> np.ndarray:
    out = np.zeros(samples)
    tempo = rng.uniform(0.15, 0.5)  # seconds per beat
    root = rng.uniform(110, 330)
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    brightness = rng.uniform(0.4, 0.8)
    position = 0
    while position < samples:
        length = int(tempo * rate * rng.choice([1, 1, 2]))
        stop = min(position + length, samples)
        n = stop - position
        t = np.arange(n) / rate
        envelope = np.minimum(1.0, t / 0.01) * np.exp(-t * rng.uniform(2, 6))
        notes = rng.choice(scale, size=rng.integers(1, 4), replace=False)
        for step in notes:
            freq = root * 2 ** (step / 12)
            for harmonic in range(1, 7):
                if freq * harmonic < rate / 2:
                    out[position:stop] += brightness ** harmonic * np.sin(2 * np.pi * freq * harmonic * t) * envelope
        if rng.random() < 0.5:  # percussive hit: decaying noise burst or a kick sweep
            hit = min(n, int(0.08 * rate))
            decay = np.exp(-np.arange(hit) / (0.015 * rate))
            if rng.random() < 0.5:
                out[position:position + hit] += 0.8 * rng.standard_normal(hit) * decay
            else:
                sweep = np.sin(2 * np.pi * np.cumsum(np.linspace(150, 40, hit)) / rate)
                out[position:position + hit] += 1.5 * sweep * decay
        position = stop
    return out + 1e-3 * rng.standard_normal(samples)


def batches(refs: Sequence[ClipRef], batch_size: int) -> Iterable[List[ClipRef]]:
    """Consecutive batches of clip references."""
    for start in range(0, len(refs), batch_size):
        yield list(refs[start:start + batch_size])
