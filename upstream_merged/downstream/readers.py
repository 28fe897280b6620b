"""Metadata readers of the real datasets' layouts (NSynth, GTZAN, ESC-50) -> TaskData for the utterance tasks.

The synthetic sets of ``tools/make_{nsynth,gtzan,esc50}.py`` write the same layouts, so a real
download works unchanged:

- NSynth: ``<nsynth_root>/nsynth-{train,valid,test}/examples.json`` + ``audio/<note id>.wav``.
- GTZAN: ``<gtzan_root>/genres/<genre>/<genre>.000NN.wav`` (``.au`` and ``genres_original/`` also accepted);
  split lists ``{train,valid,test}_filtered.txt`` (lines ``blues/blues.00029.wav``, the
  fault-filtered split of Kereliuk et al. 2015 used by MARBLE) in ``split_dir`` (default: the root)
  when present, else a seeded stratified split.
- ESC-50: ``<esc50_root>/meta/esc50.csv`` + ``audio/*.wav``; fold ``test_fold`` is the test set,
  ``dev_fold`` (default: the next fold) the dev set, the other three train.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from upstream_merged.synth.music import PITCH_CLASSES

log = logging.getLogger(__name__)

NSYNTH_FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string",
                   "synth_lead", "vocal")
NSYNTH_DIRS = {"train": "nsynth-train", "dev": "nsynth-valid", "test": "nsynth-test"}
NSYNTH_TARGETS = ("pitch", "pitch_class", "instrument_family")
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
GTZAN_LISTS = {"train": "train_filtered.txt", "dev": "valid_filtered.txt", "test": "test_filtered.txt"}
ESC50_FOLDS = (1, 2, 3, 4, 5)
SPLITS = ("train", "dev", "test")


@dataclasses.dataclass(frozen=True)
class Example:
    """One labelled clip: its audio file, class index and a stable id (written to the prediction files)."""

    path: Path
    label: int
    uid: str


@dataclasses.dataclass(frozen=True)
class TaskData:
    """A task's examples per split ('train', 'dev', 'test') and its class names (index = label)."""

    splits: dict[str, list[Example]]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        missing = [s for s in SPLITS if not self.splits.get(s)]
        if missing:
            raise ValueError(f"the task's metadata gives no examples for split(s) {missing}")
        for split, examples in self.splits.items():
            bad = [e for e in examples if not 0 <= e.label < len(self.classes)]
            if bad:
                raise ValueError(f"{split}: label {bad[0].label} of {bad[0].path} is outside 0..{len(self.classes) - 1}")


def datarc_path(datarc: dict, key: str, must_exist: bool = True) -> Path:
    """``datarc[key]`` as a Path; an unset placeholder or a missing path is an error naming the -o key."""
    value = datarc.get(key)
    override = f"-o config.downstream_expert.datarc.{key}=/path/to/data"
    if value is None or str(value).startswith("UNSET"):
        raise ValueError(f"datarc.{key} is not set ({value!r}); point it at the dataset with {override}")
    path = Path(str(value)).expanduser()
    if must_exist and not path.exists():
        raise FileNotFoundError(f"datarc.{key}={str(value)!r} does not exist; fix it with {override}")
    return path


def read_nsynth(datarc: dict, target: str) -> TaskData:
    """NSynth notes labelled by MIDI pitch (128 classes), pitch class (12) or instrument family (11)."""
    if target not in NSYNTH_TARGETS:
        raise ValueError(f"NSynth target {target!r} is not one of {list(NSYNTH_TARGETS)}")
    root = datarc_path(datarc, "nsynth_root")
    classes = {"pitch": tuple(str(p) for p in range(128)), "pitch_class": PITCH_CLASSES,
               "instrument_family": NSYNTH_FAMILIES}[target]
    splits = {}
    for split, dirname in NSYNTH_DIRS.items():
        meta = root / dirname / "examples.json"
        if not meta.is_file():
            raise FileNotFoundError(f"{meta} is missing: datarc.nsynth_root must hold nsynth-train/, nsynth-valid/ "
                                    f"and nsynth-test/ (each with examples.json and audio/)")
        notes = json.loads(meta.read_text())
        examples = []
        for note_id in sorted(notes):
            entry = notes[note_id]
            label = {"pitch": lambda e: int(e["pitch"]), "pitch_class": lambda e: int(e["pitch"]) % 12,
                     "instrument_family": lambda e: int(e["instrument_family"])}[target](entry)
            examples.append(Example(root / dirname / "audio" / f"{note_id}.wav", label, note_id))
        splits[split] = examples
    return TaskData(splits, classes)


def _gtzan_genres_dir(root: Path) -> Path:
    for name in ("genres", "genres_original"):
        if (root / name).is_dir():
            return root / name
    if any((root / g).is_dir() for g in GTZAN_GENRES):
        return root
    raise FileNotFoundError(f"no GTZAN genre folders under {root}: expected {root}/genres/<genre>/<genre>.000NN.wav "
                            f"(fix datarc.gtzan_root)")


