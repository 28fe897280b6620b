"""Synthesize a small Speech Commands v0.01 set in the exact layout s3prl's speech_commands recipe reads.

    <out>/speech_commands_v0.01/<word>/<speaker>_nohash_<n>.wav   (train + dev, split by speaker hash)
    <out>/speech_commands_v0.01/_background_noise_/*.wav          (>1 s, become _silence_)
    <out>/speech_commands_test_set_v0.01/<class>/*.wav            (the 12 class folders)

Profiles:
- ``small`` (default): espeak-ng speakers (``Speaker.from_index``), clean 1 s clips, 3 test speakers.
- ``power``: the evaluation set of the reproduction: speakers from espeak-ng, flite and festival with
  independent pitch / formant / rate (``voices.random_voice``), the 20 auxiliary words of Speech
  Commands v0.01 as ``_unknown_``, each word at a random offset in its 1 s clip, every clip recorded
  under a drawn condition (``upstream_merged.synth.degrade``: ``train`` profile for train/dev,
  ``test`` for the test set: reverberation, channel, noise at 0-20 dB SNR, level). Defaults: 220 train
  + 40 dev speakers x 16 words (>= 3,000 train clips), 100 test speakers x 11 words + 100 silence
  clips (1,200 test clips). Speakers of train, dev and test are disjoint (ids and voices). Every
  clip's speaker, voice, offset and condition are in ``<out>/clips.jsonl``.

Deterministic: the same arguments give the same files. Needs espeak-ng and sox (power: also flite, festival).
"""
from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import List

import numpy as np
import soundfile as sf

from upstream_merged.data.runner import Layout, QUIET, option
from upstream_merged.data.shared import (Speaker, atomic_output_dir, noise, overlaps, pool_map, require_tools,
                                        synthesize_all, synthesize_voices)
from upstream_merged.synth import degrade
from upstream_merged.synth.voices import random_voice, require_programs

COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
UNKNOWN_WORDS = ["bed", "bird", "cat", "dog", "house", "tree"]
TRAIN_DIR = "speech_commands_v0.01"
TEST_DIR = "speech_commands_test_set_v0.01"
CLIP_EFFECTS = ("pad", "0.05", "1", "trim", "0", "1")  # exactly 1 s
# Speech Commands v0.01's 20 auxiliary words (all become _unknown_)
AUXILIARY_WORDS = ["bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine", "one",
                   "seven", "sheila", "six", "three", "tree", "two", "wow", "zero"]
RATE = 16000
CLIPS_FILE = "clips.jsonl"
BACKGROUND_NOISES = ("white", "pink", "brown", "hum", "babble")
SPLIT_CODES = {"train": 0, "dev": 1, "test": 2}


def split_of(speaker_id: str) -> str:
    """The split s3prl assigns to a speaker id: 'dev', 'dropped' or 'train' (its sha1 rule)."""
    max_uttr = 2**27 - 1
    pct = (int(hashlib.sha1(speaker_id.encode()).hexdigest(), 16) % (max_uttr + 1)) * (100.0 / max_uttr)
    return "dev" if pct < 10 else "dropped" if pct < 20 else "train"


def choose_speaker_ids(n_train: int, n_dev: int) -> dict[str, list[str]]:
    """Deterministic hex speaker ids that land in s3prl's train and dev splits in the asked numbers."""
    chosen = {"train": [], "dev": []}
    index = 0
    while len(chosen["train"]) < n_train or len(chosen["dev"]) < n_dev:
        sid = hashlib.md5(f"speaker{index}".encode()).hexdigest()[:8]
        split = split_of(sid)
        want = n_train if split == "train" else n_dev if split == "dev" else 0
        if split in chosen and len(chosen[split]) < want:
            chosen[split].append(sid)
        index += 1
    return chosen


def build(out: Path, n_train: int, n_dev: int, n_test: int, repeats: int, workers: int) -> dict[str, int]:
    """Write the dataset under ``out`` (atomically) and return counts per part."""
    require_tools("espeak-ng", "sox")
    ids = choose_speaker_ids(n_train, n_dev)
    with atomic_output_dir(out) as tmp:
        train_root, test_root = tmp / TRAIN_DIR, tmp / TEST_DIR
        jobs = []  # (text, speaker, path)
        for split in ("train", "dev"):
            for sid in ids[split]:
                speaker = Speaker.from_index(int(sid, 16) % 997)
                for word in COMMANDS + UNKNOWN_WORDS:
                    for n in range(repeats):
                        jobs.append((word, speaker, train_root / word / f"{sid}_nohash_{n}.wav"))
        for index in range(n_test):
            speaker = Speaker.from_index(500 + index)
            for word in COMMANDS:
                jobs.append((word, speaker, test_root / word / f"test{index:03d}_nohash_0.wav"))
            jobs.append((UNKNOWN_WORDS[index % len(UNKNOWN_WORDS)], speaker, test_root / "_unknown_" / f"test{index:03d}_nohash_0.wav"))
        synthesize_all([(word, speaker, path, CLIP_EFFECTS) for word, speaker, path in jobs], workers)
        (train_root / "_background_noise_").mkdir(parents=True)
        for kind in ("whitenoise", "pinknoise", "brownnoise"):
            noise(train_root / "_background_noise_" / f"{kind}.wav", 10, kind)
        (test_root / "_silence_").mkdir(parents=True)
        for index in range(n_test):
            noise(test_root / "_silence_" / f"silence{index:03d}.wav", 1, "pinknoise", volume=0.02 + 0.01 * index)
    return {"train_speakers": n_train, "dev_speakers": n_dev, "clips": len(jobs) + 3 + n_test}


