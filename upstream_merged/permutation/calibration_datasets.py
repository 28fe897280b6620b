"""Calibration clips from Hugging Face ``datasets`` (``calibration.datasets``): seeded selection, fetched once, cached.

Each entry chooses ``clips`` examples with the recipe's seed - streaming: the shards' order and a
buffer of ``shuffle_buffer`` examples are shuffled, and reading stops once ``clips`` are chosen, so
nothing else is fetched; otherwise: a seeded sample of indices of the downloaded split (seeded
replacements follow it when examples are bad). The audio column is read undecoded and only the
first ``max_seconds`` of each example are decoded (soundfile, see :mod:`audio_crop`), by a pool of
``workers`` threads, behind a progress bar (clips, MB read, bad examples). An example that cannot be
decoded is skipped and counted; more than ``max_bad_share`` of ``clips`` fails the build, naming them.
The chosen clips are written as 16-bit FLAC (native rate, mono) with a manifest into the plugin's
cache (atomically, keyed by the entry, the seed and the crop) and listed from there on every later
build - offline included.

Offline and uncached, the error names the dataset and shows the recipe lines that point
calibration at local folders instead; a dataset that still needs a loading script (which
``datasets`` >= 4 no longer runs) gets its own error naming it and the ``datasets`` version.
"""
from __future__ import annotations

import logging
import math
import os
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np

from upstream_merged.permutation.audio import CalibrationError
from upstream_merged.permutation.audio_crop import UndecodableAudio, decode_start, encoded_size

logger = logging.getLogger(__name__)

MANIFEST = "manifest.tsv"
MAX_WORKERS = 8
LOCAL_FALLBACK = """calibration:
  dirs:                       # local copies instead of the hub dataset(s)
    - /data/LibriSpeech/train-clean-100     # speech: any folder of .wav/.flac
    - /data/music                           # music: any folder of .wav/.flac
  max_clips: 10000
  # or: manifest: /data/calibration.tsv     (one audio path per line)"""
# Keys of an entry that change nothing in the chosen clips (left out of the cache key).
NOT_IN_KEY = {"domain", "max_bad_share", "workers"}
SCRIPT_MARKERS = ("Dataset scripts are no longer supported", "trust_remote_code")


def dataset_label(entry) -> str:
    """``id[/config]:split`` of a dataset entry, as messages and the report name it."""
    return f"{entry.id}{'/' + entry.config if entry.config else ''}:{entry.split}"


def dataset_cache_dir(entry, seed: int, clip_seconds: float) -> Path:
    """Where the chosen clips of ``entry`` are cached (keyed by everything that changes them)."""
    from upstream_merged.cache import content_key
    from upstream_merged.sources import cache_root

    material = {"entry": entry.model_dump(exclude=NOT_IN_KEY), "seed": int(seed), "crop": crop_seconds(entry, clip_seconds)}
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


def crop_seconds(entry, clip_seconds: float) -> float:
    """Seconds kept from the start of each example of ``entry``."""
    return float(min(entry.max_seconds, clip_seconds) if entry.max_seconds else clip_seconds)


def allowed_bad(entry) -> int:
    """How many undecodable examples ``entry`` tolerates before its build fails."""
    return int(math.floor(entry.max_bad_share * entry.clips + 1e-9))


def _workers(entry) -> int:
    return int(entry.workers or max(1, min(MAX_WORKERS, os.cpu_count() or 1)))


def _root_causes(err: BaseException) -> Iterator[BaseException]:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _load_error(entry, err: BaseException) -> CalibrationError:
    """One actionable message for a dataset that could not be opened."""
    import datasets

    label = dataset_label(entry)
    causes = list(_root_causes(err))
    script = next((c for c in causes if any(marker in str(c) for marker in SCRIPT_MARKERS)), None)
    if script is not None:
        found = re.search(r"found (\S+\.py)", str(script))
        return CalibrationError(
            f"calibration dataset {label} is a script-based dataset{' (' + found.group(1) + ')' if found else ''}: "
            f"datasets {datasets.__version__} does not run dataset loading scripts (removed in datasets 4.0). This is "
            f"not a network problem. Point the recipe at a Parquet copy of the data (for LibriSpeech the packaged "
            f"recipes use fixie-ai/librispeech_asr), or at the hub's automatic Parquet export with "
            f"`revision: refs/convert/parquet` (it may hold only part of a large split), or calibrate on local "
            f"folders instead:\n{LOCAL_FALLBACK}")
    if any("torchcodec" in str(c) for c in causes):
        return CalibrationError(
            f"calibration dataset {label}: datasets {datasets.__version__} needs torchcodec to build this dataset's "
            f"audio column (a folder builder; hub Parquet datasets do not): pip install torchcodec (and FFmpeg), or "
            f"list the folder under calibration.dirs instead")
    first = str(err).splitlines()[0] if str(err) else ""
    return CalibrationError(
        f"calibration dataset {label} is not cached here and could not be loaded ({type(err).__name__}: {first}). "
        f"Check the id with `python -m upstream_merged check-sources RECIPE`; run the merge once with network "
        f"access (it caches only the {entry.clips} chosen clips), or point the recipe at local folders instead:\n"
        f"{LOCAL_FALLBACK}")


def _open(entry):
    """The dataset of ``entry`` with its audio column undecoded (streamed or downloaded)."""
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
        return loaded.cast_column(entry.audio_column, datasets.Audio(decode=False))
    except CalibrationError:
        raise
    except Exception as err:  # offline, not found, gated, script-based, no such config/split ...
        raise _load_error(entry, err) from None


