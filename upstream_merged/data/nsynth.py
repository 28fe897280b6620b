"""Synthesize a small NSynth-layout set (upstream_merged.synth.music) for the nsynth_pitch / nsynth_instrument tasks.

    <out>/nsynth-{train,valid,test}/examples.json   keyed by note id, NSynth's fields
    <out>/nsynth-{train,valid,test}/audio/<note id>.wav   4 s, 16 kHz, 16-bit mono (3 s note-on, then release)

Note ids follow NSynth: ``<family>_synthetic_<instrument:03d>-<pitch:03d>-<velocity:03d>``. As in NSynth,
the splits hold disjoint instruments. Each family is one synthesizer timbre (``FAMILIES``; 9 of NSynth's
11 families, the label space stays the full 11). A synthetic "instrument" is a (family, index) pair:
its notes share the family's timbre, and the per-note random variation comes from a seed of
(seed, instrument, pitch, velocity). Deterministic: the same arguments give the same bytes.

``--profile sampled`` (the reproduction's evaluation set) renders notes from sampled instruments instead:
General MIDI programs of the FluidR3 GM soundfont through fluidsynth (``upstream_merged.synth.sampled``),
grouped in all 11 NSynth families. An instrument is one GM program (note id
``<family>_<source>_<program:03d>-<pitch>-<velocity>``); within each family the programs are split
between train / valid / test (disjoint, as in NSynth), each family keeping its own pitch range. Notes
are recorded under drawn conditions (``upstream_merged.synth.degrade``: ``music_train`` for train and
valid, ``music_test`` for test), each note's condition is in ``<out>/clips.jsonl`` and in its
examples.json entry (``condition``, plus ``gm_program``). Defaults: 100 notes per train instrument,
64 per valid/test instrument: about 5,100 / 700 / 1,300 notes.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile as sf

from upstream_merged.data.runner import Layout, QUIET, option
from upstream_merged.data.shared import atomic_output_dir, overlaps, pool_map
from upstream_merged.downstream.readers import NSYNTH_FAMILIES
from upstream_merged.synth import degrade, music, sampled

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


# sampled profile: each family's MIDI pitch range (where its GM instruments sound like themselves)
SAMPLED_RANGES: dict[str, tuple[int, int]] = {
    "bass": (28, 67), "brass": (40, 84), "flute": (60, 96), "guitar": (40, 84), "keyboard": (36, 96),
    "mallet": (48, 96), "organ": (36, 96), "reed": (40, 84), "string": (40, 88), "synth_lead": (36, 96),
    "vocal": (48, 79),
}
# GM programs NSynth would call electronic (electric pianos, organs, guitars, basses) or synthetic
ELECTRONIC_PROGRAMS = frozenset({4, 5, 16, 17, 18, 26, 27, 28, 29, 30, 31, 33, 34, 35, 36, 37})
SYNTHETIC_PROGRAMS = frozenset({38, 39, 54, 62, 63, *range(80, 88)})
SOURCES = ("acoustic", "electronic", "synthetic")  # NSynth's instrument_source codes 0, 1, 2


def family_programs() -> dict[str, tuple[int, ...]]:
    """sampled.FAMILIES with every GM program in one family only (the first that lists it)."""
    seen: set[int] = set()
    out = {}
    for family, programs in sampled.FAMILIES.items():
        out[family] = tuple(p for p in programs if p not in seen)
        seen.update(programs)
    return out


def split_programs(programs: tuple[int, ...], rng: np.random.Generator) -> dict[str, list[int]]:
    """A family's programs shuffled into disjoint train / valid / test groups (test 2 when >= 8, else 1; valid 1)."""
    if len(programs) < 3:
        raise ValueError(f"a family needs >= 3 GM programs for disjoint splits, got {programs}")
    order = [programs[i] for i in rng.permutation(len(programs))]
    n_test = 2 if len(programs) >= 8 else 1
    return {"nsynth-test": sorted(order[:n_test]), "nsynth-valid": sorted(order[n_test:n_test + 1]),
            "nsynth-train": sorted(order[n_test + 1:])}