def test_speaker_ids(n: int) -> list[str]:
    """Hex ids of the test speakers (their own namespace: never equal to a train/dev id)."""
    return [hashlib.md5(f"test-speaker{index}".encode()).hexdigest()[:8] for index in range(n)]


def plan_power(n_train: int, n_dev: int, n_test: int, unknown_per_speaker: int, seed: int,
               train_conditions: str, test_conditions: str) -> list[dict]:
    """Every clip of the power profile: split, class folder, file name, word, speaker, voice and condition."""
    ids = choose_speaker_ids(n_train, n_dev)
    ids["test"] = test_speaker_ids(n_test)
    taken = set(ids["train"]) | set(ids["dev"])
    if taken & set(ids["test"]):
        raise RuntimeError("a test speaker id collides with a train/dev id; change test_speaker_ids")
    clips = []
    for split in ("train", "dev", "test"):
        code = SPLIT_CODES[split]
        for index, sid in enumerate(ids[split]):
            rng = np.random.default_rng([seed, code, index])
            voice = random_voice(rng)
            unknown = [AUXILIARY_WORDS[i] for i in rng.permutation(len(AUXILIARY_WORDS))]
            words = COMMANDS + unknown[: (1 if split == "test" else unknown_per_speaker)]
            profile = test_conditions if split == "test" else train_conditions
            for w, word in enumerate(words):
                clip_rng = np.random.default_rng([seed, code, index, w])
                folder = word if split != "test" or word in COMMANDS else "_unknown_"
                clips.append({"split": split, "folder": folder, "word": word, "speaker": sid,
                              "file": f"{sid}_nohash_0.wav", "voice": voice,
                              "start": float(clip_rng.uniform()),  # where in the free part of the second it begins
                              "condition": degrade.draw_condition(clip_rng, profile)})
    return clips


def place_in_second(speech: np.ndarray, start: float) -> tuple[np.ndarray, float, bool]:
    """A 1 s clip with ``speech`` beginning at ``start`` x the free time (cut with a 10 ms fade when too long)."""
    clip = np.zeros(RATE, dtype=np.float32)
    truncated = len(speech) > RATE
    if truncated:
        speech = speech[:RATE].copy()
        speech[-160:] *= np.linspace(1.0, 0.0, 160, dtype=np.float32)
    offset = int(start * (RATE - len(speech)))
    clip[offset: offset + len(speech)] = speech
    return clip, offset / RATE, truncated


def _noise_clip(seconds: float, condition: degrade.Condition, kind: str) -> np.ndarray:
    """Noise only (a _silence_ clip or a background file) at the condition's level."""
    audio = degrade.make_noise(kind, int(seconds * RATE), RATE, np.random.default_rng(condition.noise_seed))
    return audio * np.float32(10 ** (condition.peak_dbfs / 20) / float(np.max(np.abs(audio))))


def build_power(out: Path, n_train: int = 220, n_dev: int = 40, n_test: int = 100, unknown_per_speaker: int = 6,
                seed: int = 0, workers: int = 2, train_conditions: str = "train", test_conditions: str = "test",
                quiet: bool = False) -> dict:
    """Write the power-profile set under ``out`` (atomically); return counts, speakers per split and seconds taken."""
    require_programs("espeak-ng", "flite", "text2wave", "sox")
    started = time.time()
    clips = plan_power(n_train, n_dev, n_test, unknown_per_speaker, seed, train_conditions, test_conditions)
    with atomic_output_dir(out) as tmp:
        roots = {"train": tmp / TRAIN_DIR, "dev": tmp / TRAIN_DIR, "test": tmp / TEST_DIR}
        with tempfile.TemporaryDirectory(dir=tmp) as raw_dir:
            raws = synthesize_voices([(c["word"], c["voice"]) for c in clips], Path(raw_dir), RATE, workers,
                                     "speech_commands: synthesize", quiet)

            def finish(item: tuple[dict, Path]) -> dict:
                clip, raw = item
                speech, _ = sf.read(str(raw), dtype="float32")
                audio, offset, truncated = place_in_second(speech, clip["start"])
                path = roots[clip["split"]] / clip["folder"] / clip["file"]
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(path), degrade.apply(audio, RATE, clip["condition"]), RATE, subtype="PCM_16")
                return {"path": str(path.relative_to(tmp)), "split": clip["split"], "label": clip["folder"],
                        "word": clip["word"], "speaker": clip["speaker"], "voice": asdict(clip["voice"]),
                        "offset_s": round(offset, 4), "speech_s": round(len(speech) / RATE, 4),
                        "truncated": truncated, "condition": clip["condition"].to_json()}

            rows = pool_map(finish, list(zip(clips, raws)), workers, "speech_commands: record", quiet)
        rng = np.random.default_rng([seed, 99])
        (roots["train"] / "_background_noise_").mkdir(parents=True)
        for kind in BACKGROUND_NOISES:  # train/dev _silence_: random 1 s crops of these (s3prl)
            condition = degrade.draw_condition(rng, train_conditions)
            sf.write(str(roots["train"] / "_background_noise_" / f"{kind}.wav"), _noise_clip(30.0, condition, kind),
                     RATE, subtype="PCM_16")
        (roots["test"] / "_silence_").mkdir(parents=True)
        for index in range(n_test):
            condition = degrade.draw_condition(rng, test_conditions)
            kind = degrade.NOISE_KINDS[index % len(degrade.NOISE_KINDS)]
            path = roots["test"] / "_silence_" / f"silence{index:04d}_nohash_0.wav"
            sf.write(str(path), _noise_clip(1.0, condition, kind), RATE, subtype="PCM_16")
            rows.append({"path": str(path.relative_to(tmp)), "split": "test", "label": "_silence_", "word": None,
                         "speaker": None, "noise": kind, "condition": condition.to_json()})
        degrade.write_conditions(rows, tmp / CLIPS_FILE)
    return power_summary(rows, time.time() - started)


