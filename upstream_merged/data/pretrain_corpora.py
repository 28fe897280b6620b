"""Write the pretraining corpora: espeak-ng speech and synthesised music, 16 kHz mono wavs + manifest.jsonl.

    python tools/make_pretrain_corpora.py OUT [--speech-minutes 30] [--music-minutes 30] [--seed 0] [--force]

OUT/speech/*.wav, OUT/music/*.wav, OUT/manifest.jsonl (one JSON row per clip: path relative to OUT,
domain, seconds, split train|heldout, labels) and OUT/corpus.json (the arguments). Deterministic for a
given seed; written into OUT.partial and renamed, so an interrupted run leaves no OUT.
"""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import List

import numpy as np
from tqdm import tqdm

from upstream_merged.data.runner import Layout, QUIET, option
from upstream_merged.synth.speech import write_manifest, write_speech_corpus

logger = logging.getLogger("make_pretrain_corpora")
RATE = 16000


def write_music_corpus(out: Path, minutes: float, seed: int = 0, phrase_seconds: float = 6.0,
                       heldout_share: float = 0.05, source: str = "additive", workers: int = 2) -> List[dict]:
    """Render phrases into ``out``/music/ until ``minutes`` exist.

    ``source``: "additive" (upstream_merged.synth.music, the first shipped encoders' corpus) or "sampled"
    (General MIDI scores rendered by fluidsynth, upstream_merged.synth.sampled).
    """
    import soundfile

    from upstream_merged.synth import music, sampled

    if source not in ("additive", "sampled"):
        raise SystemExit(f"--music-source {source!r} is not 'additive' or 'sampled'")
    if source == "sampled":
        sampled.soundfont()  # fail before writing anything when fluidsynth is absent
    folder = out / "music"
    folder.mkdir(parents=True, exist_ok=True)
    every = max(2, round(1 / heldout_share)) if heldout_share > 0 else 0
    n_phrases = int(np.ceil(minutes * 60 / phrase_seconds))

    def render(index: int) -> dict:
        rng = np.random.default_rng([seed, index])  # one stream per phrase: phrase i is the same for any length
        path = folder / f"music_{index:05d}.wav"
        if source == "sampled":
            audio, labels = sampled.render_phrase(rng, phrase_seconds, path, RATE)
        else:
            audio, labels = music.render_phrase(rng, phrase_seconds, RATE)
            audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
            soundfile.write(str(path), audio, RATE, subtype="PCM_16")
        split = "heldout" if every and index % every == every - 1 else "train"
        return {"path": str(path.relative_to(out)), "domain": "music", "seconds": round(len(audio) / RATE, 4),
                "split": split, "labels": _jsonable(_clip_labels(labels))}

    with ThreadPoolExecutor(max_workers=workers if source == "sampled" else 1) as pool:  # fluidsynth subprocesses
        rows = list(tqdm(pool.map(render, range(n_phrases)), total=n_phrases, desc="music phrases", unit="phrase",
                         disable=None))
    logger.info("music corpus (%s): %d phrases, %.1f min in %s", source, len(rows),
                sum(r["seconds"] for r in rows) / 60, folder)
    return rows


def _clip_labels(labels: dict) -> dict:
    """Clip-level labels for the manifest: the per-note list becomes a count (it can be long)."""
    labels = dict(labels)
    if isinstance(labels.get("notes"), (list, tuple)):
        labels["notes"] = len(labels["notes"])
    return labels


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _espeak_version() -> str:
    try:
        return subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "absent"


def _write(args) -> dict:
    """Write both corpora, the manifest and corpus.json into OUT.partial, then put it in OUT's place."""
    out: Path = args.out
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    start = time.time()
    rows: List[dict] = []
    if args.speech_minutes > 0:
        rows += write_speech_corpus(partial, args.speech_minutes, seed=args.seed, rate=RATE,
                                    engines=args.speech_engines)
    if args.music_minutes > 0:
        rows += write_music_corpus(partial, args.music_minutes, seed=args.seed, source=args.music_source)
    write_manifest(rows, partial / "manifest.jsonl")
    summary = {"seed": args.seed, "speech_minutes": args.speech_minutes, "music_minutes": args.music_minutes,
               "sample_rate": RATE, "clips": len(rows), "espeak_ng": _espeak_version(),
               "speech_engines": args.speech_engines, "music_source": args.music_source,
               "seconds": {d: round(sum(r["seconds"] for r in rows if r["domain"] == d), 2) for d in ("speech", "music")}}
    (partial / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    logger.info("wrote %d clips to %s in %.0f s", len(rows), out, time.time() - start)
    return summary


LAYOUT = Layout(
    name="pretrain_corpora", description=__doc__, write=_write, report=lambda args, summary: [], force=True,
    options=(option("--speech-minutes", type=float, default=30.0), option("--music-minutes", type=float, default=30.0),
             option("--seed", type=int, default=0),
             option("--speech-engines", choices=["espeak", "all"], default="espeak",
                    help="espeak: espeak-ng voices only; all: espeak-ng, flite and festival speakers"),
             option("--music-source", choices=["additive", "sampled"], default="additive",
                    help="additive: synthesised timbres; sampled: General MIDI through fluidsynth"),
             option("--force", action="store_true", help="replace a non-empty OUT"), QUIET))
