"""Zero-shot evaluation sets in their published layouts: LJ Speech, VCTK (mic choice) and ESC-50 (folds).

* LJ Speech 1.1: ``<root>/metadata.csv`` (``id|transcription|normalized transcription``, no header,
  no quoting) and ``<root>/wavs/<id>.wav`` (22.05 kHz); the normalized column is the reference.
* VCTK 0.92: ``<root>/txt/<spk>/<spk>_NNN.txt`` and ``<root>/wav48_silence_trimmed/<spk>/<spk>_NNN_mic{1,2}.flac``
  (48 kHz); utterances without the chosen mic's file (or without text, as p315) are skipped and counted.
* ESC-50: ``<root>/meta/esc50.csv`` (filename, fold, target, category, ...) and ``<root>/audio/``.

Audio is read with soundfile, mixed to mono and resampled to 16 kHz with torchaudio.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import soundfile as sf
import torch

from upstream_merged.downstream.readers import ESC50_FOLDS
from upstream_merged.downstream.utterance_task import load_audio as utterance_audio

logger = logging.getLogger(__name__)

TARGET_RATE = 16000
VCTK_MICS = ("mic1", "mic2")
VCTK_AUDIO = "wav48_silence_trimmed"


@dataclass(frozen=True)
class Item:
    """One evaluation example: audio file plus its reference (transcript or class name)."""

    uid: str
    path: Path
    reference: str


def load_audio(path: Path, rate: int = TARGET_RATE) -> torch.Tensor:
    """A mono float32 waveform of ``path`` at ``rate`` Hz (the music/event tasks' loader, torchaudio resampling)."""
    try:
        return torch.from_numpy(utterance_audio(path, sample_rate=rate))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise ValueError(f"cannot read audio {path}: {err}") from None


def _limit(items: List[Item], limit: Optional[int]) -> List[Item]:
    return items if limit is None else items[:limit]


def read_ljspeech(root: Path, limit: Optional[int] = None) -> List[Item]:
    """LJ Speech items in metadata.csv order (normalized transcription as reference)."""
    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} is missing: an LJ Speech root holds metadata.csv and wavs/ "
                                f"(tools/make_ljspeech.py writes a synthetic one)")
    items = []
    for number, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 3:
            raise ValueError(f"{meta}:{number}: expected 'id|transcription|normalized transcription', got {line!r}")
        wav = root / "wavs" / f"{parts[0]}.wav"
        if not wav.is_file():
            raise FileNotFoundError(f"{meta}:{number}: audio {wav} is missing")
        items.append(Item(parts[0], wav, parts[2]))
    return _limit(items, limit)


def read_vctk(root: Path, mic: str = "mic1", speakers: Optional[Sequence[str]] = None,
              limit: Optional[int] = None) -> List[Item]:
    """VCTK items (sorted by speaker and utterance) recorded with ``mic``."""
    root = Path(root)
    if mic not in VCTK_MICS:
        raise ValueError(f"VCTK mic {mic!r} is not one of {VCTK_MICS}")
    text_root, audio_root = root / "txt", root / VCTK_AUDIO
    if not text_root.is_dir() or not audio_root.is_dir():
        raise FileNotFoundError(f"{root}: a VCTK root holds txt/ and {VCTK_AUDIO}/ (tools/make_vctk.py writes a "
                                f"synthetic one)")
    known = sorted(p.name for p in audio_root.iterdir() if p.is_dir())
    chosen = list(speakers) if speakers else known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ValueError(f"VCTK speakers {unknown} have no directory in {audio_root}")
    items, skipped = [], 0
    for speaker in chosen:
        for flac in sorted((audio_root / speaker).glob(f"{speaker}_*_{mic}.flac")):
            utt = flac.name[: -len(f"_{mic}.flac")]
            text = text_root / speaker / f"{utt}.txt"
            if not text.is_file():
                skipped += 1
                continue
            items.append(Item(f"{utt}_{mic}", flac, text.read_text(encoding="utf-8").strip()))
    if skipped:
        logger.info("VCTK %s: %d recordings without a transcript skipped", root, skipped)
    return _limit(items, limit)


def read_esc50_items(root: Path, folds: Optional[Sequence[int]] = None, limit: Optional[int] = None) -> List[Item]:
    """ESC-50 clips of ``folds`` (default all five), category name as reference."""
    root = Path(root)
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} is missing: an ESC-50 root holds meta/esc50.csv and audio/ "
                                f"(tools/make_esc50.py writes a synthetic one)")
    folds = list(folds) if folds else list(ESC50_FOLDS)
    bad = sorted(set(folds) - set(ESC50_FOLDS))
    if bad:
        raise ValueError(f"ESC-50 folds {bad} do not exist (folds are {list(ESC50_FOLDS)})")
    with open(meta, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["fold"]) in folds]
    items = [Item(r["filename"].rsplit(".", 1)[0], root / "audio" / r["filename"], r["category"])
             for r in sorted(rows, key=lambda r: r["filename"])]
    return _limit(items, limit)
