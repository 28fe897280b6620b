#!/usr/bin/env python
"""Write the pretraining corpora: espeak-ng speech and synthesised music, 16 kHz mono wavs + manifest.jsonl.

    python tools/make_pretrain_corpora.py OUT [--speech-minutes 30] [--music-minutes 30] [--seed 0] [--force]

OUT/speech/*.wav, OUT/music/*.wav, OUT/manifest.jsonl (one JSON row per clip: path relative to OUT,
domain, seconds, split train|heldout, labels) and OUT/corpus.json (the arguments). Deterministic for a
given seed; written into OUT.partial and renamed, so an interrupted run leaves no OUT.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from upstream_merged.synth.speech import write_manifest, write_speech_corpus  # noqa: E402

logger = logging.getLogger("make_pretrain_corpora")
RATE = 16000


def write_music_corpus(out: Path, minutes: float, seed: int = 0, phrase_seconds: float = 6.0,
                       heldout_share: float = 0.05) -> List[dict]:
    """Render phrases of upstream_merged.synth.music into ``out``/music/ until ``minutes`` exist."""
    import soundfile

    try:
        from upstream_merged.synth.music import render_phrase
    except ImportError as err:
        raise SystemExit(f"the music corpus needs upstream_merged.synth.music.render_phrase ({err}); "
                         "pass --music-minutes 0 to write speech only") from None
    folder = out / "music"
    folder.mkdir(parents=True, exist_ok=True)
    every = max(2, round(1 / heldout_share)) if heldout_share > 0 else 0
    rows: List[dict] = []
    total, index = 0.0, 0
    while total < minutes * 60:
        rng = np.random.default_rng([seed, index])  # one stream per phrase: phrase i is the same for any length
        audio, labels = render_phrase(rng, phrase_seconds, RATE)
        audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
        path = folder / f"music_{index:05d}.wav"
        soundfile.write(str(path), audio, RATE, subtype="PCM_16")
        seconds = len(audio) / RATE
        split = "heldout" if every and index % every == every - 1 else "train"
        rows.append({"path": str(path.relative_to(out)), "domain": "music", "seconds": round(seconds, 4),
                     "split": split, "labels": _jsonable(_clip_labels(labels))})
        total += seconds
        index += 1
    logger.info("music corpus: %d phrases, %.1f min in %s", len(rows), total / 60, folder)
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


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--speech-minutes", type=float, default=30.0)
    parser.add_argument("--music-minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    out: Path = args.out
    if out.exists() and any(out.iterdir()) and not args.force:
        parser.error(f"{out} is not empty; pass --force to replace it")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    start = time.time()
    rows: List[dict] = []
    if args.speech_minutes > 0:
        rows += write_speech_corpus(partial, args.speech_minutes, seed=args.seed, rate=RATE)
    if args.music_minutes > 0:
        rows += write_music_corpus(partial, args.music_minutes, seed=args.seed)
    write_manifest(rows, partial / "manifest.jsonl")
    summary = {"seed": args.seed, "speech_minutes": args.speech_minutes, "music_minutes": args.music_minutes,
               "sample_rate": RATE, "clips": len(rows), "espeak_ng": _espeak_version(),
               "seconds": {d: round(sum(r["seconds"] for r in rows if r["domain"] == d), 2) for d in ("speech", "music")}}
    (partial / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    logger.info("wrote %d clips to %s in %.0f s", len(rows), out, time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
