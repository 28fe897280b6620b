"""Synthesize a VCTK 0.92-layout corpus (espeak-ng speakers, two "microphones") for zero-shot ASR evaluation.

    <out>/txt/<spk>/<spk>_NNN.txt                                 the prompt ("Please call Stella." style)
    <out>/wav48_silence_trimmed/<spk>/<spk>_NNN_mic1.flac         48 kHz, 16-bit mono FLAC
    <out>/wav48_silence_trimmed/<spk>/<spk>_NNN_mic2.flac         the same take through a second "microphone"
    <out>/speaker-info.txt                                        ID  AGE  GENDER  ACCENTS  REGION

Speakers are p225, p226, ... (VCTK's ids); mic2 is mic1's synthesis through a band-limiting sox chain
(highpass 150 Hz, lowpass 5 kHz, -4 dB), so the mic choice changes the audio as in VCTK. The real
VCTK-Corpus-0.92 directory works unchanged with ``python -m upstream_merged mam-eval --vctk``.
Deterministic (espeak-ng + sox ``-R``). Needs espeak-ng and sox with FLAC support.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Tuple

import numpy as np

from upstream_merged.data.runner import Layout, WORKERS, option
from upstream_merged.data.shared import Speaker, atomic_output_dir, require_tools, speak
from upstream_merged.synth.speech import sentence

SAMPLE_RATE = 48000  # VCTK's rate
AUDIO_DIR = "wav48_silence_trimmed"
FIRST_SPEAKER = 225  # VCTK speaker ids start at p225
MIC_EFFECTS = {"mic1": (), "mic2": ("highpass", "150", "lowpass", "5000", "gain", "-4")}
ACCENTS = ("English", "Scottish", "American", "Irish", "Welsh", "Canadian")


def plan(speakers: int, utterances: int, seed: int) -> List[Tuple[str, str, str]]:
    """(speaker id, utterance id, prompt) for every utterance, deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(speakers):
        speaker = f"p{FIRST_SPEAKER + s}"
        for u in range(1, utterances + 1):
            text = sentence(rng)
            rows.append((speaker, f"{speaker}_{u:03d}", text[0].upper() + text[1:]))
    return rows


def build(out: Path, speakers: int = 2, utterances: int = 5, seed: int = 0, workers: int = 2) -> dict:
    """Write txt/, wav48_silence_trimmed/ (mic1 and mic2) and speaker-info.txt under ``out`` atomically."""
    require_tools("espeak-ng", "sox")
    rows = plan(speakers, utterances, seed)
    jobs = []
    with atomic_output_dir(out) as tmp:
        info = ["ID  AGE  GENDER  ACCENTS  REGION"]
        for s in range(speakers):
            speaker = f"p{FIRST_SPEAKER + s}"
            (tmp / "txt" / speaker).mkdir(parents=True)
            (tmp / AUDIO_DIR / speaker).mkdir(parents=True)
            info.append(f"{speaker}  {20 + s % 15}  {'F' if s % 2 == 0 else 'M'}  {ACCENTS[s % len(ACCENTS)]}  Synthetic")
        (tmp / "speaker-info.txt").write_text("\n".join(info) + "\n")
        for speaker, utt, text in rows:
            (tmp / "txt" / speaker / f"{utt}.txt").write_text(text + "\n")
            voice = Speaker.from_index(int(speaker[1:]) - FIRST_SPEAKER + 1)
            for mic, effects in MIC_EFFECTS.items():
                jobs.append((text, voice, tmp / AUDIO_DIR / speaker / f"{utt}_{mic}.flac", effects))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(lambda j: speak(j[0].lower(), j[1], j[2], rate=SAMPLE_RATE, sox_effects=j[3]), jobs))
    return {"speakers": speakers, "utterances": len(rows), "sample_rate": SAMPLE_RATE}


LAYOUT = Layout(
    name="vctk", description=__doc__, write=lambda a: build(a.out, a.speakers, a.utterances, a.seed, a.workers),
    options=(option("--speakers", type=int, default=2),
             option("--utterances", type=int, default=5, help="utterances per speaker"),
             option("--seed", type=int, default=0), WORKERS),
    check=lambda a: "--speakers and --utterances must be >= 1" if a.speakers < 1 or a.utterances < 1 else None)
