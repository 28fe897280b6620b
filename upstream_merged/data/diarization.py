"""Synthesize small two-speaker recordings in the Kaldi-style layout s3prl's ``diarization`` recipe reads (SUPERB SD).

    <out>/<split>/wav.scp     "<rec> <abs path of wav/<split>/<rec>.wav>"
    <out>/<split>/segments    "<utt> <rec> <start s> <end s>"
    <out>/<split>/utt2spk, spk2utt, reco2dur ("<rec> <seconds>"), rttm (NIST RTTM, for scoring)
    <out>/wav/<split>/<rec>.wav   16 kHz mono 16-bit mixtures

for the splits train, dev and test. Each recording has two espeak-ng speakers (tools/synth.py) taking
turns with seeded gaps and overlaps (as LibriMix-style SD data: overlapping speech, silences).
Speakers are disjoint across splits. Deterministic: the same arguments give the same bytes.
Needs espeak-ng and sox.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import soundfile as sf

from upstream_merged.data.runner import Layout, RecipeOverrides, WORKERS, option, recipe_report
from upstream_merged.data.librispeech import sentence
from upstream_merged.data.shared import Speaker, atomic_output_dir, require_tools, synthesize_all

SPLITS = ("train", "dev", "test")
RATE = 16000
TRIM = ("silence", "1", "0.02", "1%", "reverse", "silence", "1", "0.02", "1%", "reverse")  # clip = speech only


def plan(recordings: Dict[str, int], turns: int, seed: int) -> Dict[str, List[dict]]:
    """Per split, recordings {rec, speakers, turns: [(utt, speaker index, text, gap s)]}."""
    rng = random.Random(seed)
    out, speaker = {}, 0
    for split in SPLITS:
        out[split] = []
        for r in range(recordings[split]):
            pair = (speaker, speaker + 1)
            speaker += 2
            rec = f"{split}_{r:03d}"
            items = []
            for t in range(turns):
                who = pair[t % 2]
                items.append((f"spk{who:03d}-{rec}-{t:02d}", who, sentence(rng, 2, 4).lower(), round(rng.uniform(-0.4, 0.6), 2)))
            out[split].append({"rec": rec, "turns": items})
    return out


def _mix(parts: List[Tuple[np.ndarray, float]], lead: float) -> Tuple[np.ndarray, List[Tuple[float, float]]]:
    """Place clips one after another with signed gaps (negative = overlap); return the mixture and spans."""
    spans, cursor = [], int(lead * RATE)
    for data, gap in parts:
        start = max(0, cursor + int(gap * RATE)) if spans else cursor
        spans.append((start, start + len(data)))
        cursor = start + len(data)
    mixture = np.zeros(max(end for _, end in spans) + int(lead * RATE))
    for (data, _), (start, end) in zip(parts, spans):
        mixture[start:end] += data
    return np.clip(mixture, -1.0, 1.0), [(s / RATE, e / RATE) for s, e in spans]


def build(out: Path, train: int = 8, dev: int = 2, test: int = 2, turns: int = 4, seed: int = 0,
          workers: int = 2) -> Dict[str, int]:
    """Write the recordings and Kaldi files under ``out`` (atomically); return recordings per split."""
    require_tools("espeak-ng", "sox")
    out = Path(out).resolve()
    layout = plan({"train": train, "dev": dev, "test": test}, turns, seed)
    with atomic_output_dir(out) as tmp:
        utts = tmp / "utterances"
        synthesize_all([(text, Speaker.from_index(who), utts / f"{utt}.wav", TRIM)
                        for split in SPLITS for rec in layout[split] for utt, who, text, _ in rec["turns"]], workers)
        for split in SPLITS:
            files = {name: [] for name in ("wav.scp", "segments", "utt2spk", "reco2dur", "rttm")}
            spk2utt: Dict[str, List[str]] = {}
            (tmp / "wav" / split).mkdir(parents=True)
            for rec in layout[split]:
                parts = [(sf.read(utts / f"{utt}.wav")[0], gap) for utt, _, _, gap in rec["turns"]]
                mixture, spans = _mix(parts, lead=0.3)
                sf.write(tmp / "wav" / split / f"{rec['rec']}.wav", mixture, RATE, subtype="PCM_16")
                files["wav.scp"].append(f"{rec['rec']} {out / 'wav' / split / (rec['rec'] + '.wav')}")
                files["reco2dur"].append(f"{rec['rec']} {len(mixture) / RATE:.4f}")
                for (utt, who, _, _), (start, end) in zip(rec["turns"], spans):
                    files["segments"].append(f"{utt} {rec['rec']} {start:.4f} {end:.4f}")
                    files["utt2spk"].append(f"{utt} spk{who:03d}")
                    files["rttm"].append(f"SPEAKER {rec['rec']} 1 {start:.4f} {end - start:.4f} <NA> <NA> spk{who:03d} <NA> <NA>")
                    spk2utt.setdefault(f"spk{who:03d}", []).append(utt)
            files["spk2utt"] = [f"{spk} {' '.join(utts_)}" for spk, utts_ in sorted(spk2utt.items())]
            for name, lines in files.items():
                (tmp / split / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / split / name).write_text("".join(f"{line}\n" for line in sorted(lines)))
        for path in sorted(utts.iterdir()):
            path.unlink()
        utts.rmdir()
    return {split: len(layout[split]) for split in SPLITS}


# the run_downstream.py -o string pointing the diarization recipe at a set made by this layout
overrides = RecipeOverrides(tuple(f"loaderrc.{split}_dir={{out}}/{split}" for split in SPLITS))


LAYOUT = Layout(
    name="diarization", description=__doc__, write=lambda a: build(a.out, a.train, a.dev, a.test, a.turns, a.seed, a.workers),
    options=(option("--train", type=int, default=8, help="training recordings"),
             option("--dev", type=int, default=2, help="dev recordings"),
             option("--test", type=int, default=2, help="test recordings"),
             option("--turns", type=int, default=4, help="speaker turns per recording"),
             option("--seed", type=int, default=0, help="seed of sentences, gaps and overlaps"), WORKERS),
    report=recipe_report("-d diarization", overrides))