def plan_sampled(notes: dict[str, int], seed: int, train_conditions: str, test_conditions: str) -> list[dict]:
    """Every instrument of the sampled profile with its notes: split, family, program, (pitch, velocity, condition)s."""
    instruments = []
    for f, (family, programs) in enumerate(family_programs().items()):
        low, high = SAMPLED_RANGES[family]
        for split, chosen in split_programs(programs, np.random.default_rng([seed, f])).items():
            profile = test_conditions if split == "nsynth-test" else train_conditions
            for program in chosen:
                rng = np.random.default_rng([seed, f, program])
                grid = [(p, v) for p in range(low, high + 1) for v in VELOCITIES]
                picks = rng.choice(len(grid), size=min(notes[split], len(grid)), replace=False)
                chosen_notes = [(p, v, degrade.draw_condition(rng, profile)) for p, v in (grid[i] for i in sorted(picks))]
                instruments.append({"split": split, "family": family, "program": program, "notes": chosen_notes})
    return instruments


def sampled_entry(note_index: int, family: str, program: int, pitch: int, velocity: int) -> dict:
    """examples.json fields of one sampled note, as NSynth spells them (plus gm_program)."""
    source = 2 if program in SYNTHETIC_PROGRAMS else 1 if program in ELECTRONIC_PROGRAMS else 0
    instrument_str = f"{family}_{SOURCES[source]}_{program:03d}"
    return {
        "note": note_index, "sample_rate": SAMPLE_RATE, "pitch": pitch, "velocity": velocity,
        "instrument": program, "instrument_str": instrument_str,
        "instrument_family": NSYNTH_FAMILIES.index(family), "instrument_family_str": family,
        "instrument_source": source, "instrument_source_str": SOURCES[source],
        "note_str": f"{instrument_str}-{pitch:03d}-{velocity:03d}",
        "qualities": [0] * len(QUALITIES), "qualities_str": [], "gm_program": program,
    }


