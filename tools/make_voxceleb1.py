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

``--profile power`` (the reproduction's evaluation set) instead makes speakers with
``voices.distinct_voices`` (espeak-ng, flite and festival voices; pitch, formant, rate and accent varied
independently and kept apart) and, per speaker, ``--train-videos`` x ``--train-utterances`` train,
``--dev-videos`` x ``--dev-utterances`` dev and ``--test-videos`` x ``--test-utterances`` test clips
(defaults: 60 speakers x 3x4 / 1x4 / 3x6 = 720 / 240 / 1,080 clips). Every clip is one seeded sentence
that no other split says (sentences are disjoint between splits), with a small per-clip pitch/rate
jitter; every video is one recording condition (``upstream_merged.synth.degrade``: room, channel, noise,
level; ``train`` profile for train and dev videos, ``test`` for test videos) with per-clip jitter of
SNR and level, so recordings differ between splits. ``<out>/clips.jsonl`` records each clip's text,
voice, video and condition.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import List, Tuple

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_librispeech import sentence  # noqa: E402
from synth import (Speaker, atomic_output_dir, overlaps, pool_map, require_tools, stable_id,  # noqa: E402
                   synthesize_all, tool_main, voice_progress, write_json)

from upstream_merged.synth import degrade, speech  # noqa: E402
from upstream_merged.synth.voices import (distinct_voices, near_duplicates, require_programs,  # noqa: E402
                                          synthesize_many)

YOUTUBE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
FIRST_ID = 10001  # s3prl: label = int(id[2:]) - 10001, 1251 classes
SPLIT_FILE = "iden_split.txt"
CLIPS_FILE = "clips.jsonl"
RATE = 16000
SPLIT_NAMES = {1: "train", 2: "dev", 3: "test"}
PITCH_JITTER_CENTS = 20  # per-clip variation of one speaker (smaller than the speakers' spacing)
RATE_JITTER = 0.04


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


def plan_power(speakers: int, videos: dict, utterances: dict, seed: int, train_conditions: str,
               test_conditions: str) -> list[dict]:
    """Every clip of the power profile, in iden_split order: split code, path, speaker, text, voice, condition."""
    voices = distinct_voices(speakers, seed)
    used: dict[str, int] = {}  # sentence -> split code: no sentence is said in two splits
    clips = []
    for s, base in enumerate(voices):
        speaker_id = f"id{FIRST_ID + s}"
        v = 0
        for code in (1, 2, 3):
            profile = test_conditions if code == 3 else train_conditions
            for _ in range(videos[code]):
                rng = np.random.default_rng([seed, s, v])
                youtube = stable_id(f"vox-power-{seed}-{s}-{v}", 11, YOUTUBE_ALPHABET)
                room = degrade.draw_condition(rng, profile)
                for u in range(utterances[code]):
                    text = speech.sentence(rng)
                    while used.get(text, code) != code:
                        text = speech.sentence(rng)
                    used[text] = code
                    voice = replace(base, pitch_cents=base.pitch_cents + int(rng.integers(-PITCH_JITTER_CENTS,
                                                                                            PITCH_JITTER_CENTS + 1)),
                                    rate=round(base.rate * float(rng.uniform(1 - RATE_JITTER, 1 + RATE_JITTER)), 3))
                    clips.append({"code": code, "path": f"{speaker_id}/{youtube}/{u + 1:05d}.wav", "speaker": speaker_id,
                                  "video": youtube, "text": text, "voice": voice, "base_voice": base,
                                  "lead_s": round(float(rng.uniform(0.05, 0.3)), 3), "video_condition": room,
                                  "condition": degrade.jitter(room, rng)})
                v += 1
    return clips


def build_power(out: Path, speakers: int = 60, videos: tuple = (3, 1, 3), utterances: tuple = (4, 4, 6), seed: int = 0,
                workers: int = 2, train_conditions: str = "train", test_conditions: str = "test",
                quiet: bool = False) -> dict:
    """Write the power-profile corpus, iden_split.txt and clips.jsonl under ``out`` (atomically); return a summary."""
    if speakers > 1251:
        raise ValueError(f"--speakers {speakers}: the voxceleb1 recipe has 1251 classes")
    if min(videos) < 1 or min(utterances) < 1:
        raise ValueError(f"every split needs >= 1 video and utterance, got videos={videos} utterances={utterances}")
    require_programs("espeak-ng", "flite", "text2wave", "sox")
    started = time.time()
    clips = plan_power(speakers, dict(zip((1, 2, 3), videos)), dict(zip((1, 2, 3), utterances)), seed,
                       train_conditions, test_conditions)
    with atomic_output_dir(out) as tmp:
        with tempfile.TemporaryDirectory(dir=tmp) as raw_dir:
            raws = [Path(raw_dir) / f"{i}.wav" for i in range(len(clips))]
            bar = voice_progress(len(clips), "voxceleb1: synthesize", quiet)
            synthesize_many([(c["text"], c["voice"], raw, ()) for c, raw in zip(clips, raws)], RATE, workers,
                            progress=bar.update)
            bar.close()

            def finish(item: tuple) -> dict:
                clip, raw = item
                speech_audio, _ = sf.read(str(raw), dtype="float32")
                audio = np.concatenate([np.zeros(int(clip["lead_s"] * RATE), np.float32), speech_audio,
                                        np.zeros(int(0.3 * RATE), np.float32)])  # room for the reverb tail
                path = tmp / "dev" / "wav" / clip["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(path), degrade.apply(audio, RATE, clip["condition"]), RATE, subtype="PCM_16")
                return {"path": clip["path"], "split": SPLIT_NAMES[clip["code"]], "speaker": clip["speaker"],
                        "video": clip["video"], "text": clip["text"], "voice": asdict(clip["voice"]),
                        "base_voice": asdict(clip["base_voice"]), "seconds": round(len(audio) / RATE, 3),
                        "video_condition": clip["video_condition"].to_json(), "condition": clip["condition"].to_json()}

            rows = pool_map(finish, list(zip(clips, raws)), workers, "voxceleb1: record", quiet)
        (tmp / SPLIT_FILE).write_text("".join(f"{c['code']} {c['path']}\n" for c in clips))
        degrade.write_conditions(rows, tmp / CLIPS_FILE)
    return power_summary(rows, time.time() - started)


def power_summary(rows: list[dict], seconds: float) -> dict:
    """Clips per split, utterances per speaker, and what the splits share (sentences, videos, conditions)."""
    splits = ("train", "dev", "test")
    by = lambda key: {s: [json.dumps(r[key], sort_keys=True) for r in rows if r["split"] == s] for s in splits}  # noqa: E731
    per_speaker = {s: sorted({sum(1 for r in rows if r["split"] == s and r["speaker"] == spk)
                              for spk in {r["speaker"] for r in rows}}) for s in splits}
    bases = {r["speaker"]: r["base_voice"] for r in rows}
    from upstream_merged.synth.voices import Voice, trait_distance, timbre

    voices = [Voice(**bases[k]) for k in sorted(bases)]
    closest = min((trait_distance(a, b) for i, a in enumerate(voices) for b in voices[i + 1:]
                   if timbre(a) == timbre(b)), default=None)
    return {"clips": {s: sum(1 for r in rows if r["split"] == s) for s in splits},
            "speakers": len(bases), "utterances_per_speaker": {s: [min(v), max(v)] for s, v in per_speaker.items()},
            "sentence_overlap": overlaps(by("text")), "video_overlap": overlaps(by("video")),
            "condition_overlap": overlaps(by("video_condition")),
            "engines": {e: sum(1 for v in voices if v.engine == e) for e in ("espeak", "flite", "festival")},
            "closest_same_timbre_distance": None if closest is None else round(closest, 3),
            "near_duplicate_speakers": len(near_duplicates(voices, 0.15)),
            "seconds_of_audio": {s: round(sum(r["seconds"] for r in rows if r["split"] == s), 1) for s in splits},
            "generation_seconds": round(seconds, 1)}


def main(argv=None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="output directory (must be empty or absent)")
    parser.add_argument("--profile", choices=("small", "power"), default="small",
                        help="small: the original espeak-ng set; power: the reproduction's evaluation set (see above)")
    parser.add_argument("--speakers", type=int, default=None, help="default 8 (small) / 60 (power)")
    parser.add_argument("--videos", type=int, default=4, help="small: videos per speaker (>= 3)")
    parser.add_argument("--utterances", type=int, default=2, help="small: clips per video")
    parser.add_argument("--test-part-speakers", type=int, default=2, help="small: speakers stored under test/wav")
    parser.add_argument("--train-videos", type=int, default=3, help="power")
    parser.add_argument("--dev-videos", type=int, default=1, help="power")
    parser.add_argument("--test-videos", type=int, default=3, help="power")
    parser.add_argument("--train-utterances", type=int, default=4, help="power: clips per train video")
    parser.add_argument("--dev-utterances", type=int, default=4, help="power: clips per dev video")
    parser.add_argument("--test-utterances", type=int, default=6, help="power: clips per test video")
    parser.add_argument("--train-conditions", default="train", choices=sorted(degrade.PROFILES), help="power")
    parser.add_argument("--test-conditions", default="test", choices=sorted(degrade.PROFILES), help="power")
    parser.add_argument("--summary", type=Path, default=None, help="power: also write the summary JSON here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sentence generator (power: of everything)")
    parser.add_argument("--workers", type=int, default=2, help="parallel synthesis jobs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.profile == "power":
        speakers = 60 if args.speakers is None else args.speakers

        def build_and_report() -> None:
            summary = build_power(args.out, speakers, (args.train_videos, args.dev_videos, args.test_videos),
                                  (args.train_utterances, args.dev_utterances, args.test_utterances), args.seed,
                                  args.workers, args.train_conditions, args.test_conditions, args.quiet)
            if args.summary:
                write_json(args.summary, dict(summary, task="voxceleb1", profile="power", seed=args.seed,
                                              args=[str(a) for a in (argv if argv is not None else sys.argv[1:])]))
            print(json.dumps(summary))

        try:
            code = tool_main(build_and_report)
        except ValueError as err:
            parser.error(str(err))
    else:
        speakers = 8 if args.speakers is None else args.speakers
        try:
            plan(speakers, args.videos, args.utterances, args.test_part_speakers, args.seed)
        except ValueError as err:
            parser.error(str(err))
        code = tool_main(lambda: build(args.out, speakers, args.videos, args.utterances, args.test_part_speakers,
                                       args.seed, args.workers))
    if code == 0:
        print(f"run_downstream.py -d voxceleb1 -o \"{overrides(args.out)}\"")
    return code


if __name__ == "__main__":
    sys.exit(main())
