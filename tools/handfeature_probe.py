#!/usr/bin/env python3
"""Hand-feature control rows for an evaluation set: logistic regression on pooled MFCC / log-mel / CQT features.

    python tools/handfeature_probe.py speech_commands /work/evalsets/speech_commands
    python tools/handfeature_probe.py voxceleb1 /work/evalsets/voxceleb1
    python tools/handfeature_probe.py nsynth /work/evalsets/nsynth --summary results/evalsets/nsynth.json

Clips are listed the way the stock recipes list them (s3prl's speech_commands ``split_dataset`` and test
folders; voxceleb1's ``iden_split.txt``; NSynth's examples.json through our reader), so the figures are
for the very splits a probe trains and tests on. Each clip becomes the time mean and standard deviation
of its frames (MFCC 40, log-mel 64, log-CQT 84 bins from C1 for music); a standardised multinomial
logistic regression is fitted on train with C picked on dev, and scored on test. The figures answer two
questions: is the task solvable from the audio (pitch and family must be well above chance), and does
a hand feature already match an encoder (then the task measures the feature, and the table says so).
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
log = logging.getLogger("handfeature_probe")

RATE = 16000
SPLITS = ("train", "dev", "test")
Item = Tuple[str, int, object]  # (path, label, crop start in samples or None)


# ----------------------------------------------------------------------------- clip lists per task
def speech_commands_items(root: Path, silence_crops: int, seed: int) -> Dict[str, List[Item]]:
    """train/dev from s3prl's split_dataset (+ random 1 s crops of _background_noise_), test from its folders."""
    from s3prl.downstream.speech_commands.dataset import CLASSES
    from s3prl.downstream.speech_commands.expert import split_dataset

    train_root, test_root = root / "speech_commands_v0.01", root / "speech_commands_test_set_v0.01"
    index = {name: i for i, name in enumerate(CLASSES)}
    label = lambda name: index.get(name, index["_unknown_"])  # noqa: E731
    train, dev = split_dataset(train_root)
    rng = random.Random(seed)
    out = {"train": [(str(p), label(c), None) for c, p in train], "dev": [(str(p), label(c), None) for c, p in dev]}
    for split in ("train", "dev"):
        for noise in sorted((train_root / "_background_noise_").glob("*.wav")):
            frames = sf.info(str(noise)).frames
            out[split] += [(str(noise), index["_silence_"], rng.randrange(frames - RATE)) for _ in range(silence_crops)]
    out["test"] = [(str(p), index[p.parent.name], None) for p in sorted(test_root.glob("*/*.wav"))]
    return out


def voxceleb1_items(root: Path) -> Dict[str, List[Item]]:
    """The clips of iden_split.txt (1 train, 2 dev, 3 test), labelled by speaker id as the recipe does."""
    out: Dict[str, List[Item]] = {s: [] for s in SPLITS}
    for line in (root / "iden_split.txt").read_text().splitlines():
        code, rel = line.split()
        path = next(root.glob(f"*/wav/{rel}"))
        out[SPLITS[int(code) - 1]].append((str(path), int(rel.split("/")[0][2:]) - 10001, None))
    return out


def nsynth_items(root: Path, target: str) -> Dict[str, List[Item]]:
    """NSynth notes through upstream_merged's reader (``target``: pitch or instrument_family)."""
    from upstream_merged.downstream.readers import read_nsynth

    data = read_nsynth({"nsynth_root": str(root)}, target)
    return {split: [(str(e.path), e.label, None) for e in data.splits[split]] for split in SPLITS}


# ----------------------------------------------------------------------------- features
def load(item: Item, seconds: float | None) -> np.ndarray:
    """A clip's samples (mono float32), cropped to 1 s at ``start`` or to its first ``seconds``."""
    path, _, start = item
    if start is not None:
        audio, _ = sf.read(path, start=start, stop=start + RATE, dtype="float32", always_2d=True)
    else:
        stop = None if seconds is None else int(seconds * RATE)
        audio, _ = sf.read(path, stop=stop, dtype="float32", always_2d=True)
    return audio.mean(1)


def pooled(frames: np.ndarray) -> np.ndarray:
    """Time mean and standard deviation of (features, time) frames."""
    return np.concatenate([frames.mean(1), frames.std(1)])


def features(audio: np.ndarray, kinds: Sequence[str]) -> Dict[str, np.ndarray]:
    """Pooled MFCC (40), log-mel (64) and log-CQT (84 bins from C1) vectors of one clip."""
    import librosa

    out = {}
    if "mfcc" in kinds or "logmel" in kinds:
        mel = librosa.feature.melspectrogram(y=audio, sr=RATE, n_fft=512, hop_length=160, n_mels=64)
        logmel = np.log(mel + 1e-8)
        if "logmel" in kinds:
            out["logmel"] = pooled(logmel)
        if "mfcc" in kinds:
            out["mfcc"] = pooled(librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=40))
    if "cqt" in kinds:
        cqt = np.abs(librosa.cqt(audio, sr=RATE, hop_length=512, fmin=librosa.midi_to_hz(24), n_bins=84))
        out["cqt"] = pooled(np.log(cqt + 1e-6))
    return out