def build_sampled(out: Path, notes: tuple[int, int, int] = (100, 64, 64), seed: int = 0, workers: int = 2,
                  train_conditions: str = "music_train", test_conditions: str = "music_test",
                  families: list[str] | None = None, quiet: bool = False) -> dict:
    """Write the sampled-instrument splits under ``out`` (atomically); return a summary (counts, overlaps, time)."""
    sampled.soundfont()  # fail early, naming the packages
    started = time.time()
    unknown = sorted(set(families or []) - set(SAMPLED_RANGES))
    if unknown:
        raise ValueError(f"--families {unknown} not among {list(SAMPLED_RANGES)}")
    plan = [i for i in plan_sampled(dict(zip(SPLIT_DIRS, notes)), seed, train_conditions, test_conditions)
            if families is None or i["family"] in families]
    with atomic_output_dir(out) as tmp:
        for split_dir in SPLIT_DIRS:
            (tmp / split_dir / "audio").mkdir(parents=True)

        def render(instrument: dict) -> list[dict]:
            audio = sampled.render_notes([(instrument["program"], p, v) for p, v, _ in instrument["notes"]],
                                         CLIP_SECONDS, SAMPLE_RATE, hold=NOTE_ON_SECONDS / CLIP_SECONDS)
            rows = []
            for (pitch, velocity, condition), clip in zip(instrument["notes"], audio):
                entry = sampled_entry(0, instrument["family"], instrument["program"], pitch, velocity)
                path = tmp / instrument["split"] / "audio" / f"{entry['note_str']}.wav"
                sf.write(str(path), degrade.apply(clip, SAMPLE_RATE, condition), SAMPLE_RATE, subtype="PCM_16")
                rows.append(dict(entry, split=instrument["split"], condition=condition.to_json()))
            return rows

        rows = [row for rows in pool_map(render, plan, workers, "nsynth: render instruments", quiet) for row in rows]
        for index, row in enumerate(rows):
            row["note"] = index
        for split_dir in SPLIT_DIRS:
            examples = {r["note_str"]: {k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == split_dir}
            (tmp / split_dir / "examples.json").write_text(json.dumps(examples, indent=1, sort_keys=True))
        degrade.write_conditions([{"path": f"{r['split']}/audio/{r['note_str']}.wav", "split": r["split"],
                                   "condition": r["condition"]} for r in rows], tmp / "clips.jsonl")
    return sampled_summary(rows, time.time() - started)


def sampled_summary(rows: list[dict], seconds: float) -> dict:
    """Notes per split, instruments per split and family, their overlaps, pitch ranges, generation time."""
    instruments = {s: sorted({r["instrument_str"] for r in rows if r["split"] == s}) for s in SPLIT_DIRS}
    return {"clips": {s: sum(1 for r in rows if r["split"] == s) for s in SPLIT_DIRS},
            "instruments": {s: len(v) for s, v in instruments.items()},
            "instruments_per_family": {s: {f: sorted({r["gm_program"] for r in rows if r["split"] == s
                                                      and r["instrument_family_str"] == f})
                                           for f in sorted({r["instrument_family_str"] for r in rows})}
                                       for s in SPLIT_DIRS},
            "instrument_overlap": overlaps({s: [str(r["gm_program"]) for r in rows if r["split"] == s]
                                            for s in SPLIT_DIRS}),
            "pitches": {s: len({r["pitch"] for r in rows if r["split"] == s}) for s in SPLIT_DIRS},
            "pitch_range": [min(r["pitch"] for r in rows), max(r["pitch"] for r in rows)],
            "generation_seconds": round(seconds, 1)}


def _check(args) -> Optional[str]:
    """The usage errors of the two profiles' --notes-per-instrument and --families."""
    if args.profile == "sampled":
        return None if len(args.notes_per_instrument or (100, 64, 64)) == 3 else \
            "--profile sampled: --notes-per-instrument takes TRAIN VALID TEST"
    bad = sorted(set(args.families or FAMILIES) - set(FAMILIES))
    if bad:
        return f"--families {bad}: choose from {list(FAMILIES)}"
    if len(args.notes_per_instrument or [20]) != 1:
        return "--profile synthetic: --notes-per-instrument takes one number"
    return None


def _write(args) -> dict:
    """Build the asked profile."""
    if args.profile == "sampled":
        return build_sampled(args.out, tuple(args.notes_per_instrument or (100, 64, 64)), args.seed, args.workers,
                             args.train_conditions, args.test_conditions, args.families, args.quiet)
    families = list(FAMILIES) if args.families is None else args.families
    return build(args.out, tuple(args.instruments), (args.notes_per_instrument or [20])[0], args.seed, families)


LAYOUT = Layout(
    name="nsynth", description=__doc__, write=_write, check=_check, summary_profiles=("sampled",),
    options=(option("--profile", choices=("synthetic", "sampled"), default="synthetic",
                    help="synthetic: the original synthesizer timbres; sampled: GM instruments via fluidsynth (see above)"),
             option("--instruments", type=int, nargs=3, default=(3, 1, 1), metavar=("TRAIN", "VALID", "TEST"),
                    help="synthetic: instruments per family in each split (default 3 1 1)"),
             option("--notes-per-instrument", type=int, nargs="+", default=None,
                    help="(pitch, velocity) pairs per instrument: synthetic one number (default 20); "
                         "sampled TRAIN VALID TEST (default 100 64 64)"),
             option("--families", nargs="+", default=None, help="families to generate (default all)"),
             option("--train-conditions", default="music_train", choices=sorted(degrade.PROFILES), help="sampled"),
             option("--test-conditions", default="music_test", choices=sorted(degrade.PROFILES), help="sampled"),
             option("--summary", type=Path, default=None, help="sampled: also write the summary JSON here"),
             option("--workers", type=int, default=2, help="sampled: instruments rendered at once"), QUIET,
             option("--seed", type=int, default=0)))
