"""Calibration clips from Hugging Face ``datasets`` (``calibration.datasets``): seeded selection, fetched once, cached.

Each entry chooses ``clips`` examples with the recipe's seed - streaming: the shards' order and a
buffer of ``shuffle_buffer`` examples are shuffled, and reading stops once ``clips`` are chosen, so
nothing else is fetched; otherwise: a seeded sample of indices of the downloaded split. The chosen
clips are cropped to ``max_seconds``, written as 16-bit FLAC (native rate, mono) with a manifest
into the plugin's cache (atomically, keyed by the entry, the seed and the crop), and listed from
there on every later build - offline included. Audio is decoded here with soundfile (the
column is read undecoded), so no extra audio backend is needed.

Offline and uncached, the error names the dataset and shows the recipe lines that point
calibration at local folders instead.
"""
from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import List

import numpy as np

from upstream_merged.permutation.audio import CalibrationError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.tsv"
LOCAL_FALLBACK = """calibration:
  dirs:                       # local copies instead of the hub dataset(s)
    - /data/LibriSpeech/train-clean-100     # speech: any folder of .wav/.flac
    - /data/music                           # music: any folder of .wav/.flac
  max_clips: 10000
  # or: manifest: /data/calibration.tsv     (one audio path per line)"""


def dataset_label(entry) -> str:
    """``id[/config]:split`` of a dataset entry, as messages and the report name it."""
    return f"{entry.id}{'/' + entry.config if entry.config else ''}:{entry.split}"


def dataset_cache_dir(entry, seed: int, clip_seconds: float) -> Path:
    """Where the chosen clips of ``entry`` are cached (keyed by everything that changes them)."""
    from upstream_merged.cache import content_key
    from upstream_merged.sources import cache_root

    material = {"entry": entry.model_dump(exclude={"domain"}), "seed": int(seed), "crop": _crop(entry, clip_seconds)}
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset_label(entry))[-60:]
    return cache_root() / "calibration" / "datasets" / f"{slug}-{content_key(material)}"


def dataset_clips(entry, seed: int, clip_seconds: float) -> List[Path]:
    """The cached clip files of ``entry`` (fetched and written on first use)."""
    from upstream_merged.cache import build_atomically, is_complete

    target = dataset_cache_dir(entry, seed, clip_seconds)
    if not is_complete(target):
        logger.info("calibration dataset %s: choosing %d clips (seed %d) into %s", dataset_label(entry), entry.clips,
                    seed, target)
        build_atomically(target, lambda tmp: _materialize(entry, seed, clip_seconds, tmp))
    return [target / line.split("\t")[0] for line in (target / MANIFEST).read_text().splitlines() if line.strip()]


def _crop(entry, clip_seconds: float) -> float:
    return float(min(entry.max_seconds, clip_seconds) if entry.max_seconds else clip_seconds)


def _load(entry, seed: int):
    """The selected examples of ``entry`` as an iterable (audio column undecoded)."""
    try:
        import datasets
    except ImportError:
        raise CalibrationError(
            f"calibration.datasets needs the Hugging Face datasets library for {dataset_label(entry)}: "
            f"pip install datasets (or calibrate on local folders:\n{LOCAL_FALLBACK})") from None
    try:
        loaded = datasets.load_dataset(entry.id, entry.config, split=entry.split, streaming=entry.streaming,
                                       revision=entry.revision, data_dir=entry.data_dir, data_files=entry.data_files)
        if entry.audio_column not in (loaded.column_names or [entry.audio_column]):
            raise CalibrationError(f"calibration dataset {dataset_label(entry)} has no column {entry.audio_column!r} "
                                   f"(columns: {loaded.column_names}); set audio_column in its recipe entry")
        loaded = loaded.cast_column(entry.audio_column, datasets.Audio(decode=False))
        if entry.streaming:
            return loaded.shuffle(seed=seed, buffer_size=entry.shuffle_buffer).take(entry.clips)
        if len(loaded) < entry.clips:
            raise CalibrationError(f"calibration dataset {dataset_label(entry)} has {len(loaded)} examples; "
                                   f"the recipe asks for clips: {entry.clips}")
        chosen = np.sort(np.random.default_rng(seed).choice(len(loaded), size=entry.clips, replace=False))
        return loaded.select(chosen.tolist())
    except CalibrationError:
        raise
    except Exception as err:  # offline, not found, gated, no such config/split ...: one actionable message
        cause = err
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        if "torchcodec" in str(cause):
            raise CalibrationError(
                f"calibration dataset {dataset_label(entry)}: datasets needs torchcodec to build this dataset's audio "
                f"column (a folder/script builder; hub parquet datasets do not): pip install torchcodec, or list the "
                f"folder under calibration.dirs instead") from None
        raise CalibrationError(
            f"calibration dataset {dataset_label(entry)} is not cached here and could not be loaded "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). Run the merge once with network "
            f"access (it caches only the {entry.clips} chosen clips), or point the recipe at local folders instead:\n"
            f"{LOCAL_FALLBACK}"
        ) from None


def _decode(audio, label: str):
    """(samples float32 mono, rate) from an undecoded Audio value ({'bytes', 'path'})."""
    import soundfile

    source = io.BytesIO(audio["bytes"]) if audio.get("bytes") else audio.get("path")
    if source is None:
        raise CalibrationError(f"calibration dataset {label}: an example has neither audio bytes nor a path")
    try:
        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as err:  # noqa: BLE001 - soundfile raises several types for undecodable audio
        raise CalibrationError(f"calibration dataset {label}: cannot decode {audio.get('path') or 'an example'} "
                               f"with soundfile ({err})") from None
    return data.mean(axis=1), int(rate)


def _materialize(entry, seed: int, clip_seconds: float, out: Path) -> None:
    """Fetch the selection of ``entry`` and write cropped FLAC clips + manifest into ``out``."""
    import soundfile

    label, crop = dataset_label(entry), _crop(entry, clip_seconds)
    lines = []
    for number, example in enumerate(_load(entry, seed)):
        wave, rate = _decode(example[entry.audio_column], label)
        wave = np.clip(wave[: int(round(crop * rate))], -1.0, 1.0)
        name = f"clip_{number:05d}.flac"
        soundfile.write(out / name, wave, rate, subtype="PCM_16")
        lines.append(f"{name}\t{len(wave)}\t{rate}")
    if len(lines) < entry.clips:
        raise CalibrationError(f"calibration dataset {label} yielded {len(lines)} examples; the recipe asks for "
                               f"clips: {entry.clips}")
    (out / MANIFEST).write_text("\n".join(lines) + "\n")