def _candidates(entry, seed: int) -> Iterator[Tuple[int, dict]]:
    """(position, example) in selection order: the first ``clips`` are the choice, later ones replace bad examples."""
    loaded = _open(entry)
    if entry.streaming:
        stream = iter(loaded.shuffle(seed=seed, buffer_size=entry.shuffle_buffer))
        try:
            yield from enumerate(stream)
        finally:  # stop the reader while the interpreter is alive (not at exit, when pyarrow is half torn down)
            getattr(stream, "close", lambda: None)()
        return
    if len(loaded) < entry.clips:
        raise CalibrationError(f"calibration dataset {dataset_label(entry)} has {len(loaded)} examples; "
                               f"the recipe asks for clips: {entry.clips}")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(loaded), size=entry.clips, replace=False))
    spare = rng.permutation(np.setdiff1d(np.arange(len(loaded)), chosen))
    for index in np.concatenate([chosen, spare]).tolist():
        yield int(index), loaded[int(index)]


def _example_name(position: int, example: dict, audio) -> str:
    """How a message names one example: its position in the selection and its id or file name."""
    name = example.get("id") if isinstance(example.get("id"), str) else None
    if name is None and isinstance(audio, dict) and audio.get("path"):
        name = os.path.basename(str(audio["path"]))
    return f"#{position}" + (f" ({name})" if name else "")


@dataclass
class _Outcome:
    """What one worker made of one example: a written clip, or why it was skipped."""

    frames: int = 0
    rate: int = 0
    problem: Optional[str] = None


def _write_clip(audio, crop: float, target: Path) -> _Outcome:
    """Decode the first ``crop`` seconds of ``audio`` and write them to ``target`` (16-bit FLAC)."""
    import soundfile

    try:
        wave, rate = decode_start(audio, crop)
    except UndecodableAudio as err:
        return _Outcome(problem=str(err))
    wave = np.clip(wave, -1.0, 1.0)
    soundfile.write(target, wave, rate, subtype="PCM_16")
    return _Outcome(frames=len(wave), rate=rate)


def _progress_bar(entry):
    from tqdm.auto import tqdm

    quiet = not logging.getLogger("upstream_merged").isEnabledFor(logging.INFO)
    return tqdm(total=entry.clips, unit="clip", desc=f"calibration data {dataset_label(entry)}",
                disable=True if quiet else None)


def _materialize(entry, seed: int, clip_seconds: float, out: Path) -> None:
    """Fetch the selection of ``entry`` and write cropped FLAC clips + manifest into ``out``."""
    label, crop = dataset_label(entry), crop_seconds(entry, clip_seconds)
    lines: List[str] = []
    bad: List[str] = []
    read_bytes = 0
    candidates = _candidates(entry, seed)
    pending: deque = deque()  # (name, size, file, future) in selection order
    workers = _workers(entry)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="calibration-data") as pool, \
            _progress_bar(entry) as bar:
        exhausted = False
        try:
            while len(lines) < entry.clips:
                while not exhausted and len(pending) < 2 * workers:
                    try:
                        position, example = next(candidates)
                    except StopIteration:
                        exhausted = True
                        break
                    audio = example.get(entry.audio_column)
                    name = _example_name(position, example, audio)
                    size = encoded_size(audio) if isinstance(audio, dict) else 0
                    file = out / f"pending_{position:08d}.flac"
                    pending.append((name, size, file, pool.submit(_write_clip, audio, crop, file)))
                if not pending:
                    break
                name, size, file, future = pending.popleft()
                outcome: _Outcome = future.result()
                read_bytes += size
                if outcome.problem is None:
                    clip = f"clip_{len(lines):05d}.flac"
                    file.rename(out / clip)
                    lines.append(f"{clip}\t{outcome.frames}\t{outcome.rate}")
                    bar.update(1)
                else:
                    bad.append(f"{name}: {outcome.problem}")
                    logger.warning("calibration dataset %s: skipped example %s", label, bad[-1])
                    if len(bad) > allowed_bad(entry):
                        raise CalibrationError(
                            f"calibration dataset {label}: {len(bad)} undecodable examples, more than max_bad_share "
                            f"{entry.max_bad_share} of clips: {entry.clips} allows ({allowed_bad(entry)}); nothing "
                            f"was cached. Bad examples: " + "; ".join(bad) + ". Raise max_bad_share in the recipe "
                            "entry, or choose another dataset")
                bar.set_postfix_str(f"{read_bytes / 1e6:.1f} MB read, {len(bad)} bad", refresh=False)
        finally:
            _drain(pending)
            candidates.close()
    if len(lines) < entry.clips:
        raise CalibrationError(f"calibration dataset {label} yielded {len(lines)} usable examples ({len(bad)} "
                               f"undecodable skipped); the recipe asks for clips: {entry.clips}")
    (out / MANIFEST).write_text("\n".join(lines) + "\n")
    (out / "skipped.tsv").write_text("".join(f"{line}\n" for line in bad))
    logger.info("calibration dataset %s: %d clips written (%.1f MB of encoded audio read, %d undecodable skipped)",
                label, len(lines), read_bytes / 1e6, len(bad))


def _drain(pending: deque) -> None:
    """Wait for work that is no longer needed and remove what it wrote."""
    while pending:
        _, _, file, future = pending.popleft()
        future.cancel()
        try:
            future.result()
        except Exception:  # noqa: BLE001 - the result is discarded either way
            pass
        file.unlink(missing_ok=True)