def extract(items: Dict[str, List[Item]], kinds: Sequence[str], seconds: float | None, workers: int
            ) -> Dict[str, Dict[str, np.ndarray]]:
    """{split: {kind: (clips, dims) array}} for every clip."""
    from tqdm import tqdm

    out = {}
    for split, split_items in items.items():
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            rows = list(tqdm(pool.map(lambda it: features(load(it, seconds), kinds), split_items),
                             total=len(split_items), desc=f"features {split}", mininterval=5.0))
        out[split] = {k: np.stack([r[k] for r in rows]) for k in kinds}
    return out


# ----------------------------------------------------------------------------- probe
def probe(x: Dict[str, np.ndarray], y: Dict[str, np.ndarray], cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0)) -> dict:
    """Standardised multinomial logistic regression: C chosen on dev; dev and test accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x["train"])
    z = {s: scaler.transform(x[s]) for s in SPLITS}
    best = None
    for c in cs:
        model = LogisticRegression(C=c, max_iter=3000).fit(z["train"], y["train"])
        dev = float(model.score(z["dev"], y["dev"]))
        if best is None or dev > best[0]:
            best = (dev, c, model)
    dev, c, model = best
    test = float(model.score(z["test"], y["test"]))
    n = len(y["test"])
    return {"C": c, "dev_acc": round(dev, 4), "test_acc": round(test, 4),
            "test_se": round(float(np.sqrt(test * (1 - test) / n)), 4)}


def chance(y: Dict[str, np.ndarray]) -> dict:
    """Majority-class accuracy on test (the train majority class) and 1 / classes present in test."""
    values, counts = np.unique(y["train"], return_counts=True)
    majority = values[np.argmax(counts)]
    return {"majority_of_train_on_test": round(float(np.mean(y["test"] == majority)), 4),
            "uniform": round(1.0 / len(np.unique(y["test"])), 4), "test_clips": int(len(y["test"])),
            "classes_in_test": int(len(np.unique(y["test"])))}


def run(task: str, root: Path, workers: int, seed: int) -> dict:
    """All control rows of one set: {target: {"chance": ..., kind: probe figures}}."""
    started = time.time()
    if task == "speech_commands":
        targets: Dict[str, Callable[[], Dict[str, List[Item]]]] = {
            "keyword": lambda: speech_commands_items(root, silence_crops=40, seed=seed)}
        kinds, seconds = ("mfcc", "logmel"), None
    elif task == "voxceleb1":
        targets, kinds, seconds = {"speaker": lambda: voxceleb1_items(root)}, ("mfcc", "logmel"), None
    elif task == "nsynth":
        targets = {"pitch": lambda: nsynth_items(root, "pitch"),
                   "instrument_family": lambda: nsynth_items(root, "instrument_family")}
        kinds, seconds = ("mfcc", "logmel", "cqt"), 3.0  # the held part of the note
    else:
        raise ValueError(f"task {task!r} is not speech_commands, voxceleb1 or nsynth")
    result = {}
    cache: Dict[Tuple[str, ...], Dict[str, Dict[str, np.ndarray]]] = {}
    for target, list_items in targets.items():
        items = list_items()
        key = tuple(p for s in SPLITS for p, _, _ in items[s])
        if key not in cache:  # nsynth's two targets share the clips
            cache[key] = extract(items, kinds, seconds, workers)
        feats = cache[key]
        y = {s: np.array([label for _, label, _ in items[s]]) for s in SPLITS}
        result[target] = {"chance": chance(y)}
        for kind in kinds:
            result[target][kind] = probe({s: feats[s][kind] for s in SPLITS}, y)
            log.info("%s %s %s: %s", task, target, kind, result[target][kind])
    result["seconds"] = round(time.time() - started, 1)
    return result


def main(argv: List[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=("speech_commands", "voxceleb1", "nsynth"))
    parser.add_argument("root", type=Path, help="the set's root (as the writer's OUT)")
    parser.add_argument("--summary", type=Path, default=None,
                        help="a JSON file to add the figures to (key hand_feature_probe); created if absent")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the _silence_ crops")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.root.is_dir():
        print(f"error: {args.root} is not a directory (make the set first)", file=sys.stderr)
        return 2
    figures = run(args.task, args.root, args.workers, args.seed)
    print(json.dumps(figures, indent=1))
    if args.summary:
        from synth import write_json

        summary = json.loads(args.summary.read_text()) if args.summary.is_file() else {}
        summary["hand_feature_probe"] = figures
        write_json(args.summary, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