def power_summary(rows: list[dict], seconds: float) -> dict:
    """Clip counts per split and class, speakers per split, their overlaps and the generation time."""
    counts = {split: sum(1 for r in rows if r["split"] == split) for split in ("train", "dev", "test")}
    per_class = {split: {c: sum(1 for r in rows if r["split"] == split and r["label"] == c)
                         for c in sorted({r["label"] for r in rows if r["split"] == split})}
                 for split in ("train", "dev", "test")}
    speakers = {split: sorted({r["speaker"] for r in rows if r["split"] == split and r["speaker"]})
                for split in ("train", "dev", "test")}
    voices = {split: {json.dumps(r["voice"], sort_keys=True) for r in rows if r["split"] == split and r.get("voice")}
              for split in ("train", "dev", "test")}
    return {"clips": counts, "clips_per_class": per_class,
            "speakers": {split: len(ids) for split, ids in speakers.items()},
            "speaker_overlap": overlaps(speakers), "voice_overlap": overlaps(voices),
            "engines": {split: {e: sum(1 for r in rows if r["split"] == split and (r.get("voice") or {}).get("engine") == e)
                                for e in ("espeak", "flite", "festival")} for split in ("train", "dev", "test")},
            "truncated_clips": sum(1 for r in rows if r.get("truncated")),
            "generation_seconds": round(seconds, 1)}


def _write(args) -> dict:
    """Build the asked profile (speaker numbers default per profile)."""
    power = args.profile == "power"
    n_train = args.train_speakers if args.train_speakers is not None else (220 if power else 12)
    n_dev = args.dev_speakers if args.dev_speakers is not None else (40 if power else 3)
    n_test = args.test_speakers if args.test_speakers is not None else (100 if power else 3)
    if power:
        return build_power(args.out, n_train, n_dev, n_test, args.unknown_per_speaker, args.seed, args.workers,
                           args.train_conditions, args.test_conditions, args.quiet)
    return build(args.out, n_train, n_dev, n_test, args.repeats, args.workers)


def _report(args, counts: dict) -> List[str]:
    """The two roots the recipe's config names, and the counts."""
    return [f"speech_commands_root: {args.out / TRAIN_DIR}", f"speech_commands_test_root: {args.out / TEST_DIR}",
            f"counts: {json.dumps(counts) if args.profile == 'power' else counts}"]


LAYOUT = Layout(
    name="speech_commands", description=__doc__, write=_write, report=_report, summary_profiles=("power",),
    out_help="output root (must be empty or absent)",
    options=(option("--profile", choices=("small", "power"), default="small",
                    help="small: the original espeak-ng set; power: the reproduction's evaluation set (see above)"),
             option("--train-speakers", type=int, default=None, help="default 12 (small) / 220 (power)"),
             option("--dev-speakers", type=int, default=None, help="default 3 (small) / 40 (power)"),
             option("--test-speakers", type=int, default=None, help="default 3 (small) / 100 (power)"),
             option("--repeats", type=int, default=1, help="small: clips per speaker and word"),
             option("--unknown-per-speaker", type=int, default=6, help="power: auxiliary words per train/dev speaker"),
             option("--train-conditions", default="train", choices=sorted(degrade.PROFILES),
                    help="power: degrade profile of train/dev clips"),
             option("--test-conditions", default="test", choices=sorted(degrade.PROFILES),
                    help="power: degrade profile of test clips"),
             option("--seed", type=int, default=0, help="power: seed of voices, words and conditions"),
             option("--summary", type=Path, default=None, help="power: also write the summary JSON here"),
             option("--workers", type=int, default=4), QUIET))
