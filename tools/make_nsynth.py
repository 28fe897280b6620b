#!/usr/bin/env python3
"""Synthesize a small NSynth-layout set (upstream_merged.synth.music) for the nsynth_pitch / nsynth_instrument tasks.

    <out>/nsynth-{train,valid,test}/examples.json   keyed by note id, NSynth's fields
    <out>/nsynth-{train,valid,test}/audio/<note id>.wav   4 s, 16 kHz, 16-bit mono (3 s note-on, then release)

Note ids follow NSynth: ``<family>_synthetic_<instrument:03d>-<pitch:03d>-<velocity:03d>``. As in NSynth,
the splits hold disjoint instruments. Each family is one synthesizer timbre (``FAMILIES``; 9 of NSynth's
11 families, the label space stays the full 11). A synthetic "instrument" is a (family, index) pair:
its notes share the family's timbre, and the per-note random variation comes from a seed of
(seed, instrument, pitch, velocity). Deterministic: the same arguments give the same bytes.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import atomic_output_dir, tool_main  # noqa: E402

from upstream_merged.downstream.readers import NSYNTH_FAMILIES  # noqa: E402
from upstream_merged.synth import music  # noqa: E402

log = logging.getLogger("make_nsynth")

SAMPLE_RATE = 16000
CLIP_SECONDS = 4.0  # NSynth: 4 s per note
NOTE_ON_SECONDS = 3.0  # NSynth: the key is held 3 s
VELOCITIES = (25, 50, 75, 100, 127)  # NSynth's five velocities
SPLIT_DIRS = ("nsynth-train", "nsynth-valid", "nsynth-test")
# family -> (timbre, lowest MIDI pitch, highest MIDI pitch); ranges overlap so pitch does not give away family
FAMILIES: dict[str, tuple[str, int, int]] = {
    "bass": ("plucked", 36, 60),
    "brass": ("brass", 48, 84),
    "flute": ("additive", 60, 96),
    "guitar": ("plucked", 40, 84),
    "keyboard": ("fm", 36, 96),
    "mallet": ("percussive", 48, 96),
    "organ": ("organ", 36, 96),
    "reed": ("reed", 50, 91),
    "string": ("bowed", 40, 96),
}
QUALITIES = ("bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic", "nonlinear_env",
             "percussive", "reverb", "tempo-synced")


def render_clip(seed: int, instrument: int, timbre: str, pitch: int, velocity: int) -> np.ndarray:
    """A 4 s NSynth-style clip: the note held 3 s (sustained timbres release after it), then silence or decay."""
    rng = np.random.default_rng([seed, instrument, pitch, velocity])
    clip = np.zeros(int(CLIP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    held = CLIP_SECONDS if timbre in music.DECAYING_TIMBRES else NOTE_ON_SECONDS + 0.1
    note = music.render_note(rng, pitch, timbre, held, SAMPLE_RATE, velocity)
    clip[: len(note)] = note
    return clip


def note_entry(note_index: int, family: str, instrument: int, pitch: int, velocity: int, timbre: str) -> dict:
    """examples.json fields of one note, as NSynth spells them (plus our 'timbre')."""
    instrument_str = f"{family}_synthetic_{instrument:03d}"
    qualities = [int(q == "fast_decay" and timbre in music.DECAYING_TIMBRES
                     or q == "percussive" and timbre == "percussive") for q in QUALITIES]
    return {
        "note": note_index, "sample_rate": SAMPLE_RATE, "pitch": pitch, "velocity": velocity,
        "instrument": instrument, "instrument_str": instrument_str,
        "instrument_family": NSYNTH_FAMILIES.index(family), "instrument_family_str": family,
        "instrument_source": 2, "instrument_source_str": "synthetic",
        "note_str": f"{instrument_str}-{pitch:03d}-{velocity:03d}",
        "qualities": qualities, "qualities_str": [q for q, on in zip(QUALITIES, qualities) if on],
        "timbre": timbre,
    }


def build(out: Path, instruments: tuple[int, int, int] = (3, 1, 1), notes_per_instrument: int = 20, seed: int = 0,
          families: list[str] | None = None) -> dict[str, int]:
    """Write the three splits under ``out`` (atomically) and return the note count per split."""
    families = list(FAMILIES) if families is None else families
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"--families {unknown} not among {list(FAMILIES)}")
    counts = {}
    with atomic_output_dir(out) as tmp:
        instrument, note_index = 0, 0
        for split_dir, n_instruments in zip(SPLIT_DIRS, instruments):
            examples = {}
            (tmp / split_dir / "audio").mkdir(parents=True)
            for family in families:
                timbre, low, high = FAMILIES[family]
                for _ in range(n_instruments):
                    rng = np.random.default_rng([seed, instrument])
                    grid = [(p, v) for p in range(low, high + 1) for v in VELOCITIES]
                    picks = rng.choice(len(grid), size=min(notes_per_instrument, len(grid)), replace=False)
                    for pitch, velocity in sorted(grid[i] for i in picks):
                        entry = note_entry(note_index, family, instrument, pitch, velocity, timbre)
                        clip = render_clip(seed, instrument, timbre, pitch, velocity)
                        sf.write(tmp / split_dir / "audio" / f"{entry['note_str']}.wav", clip, SAMPLE_RATE,
                                 subtype="PCM_16")
                        examples[entry["note_str"]] = entry
                        note_index += 1
                    instrument += 1
            (tmp / split_dir / "examples.json").write_text(json.dumps(examples, indent=1, sort_keys=True))
            counts[split_dir] = len(examples)
            log.info("%s: %d notes", split_dir, len(examples))
    return counts


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="output directory (must be empty or absent)")
    parser.add_argument("--instruments", type=int, nargs=3, default=(3, 1, 1), metavar=("TRAIN", "VALID", "TEST"),
                        help="instruments per family in each split (default 3 1 1)")
    parser.add_argument("--notes-per-instrument", type=int, default=20, help="(pitch, velocity) pairs per instrument")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES), help="families to generate (default all 9)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return tool_main(lambda: print(json.dumps(build(args.out, tuple(args.instruments), args.notes_per_instrument,
                                                    args.seed, args.families))))


if __name__ == "__main__":
    sys.exit(main())
