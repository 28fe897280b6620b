#!/usr/bin/env python3
"""Synthesize a small Speech Commands v0.01 set in the exact layout s3prl's speech_commands recipe reads.

    <out>/speech_commands_v0.01/<word>/<speaker>_nohash_<n>.wav   (train + dev, split by speaker hash)
    <out>/speech_commands_v0.01/_background_noise_/*.wav          (>1 s, become _silence_)
    <out>/speech_commands_test_set_v0.01/<class>/*.wav            (the 12 class folders)

Deterministic: the same arguments give the same files. Needs espeak-ng and sox.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import Speaker, noise, require_tools, speak  # noqa: E402

COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
UNKNOWN_WORDS = ["bed", "bird", "cat", "dog", "house", "tree"]
TRAIN_DIR = "speech_commands_v0.01"
TEST_DIR = "speech_commands_test_set_v0.01"
CLIP_EFFECTS = ("pad", "0.05", "1", "trim", "0", "1")  # exactly 1 s


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
    """Write the dataset under ``out`` and return counts per part."""
    require_tools("espeak-ng", "sox")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"output directory {out} is not empty; remove it or choose another")
    train_root, test_root = out / TRAIN_DIR, out / TEST_DIR
    ids = choose_speaker_ids(n_train, n_dev)
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
    for job in jobs:
        job[2].parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda job: speak(job[0], job[1], job[2], sox_effects=CLIP_EFFECTS), jobs))
    (train_root / "_background_noise_").mkdir(parents=True)
    for kind in ("whitenoise", "pinknoise", "brownnoise"):
        noise(train_root / "_background_noise_" / f"{kind}.wav", 10, kind)
    (test_root / "_silence_").mkdir(parents=True)
    for index in range(n_test):
        noise(test_root / "_silence_" / f"silence{index:03d}.wav", 1, "pinknoise", volume=0.02 + 0.01 * index)
    return {"train_speakers": n_train, "dev_speakers": n_dev, "clips": len(jobs) + 3 + n_test}


def main(argv=None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="output root (must be empty or absent)")
    parser.add_argument("--train-speakers", type=int, default=12)
    parser.add_argument("--dev-speakers", type=int, default=3)
    parser.add_argument("--test-speakers", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1, help="clips per speaker and word")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        counts = build(args.out, args.train_speakers, args.dev_speakers, args.test_speakers, args.repeats, args.workers)
    except (RuntimeError, FileExistsError) as err:
        if args.out.exists() and not isinstance(err, FileExistsError):
            shutil.rmtree(args.out, ignore_errors=True)  # nothing partial is left behind
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"speech_commands_root: {args.out / TRAIN_DIR}")
    print(f"speech_commands_test_root: {args.out / TEST_DIR}")
    print(f"counts: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
