"""Synthesize an LJ Speech 1.1-layout corpus (one espeak-ng speaker) for zero-shot ASR evaluation.

    <out>/metadata.csv        "<id>|<transcription>|<normalized transcription>" per line (LJ Speech's format:
                              no header, '|' separated; abbreviations such as "Mr." expanded in column 3)
    <out>/wavs/<id>.wav       22.05 kHz, 16-bit mono (LJ Speech's rate), ids LJ001-0001, LJ001-0002, ...
    <out>/README              what this is

The real LJSpeech-1.1 directory works unchanged with ``python -m upstream_merged mam-eval --ljspeech``.
Sentences come from upstream_merged.synth.speech's seeded generator; espeak-ng + sox (``-R``) make the
audio: the same arguments give the same bytes. Needs espeak-ng and sox.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Tuple

import numpy as np

from upstream_merged.data.runner import Layout, WORKERS, option
from upstream_merged.data.shared import Speaker, atomic_output_dir, require_tools, speak
from upstream_merged.synth.speech import sentence

SAMPLE_RATE = 22050  # LJ Speech's rate
SPEAKER = Speaker(voice="en-us+f2", pitch=55, speed=155)  # LJ Speech has one (female) reader
PER_CHAPTER = 50  # LJ Speech ids: LJ<chapter>-<utterance within chapter>
# (written form, normalized form): LJ Speech's column 3 expands these
ABBREVIATIONS = (("Mr.", "Mister"), ("Mrs.", "Missus"), ("Dr.", "Doctor"))
NAMES = ("Oswald", "Hartley", "Brown", "Walker")


def plan(utterances: int, seed: int) -> List[Tuple[str, str, str]]:
    """(id, transcription, normalized transcription) for every utterance, deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(utterances):
        text = sentence(rng)
        text = text[0].upper() + text[1:]
        normalized = text
        if rng.random() < 0.3:
            written, spoken = ABBREVIATIONS[int(rng.integers(len(ABBREVIATIONS)))]
            name = NAMES[int(rng.integers(len(NAMES)))]
            text = f"{written} {name} said that {text[0].lower() + text[1:]}"
            normalized = f"{spoken} {name} said that {normalized[0].lower() + normalized[1:]}"
        uid = f"LJ{index // PER_CHAPTER + 1:03d}-{index % PER_CHAPTER + 1:04d}"
        rows.append((uid, text, normalized))
    return rows


def build(out: Path, utterances: int = 20, seed: int = 0, workers: int = 2) -> dict:
    """Write metadata.csv and wavs/ under ``out`` atomically; return counts."""
    require_tools("espeak-ng", "sox")
    rows = plan(utterances, seed)
    with atomic_output_dir(out) as tmp:
        (tmp / "wavs").mkdir()
        (tmp / "metadata.csv").write_text("".join(f"{uid}|{text}|{normalized}\n" for uid, text, normalized in rows),
                                          encoding="utf-8")
        (tmp / "README").write_text("Synthetic LJ Speech 1.1-layout corpus (espeak-ng + sox), made by "
                                    "tools/make_ljspeech.py; not the LJ Speech dataset.\n")
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(lambda row: speak(row[2], SPEAKER, tmp / "wavs" / f"{row[0]}.wav", rate=SAMPLE_RATE), rows))
    return {"utterances": len(rows), "sample_rate": SAMPLE_RATE}


LAYOUT = Layout(
    name="ljspeech", description=__doc__, write=lambda a: build(a.out, a.utterances, a.seed, a.workers),
    options=(option("--utterances", type=int, default=20), option("--seed", type=int, default=0), WORKERS),
    check=lambda a: "--utterances must be >= 1" if a.utterances < 1 else None)
