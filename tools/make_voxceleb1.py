#!/usr/bin/env python3
"""Synthesize a small VoxCeleb1 set for s3prl's ``voxceleb1`` speaker-identification recipe (SUPERB SID).

    <out>/dev/wav/id1XXXX/<youtube id>/<nnnnn>.wav   16 kHz mono 16-bit (the "dev" part)
    <out>/test/wav/id1XXXX/<youtube id>/<nnnnn>.wav  the last speakers, as VoxCeleb1's "test" part
    <out>/iden_split.txt                             the official split format: "<1|2|3> id1XXXX/<yt>/<nnnnn>.wav"
                                                     (1 = train, 2 = dev, 3 = test)

Speakers are espeak-ng voices x variants with their own pitch and speed (tools/synth.py); speaker ids
count up from id10001 as the recipe derives the class from the id. Every speaker has ``videos``
"videos" of ``utterances`` clips of seeded sentences; per speaker the last video is test, the one
before dev, the rest train (VoxCeleb1's identification split is also by video).
Deterministic: the same arguments give the same bytes. Needs espeak-ng and sox.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_librispeech import sentence  # noqa: E402
from synth import Speaker, atomic_output_dir, require_tools, stable_id, synthesize_all, tool_main  # noqa: E402

YOUTUBE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
FIRST_ID = 10001  # s3prl: label = int(id[2:]) - 10001, 1251 classes
SPLIT_FILE = "iden_split.txt"


def plan(speakers: int, videos: int, utterances: int, test_part_speakers: int, seed: int
         ) -> List[Tuple[int, str, str, int, str]]:
    """(split code, part, relative path, speaker index, text) for every clip, in iden_split order."""
    if videos < 3:
        raise ValueError(f"--videos must be >= 3 (train, dev and test videos per speaker), got {videos}")
    if not 0 <= test_part_speakers <= speakers:
        raise ValueError(f"--test-part-speakers must be between 0 and --speakers ({speakers}), got {test_part_speakers}")
    rng = random.Random(seed)
    items = []
    for s in range(speakers):
        speaker_id = f"id{FIRST_ID + s}"
        part = "test" if s >= speakers - test_part_speakers else "dev"
        for v in range(videos):
            split = 3 if v == videos - 1 else 2 if v == videos - 2 else 1
            youtube = stable_id(f"vox-{seed}-{s}-{v}", 11, YOUTUBE_ALPHABET)
            for u in range(utterances):
                items.append((split, part, f"{speaker_id}/{youtube}/{u + 1:05d}.wav", s, sentence(rng).lower()))
    return items


def build(out: Path, speakers: int = 8, videos: int = 4, utterances: int = 2, test_part_speakers: int = 2,
          seed: int = 0, workers: int = 2) -> dict:
    """Write the corpus and iden_split.txt under ``out`` (atomically); return clips per split code."""
    require_tools("espeak-ng", "sox")
    items = plan(speakers, videos, utterances, test_part_speakers, seed)
    with atomic_output_dir(out) as tmp:
        jobs = [(text, Speaker.from_index(index), tmp / part / "wav" / path, ()) for _, part, path, index, text in items]
        synthesize_all(jobs, workers)
        (tmp / SPLIT_FILE).write_text("".join(f"{split} {path}\n" for split, _, path, _, _ in items))
    return {code: sum(1 for item in items if item[0] == code) for code in (1, 2, 3)}


def overrides(out: Path) -> str:
    """The run_downstream.py -o string pointing the voxceleb1 recipe at a set made by this tool."""
    out = Path(out).resolve()
    return (f"config.downstream_expert.datarc.file_path={out},,"
            f"config.downstream_expert.datarc.meta_data={out / SPLIT_FILE}")


def main(argv=None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="output directory (must be empty or absent)")
    parser.add_argument("--speakers", type=int, default=8)
    parser.add_argument("--videos", type=int, default=4, help="videos per speaker (>= 3)")
    parser.add_argument("--utterances", type=int, default=2, help="clips per video")
    parser.add_argument("--test-part-speakers", type=int, default=2, help="speakers stored under test/wav")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sentence generator")
    parser.add_argument("--workers", type=int, default=2, help="parallel synthesis jobs")
    args = parser.parse_args(argv)
    try:
        plan(args.speakers, args.videos, args.utterances, args.test_part_speakers, args.seed)
    except ValueError as err:
        parser.error(str(err))
    code = tool_main(lambda: build(args.out, args.speakers, args.videos, args.utterances, args.test_part_speakers,
                                   args.seed, args.workers))
    if code == 0:
        print(f"run_downstream.py -d voxceleb1 -o \"{overrides(args.out)}\"")
    return code


if __name__ == "__main__":
    sys.exit(main())