def _audio_files(folder: Path) -> list[Path]:
    """GTZAN clips of one genre folder: .wav (converted copies) or .au (marsyas' original archive)."""
    return sorted(p for p in folder.iterdir() if p.suffix in (".wav", ".au"))


def _readable(path: Path) -> bool:
    try:
        sf.info(str(path))
        return True
    except RuntimeError:  # GTZAN's jazz.00054.wav is famously unreadable
        log.warning("skipping unreadable GTZAN file %s", path)
        return False


def read_gtzan(datarc: dict) -> TaskData:
    """GTZAN genres, split by the fault-filtered lists when present, otherwise a seeded stratified split."""
    root = datarc_path(datarc, "gtzan_root")
    genres_dir = _gtzan_genres_dir(root)
    present = sorted(p.name for p in genres_dir.iterdir() if p.is_dir() and _audio_files(p))
    classes = GTZAN_GENRES if set(present) <= set(GTZAN_GENRES) else tuple(present)
    index = {g: i for i, g in enumerate(classes)}

    def example(rel: str) -> Example:
        genre = rel.split("/")[0]
        if genre not in index:
            raise ValueError(f"GTZAN list entry {rel!r}: unknown genre {genre!r} (expected one of {list(classes)})")
        path = genres_dir / rel
        if not path.exists() and path.with_suffix(".au").exists():  # lists name .wav; marsyas' archive has .au
            path = path.with_suffix(".au")
        return Example(path, index[genre], rel.rsplit(".", 1)[0])

    split_dir = Path(datarc.get("split_dir") or root)
    lists = {split: split_dir / name for split, name in GTZAN_LISTS.items()}
    if all(p.is_file() for p in lists.values()):
        log.info("GTZAN: using the split lists in %s", split_dir)
        splits = {split: [example(line.strip()) for line in path.read_text().splitlines() if line.strip()]
                  for split, path in lists.items()}
        return TaskData(splits, classes)
    if any(p.is_file() for p in lists.values()):
        raise FileNotFoundError(f"only some of {list(GTZAN_LISTS.values())} exist in {split_dir}; provide all three")
    ratio = [float(r) for r in datarc.get("split_ratio", (0.8, 0.1, 0.1))]
    if len(ratio) != 3 or min(ratio) <= 0:
        raise ValueError(f"datarc.split_ratio={ratio} must be three positive train/dev/test fractions")
    rng = np.random.default_rng(int(datarc.get("split_seed", 0)))
    splits = {s: [] for s in GTZAN_LISTS}
    for genre in present:
        files = [p for p in _audio_files(genres_dir / genre) if _readable(p)]
        order = rng.permutation(len(files))
        n_dev = max(1, int(round(len(files) * ratio[1] / sum(ratio))))
        n_test = max(1, int(round(len(files) * ratio[2] / sum(ratio))))
        for rank, i in enumerate(order):
            split = "test" if rank < n_test else "dev" if rank < n_test + n_dev else "train"
            splits[split].append(example(f"{genre}/{files[i].name}"))
    log.info("GTZAN: no split lists in %s; seeded stratified split %s (seed %s)", split_dir, ratio,
             datarc.get("split_seed", 0))
    return TaskData(splits, classes)


def read_esc50(datarc: dict) -> TaskData:
    """ESC-50 clips by fold: test = ``test_fold``, dev = ``dev_fold`` (default the next fold), train = the rest."""
    root = datarc_path(datarc, "esc50_root")
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} is missing: datarc.esc50_root must hold meta/esc50.csv and audio/")
    test_fold = int(datarc.get("test_fold", 1))
    dev_fold = int(datarc.get("dev_fold") or test_fold % len(ESC50_FOLDS) + 1)
    if test_fold not in ESC50_FOLDS or dev_fold not in ESC50_FOLDS or test_fold == dev_fold:
        raise ValueError(f"datarc.test_fold={test_fold} and datarc.dev_fold={dev_fold} must be two different folds "
                         f"of {list(ESC50_FOLDS)}")
    with open(meta, newline="") as f:
        rows = list(csv.DictReader(f))
    names: dict[int, str] = {}
    for row in rows:
        target = int(row["target"])
        if names.setdefault(target, row["category"]) != row["category"]:
            raise ValueError(f"{meta}: target {target} is both {names[target]!r} and {row['category']!r}")
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{meta}: targets must be 0..K-1, found {sorted(names)}")
    splits = {"train": [], "dev": [], "test": []}
    for row in sorted(rows, key=lambda r: r["filename"]):
        fold = int(row["fold"])
        split = "test" if fold == test_fold else "dev" if fold == dev_fold else "train"
        splits[split].append(Example(root / "audio" / row["filename"], int(row["target"]),
                                     row["filename"].rsplit(".", 1)[0]))
    return TaskData(splits, tuple(names[t] for t in range(len(names))))
