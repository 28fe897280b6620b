"""Synthesize a small Fluent Speech Commands set in the layout s3prl's ``fluent_commands`` recipe reads.

    <out>/data/{train,valid,test}_data.csv   ",path,speakerId,transcription,action,object,location"
    <out>/wavs/speakers/<speakerId>/<id>.wav  16 kHz mono 16-bit, one spoken command each

Intent classification (SUPERB IC): every command carries an (action, object, location) intent with the
values of the real corpus; speakers are disjoint across the three splits (as in FSC), and every intent
is spoken by every speaker so the train split covers every slot value the expert builds its labels from.
Deterministic: the same arguments give the same bytes. Needs espeak-ng and sox.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Tuple

from upstream_merged.data.runner import Layout, RecipeOverrides, WORKERS, option, recipe_report
from upstream_merged.data.shared import Speaker, atomic_output_dir, require_tools, stable_id, synthesize_all

# (transcription, action, object, location), values spelled as in FSC's csv files.
COMMANDS: List[Tuple[str, str, str, str]] = [
    ("Turn on the lights", "activate", "lights", "none"),
    ("Turn off the lights", "deactivate", "lights", "none"),
    ("Turn on the lights in the kitchen", "activate", "lights", "kitchen"),
    ("Turn off the lights in the bedroom", "deactivate", "lights", "bedroom"),
    ("Switch on the lights in the washroom", "activate", "lights", "washroom"),
    ("Turn up the heat", "increase", "heat", "none"),
    ("Turn down the heat in the kitchen", "decrease", "heat", "kitchen"),
    ("Increase the volume", "increase", "volume", "none"),
    ("Decrease the volume", "decrease", "volume", "none"),
    ("Play the music", "activate", "music", "none"),
    ("Stop the music", "deactivate", "music", "none"),
    ("Bring me the newspaper", "bring", "newspaper", "none"),
    ("Bring me my socks", "bring", "socks", "none"),
    ("Get me some juice", "bring", "juice", "none"),
    ("Turn on the lamp", "activate", "lamp", "none"),
    ("Change the language to German", "change language", "German", "none"),
    ("Switch the language to Korean", "change language", "Korean", "none"),
]
SPLITS = ("train", "valid", "test")
SPEAKER_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
CLIP_EFFECTS = ("pad", "0.1", "0.1")


def plan(speakers: Dict[str, int], repeats: int) -> Dict[str, List[Tuple[str, str, str, str, str, int]]]:
    """Per split, rows (path, speakerId, transcription, action, object, location) plus the speaker index."""
    rows: Dict[str, list] = {}
    index = 0
    for split in SPLITS:
        rows[split] = []
        for _ in range(speakers[split]):
            speaker_id = stable_id(f"fsc-speaker-{index}", 16, SPEAKER_ALPHABET)
            for n, (text, action, obj, location) in enumerate(COMMANDS):
                for r in range(repeats):
                    name = stable_id(f"{speaker_id}-{n}-{r}", 32)
                    path = f"wavs/speakers/{speaker_id}/{name}.wav"
                    rows[split].append((path, speaker_id, text, action, obj, location, index))
            index += 1
    return rows


def build(out: Path, train_speakers: int, valid_speakers: int, test_speakers: int, repeats: int = 1,
          workers: int = 2) -> Dict[str, int]:
    """Write the corpus under ``out`` (atomically) and return the number of clips per split."""
    require_tools("espeak-ng", "sox")
    rows = plan({"train": train_speakers, "valid": valid_speakers, "test": test_speakers}, repeats)
    with atomic_output_dir(out) as tmp:
        jobs = [(text, Speaker.from_index(index), tmp / path, CLIP_EFFECTS)
                for split in SPLITS for path, _, text, _, _, _, index in rows[split]]
        synthesize_all(jobs, workers)
        (tmp / "data").mkdir()
        for split in SPLITS:
            with open(tmp / "data" / f"{split}_data.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["", "path", "speakerId", "transcription", "action", "object", "location"])
                for number, row in enumerate(rows[split]):
                    writer.writerow([number, *row[:6]])
    return {split: len(rows[split]) for split in SPLITS}


# the run_downstream.py -o string pointing the fluent_commands recipe at a set made by this layout
overrides = RecipeOverrides(("datarc.file_path={out}",))


LAYOUT = Layout(
    name="fluent_commands", description=__doc__,
    write=lambda a: build(a.out, a.train_speakers, a.valid_speakers, a.test_speakers, a.repeats, a.workers),
    options=(option("--train-speakers", type=int, default=6), option("--valid-speakers", type=int, default=2),
             option("--test-speakers", type=int, default=2),
             option("--repeats", type=int, default=1, help="clips per speaker and command"), WORKERS),
    report=recipe_report("-d fluent_commands", overrides))
