"""Synthesize an ESC-50-layout audio-event set (upstream_merged.synth.events) for the esc50 task.

    <out>/meta/esc50.csv   filename,fold,target,category,esc10,src_file,take   (ESC-50's columns)
    <out>/audio/{fold}-{src_file}-{take}-{target}.wav   5 s, 44.1 kHz, 16-bit mono

The classes are the synthesizer's event categories (``events.CATEGORIES``, target = index), not
ESC-50's 50; ``esc10`` marks a 10-class subset like ESC-10. As in ESC-50, 5 folds hold the same
number of clips per class, and the takes (A, B, ...) of one source clip stay in one fold. Each clip
is one event over a background (pink/brown noise, mains hum, room tone) at a random SNR.
Deterministic: the same arguments give the same bytes.
"""
from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from upstream_merged.data.runner import Layout, option
from upstream_merged.data.shared import atomic_output_dir
from upstream_merged.downstream.readers import ESC50_FOLDS
from upstream_merged.synth import events

log = logging.getLogger("make_esc50")

SAMPLE_RATE = 44100  # ESC-50's rate
CLIP_SECONDS = 5.0  # ESC-50's clip length
ESC10 = ("chirp", "click_train", "dog_bark", "siren", "drip", "engine", "bell", "knock", "whistle", "hum")
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


def plan(clips_per_class: int, seed: int) -> list[dict]:
    """The csv rows: per class, clips spread evenly over the 5 folds, 1-2 takes per source clip within a fold."""
    rows = []
    for target, category in enumerate(events.CATEGORIES):
        rng = np.random.default_rng([seed, target])
        per_fold = np.full(len(ESC50_FOLDS), clips_per_class // len(ESC50_FOLDS))
        per_fold[: clips_per_class % len(ESC50_FOLDS)] += 1
        for fold, count in zip(ESC50_FOLDS, per_fold):
            left = int(count)
            while left > 0:
                takes = min(left, int(rng.integers(1, 3)))
                src = 100000 + (target * 7919 + fold * 104729 + left * 1299709 + seed * 15485863) % 900000
                for take in "ABCDEFGH"[:takes]:
                    rows.append({"filename": f"{fold}-{src}-{take}-{target}.wav", "fold": fold, "target": target,
                                 "category": category, "esc10": str(category in ESC10), "src_file": src,
                                 "take": take})
                left -= takes
    return sorted(rows, key=lambda r: r["filename"])


def build(out: Path, clips_per_class: int = 20, seed: int = 0) -> dict:
    """Write meta/esc50.csv and the audio under ``out`` atomically; return counts."""
    rows = plan(clips_per_class, seed)
    with atomic_output_dir(out) as tmp:
        (tmp / "audio").mkdir()
        (tmp / "meta").mkdir()
        for row in rows:
            rng = np.random.default_rng([seed, row["target"], row["fold"], row["src_file"], ord(row["take"])])
            audio = events.render_event(rng, row["category"], CLIP_SECONDS, SAMPLE_RATE)
            sf.write(tmp / "audio" / row["filename"], audio, SAMPLE_RATE, subtype="PCM_16")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        (tmp / "meta" / "esc50.csv").write_text(text.getvalue())
    log.info("%d clips, %d classes", len(rows), len(events.CATEGORIES))
    return {"clips": len(rows), "classes": len(events.CATEGORIES)}


LAYOUT = Layout(
    name="esc50", description=__doc__, write=lambda a: build(a.out, a.clips_per_class, a.seed),
    options=(option("--clips-per-class", type=int, default=20,
                    help="clips per class, spread over the 5 folds (ESC-50: 40; default 20)"),
             option("--seed", type=int, default=0)),
    check=lambda a: (f"--clips-per-class must be >= {len(ESC50_FOLDS)} (one per fold)"
                     if a.clips_per_class < len(ESC50_FOLDS) else None))
