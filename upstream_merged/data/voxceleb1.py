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

import json
import random
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import soundfile as sf

from upstream_merged.data.runner import Layout, RecipeOverrides, QUIET, WORKERS, option
from upstream_merged.data.librispeech import sentence
from upstream_merged.data.shared import (Speaker, atomic_output_dir, overlaps, pool_map, require_tools, stable_id,
                                        synthesize_all, synthesize_voices)
from upstream_merged.synth import degrade, speech
from upstream_merged.synth.voices import distinct_voices, near_duplicates, require_programs

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


# the run_downstream.py -o string pointing the voxceleb1 recipe at a set made by this layout
overrides = RecipeOverrides(("datarc.file_path={out}", f"datarc.meta_data={{out}}/{SPLIT_FILE}"))


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
            raws = synthesize_voices([(c["text"], c["voice"]) for c in clips], Path(raw_dir), RATE, workers,
                                     "voxceleb1: synthesize", quiet)

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


def _check(args) -> Optional[str]:
    """The small profile's usage errors (the power profile's come from build_power before it writes)."""
    if args.profile == "small":
        try:
            plan(_speakers(args), args.videos, args.utterances, args.test_part_speakers, args.seed)
        except ValueError as err:
            return str(err)
    return None


def _speakers(args) -> int:
    return args.speakers if args.speakers is not None else 60 if args.profile == "power" else 8


def _write(args) -> dict:
    """Build the asked profile."""
    if args.profile == "power":
        return build_power(args.out, _speakers(args), (args.train_videos, args.dev_videos, args.test_videos),
                           (args.train_utterances, args.dev_utterances, args.test_utterances), args.seed,
                           args.workers, args.train_conditions, args.test_conditions, args.quiet)
    return build(args.out, _speakers(args), args.videos, args.utterances, args.test_part_speakers, args.seed,
                 args.workers)


def _report(args, result: dict) -> List[str]:
    """The power profile's summary, and the -o string of the voxceleb1 recipe."""
    return ([json.dumps(result)] if args.profile == "power" else []) + \
        [f"run_downstream.py -d voxceleb1 -o \"{overrides(args.out)}\""]


LAYOUT = Layout(
    name="voxceleb1", description=__doc__, write=_write, check=_check, report=_report, summary_profiles=("power",),
    options=(option("--profile", choices=("small", "power"), default="small",
                    help="small: the original espeak-ng set; power: the reproduction's evaluation set (see above)"),
             option("--speakers", type=int, default=None, help="default 8 (small) / 60 (power)"),
             option("--videos", type=int, default=4, help="small: videos per speaker (>= 3)"),
             option("--utterances", type=int, default=2, help="small: clips per video"),
             option("--test-part-speakers", type=int, default=2, help="small: speakers stored under test/wav"),
             option("--train-videos", type=int, default=3, help="power"),
             option("--dev-videos", type=int, default=1, help="power"),
             option("--test-videos", type=int, default=3, help="power"),
             option("--train-utterances", type=int, default=4, help="power: clips per train video"),
             option("--dev-utterances", type=int, default=4, help="power: clips per dev video"),
             option("--test-utterances", type=int, default=6, help="power: clips per test video"),
             option("--train-conditions", default="train", choices=sorted(degrade.PROFILES), help="power"),
             option("--test-conditions", default="test", choices=sorted(degrade.PROFILES), help="power"),
             option("--summary", type=Path, default=None, help="power: also write the summary JSON here"),
             option("--seed", type=int, default=0, help="seed of the sentence generator (power: of everything)"),
             WORKERS, QUIET))
