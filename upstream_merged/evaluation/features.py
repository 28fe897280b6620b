"""Hidden states of a frozen upstream, extracted once per (upstream, task split) and memory-mapped from disk.

What the stock runner feeds the probe is ``Featurizer.tolist``'s per-clip slice of the upstream's
``hidden_states``: every layer, ``round(samples / downsample_rate)`` frames of each clip. That is what
is stored, one directory per (upstream, split)::

    <cache>/features/<entry>-<upstream key>/<task>-<split>-<data key>/
        features.npy   (frames of all rows, layers, dim)  float16 by default, np.load(mmap_mode="r")
        pooled.npy     (rows, layers, dim) float32        each row's mean over its frames (the MeanPooling fast path)
        index.json     per row: clip index, crop offset, first frame, frames, samples; per clip: path, label, id
        .complete

A row is one clip, or, for clips the stock dataset crops at random each time it reads them, one of
``variants`` fixed crops (seeded by the clip id); the probe draws one per read, as the stock run draws an
offset. The upstream key hashes the entry name, its ``-k`` / ``-g`` arguments, every tensor of its state
dict and the source of the module that defines it; the data key hashes the split's file list (path,
label, id, size, mtime), the audio-affecting ``datarc`` keys and the crop plan. A changed checkpoint,
recipe, data set or loader gives a new directory; nothing stale is reused. Writes are atomic
(``upstream_merged.cache.build_atomically``).

Clips are forwarded alone or in batches of equal length (no padding), so a clip's hidden states do not
depend on which clips share its batch; stock runs of fixed-length tasks (speech_commands' 1 s clips,
NSynth notes cut to ``max_seconds``) see exactly this. Where the stock run pads (voxceleb1's
variable-length batches) the padded forward of a GroupNorm CNN differs slightly from the unpadded one;
the cache holds the unpadded (clean) features.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import shutil
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from upstream_merged.cache import build_atomically, content_key, is_complete
from upstream_merged.core.rng import count_rand_draws
from upstream_merged.evaluation.tasks import TaskSetup
from upstream_merged.sources import cache_root

log = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 2: index.json records rng_draws_per_forward; 3: keyed by audio only (no labels)
TOLERABLE_SEQLEN_DIFF = 5  # s3prl.upstream.interfaces: frames may differ from samples / rate by less than this
DTYPES = {"float16": np.float16, "float32": np.float32}
SAMPLE_RATE = 16000


def feature_cache_root() -> Path:
    """``<plugin cache>/features`` ($UPSTREAM_MERGED_CACHE moves the plugin cache)."""
    return cache_root() / "features"


# ----------------------------------------------------------------------------- the upstream
def state_dict_digest(model: nn.Module) -> str:
    """sha256 over every tensor of the state dict: name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def source_digest(model: nn.Module) -> str:
    """sha256 of the .py files beside the module that defines the upstream's class (its forward lives there)."""
    digest = hashlib.sha256()
    path = inspect.getsourcefile(type(model))
    if path is None:
        return "unknown"
    for file in sorted(Path(path).parent.glob("*.py")):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


class Upstream:
    """An s3prl hub entry (``-u``, ``-k``, ``-g``), loaded on first use in eval mode, and its fingerprint."""

    def __init__(self, entry: str, ckpt: Optional[str] = None, model_config: Optional[str] = None,
                 feature_selection: str = "hidden_states"):
        self.entry = entry
        self.ckpt = ckpt
        self.model_config = model_config
        self.feature_selection = feature_selection

    @cached_property
    def model(self) -> nn.Module:
        """The upstream as ``Runner._get_upstream`` builds it (frozen: eval mode, no gradients)."""
        import s3prl.hub as hub

        from upstream_merged import register

        register()  # the plugin's entries even where the .pth hook is off (python -S, a moved editable install)
        if not hasattr(hub, self.entry):
            raise ValueError(f"-u {self.entry} is neither a stock s3prl hub entry nor one of upstream_merged's "
                             "(s3prl.hub.options() lists them all)")
        model = getattr(hub, self.entry)(ckpt=self.ckpt, model_config=self.model_config, refresh=False)
        model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        return model

    @cached_property
    def fingerprint(self) -> str:
        """Hash of entry, arguments, weights and code: the cache key of everything extracted from it."""
        material = {"format": FORMAT_VERSION, "entry": self.entry, "ckpt": self.ckpt, "model_config": self.model_config,
                    "feature_selection": self.feature_selection,
                    "class": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
                    "state": state_dict_digest(self.model), "source": source_digest(self.model)}
        return content_key(material)

    @cached_property
    def downsample_rate(self) -> int:
        """Samples per frame, as the Featurizer takes it (get_downsample_rates, else measured on 1 s of noise)."""
        if hasattr(self.model, "get_downsample_rates"):
            return int(self.model.get_downsample_rates(self.feature_selection))
        with torch.no_grad():
            layers = self.layers([torch.randn(SAMPLE_RATE)])
        return round(SAMPLE_RATE / layers[0].shape[1])

    @cached_property
    def rng_draws_per_forward(self) -> Optional[int]:
        """How many ``torch.rand([])`` draws one forward takes from the global RNG (None: not that kind of use).

        transformers' HuBERT encoder draws one number per layer for LayerDrop even in eval mode, so every
        stock forward advances the RNG that the runner's samplers and the head's initialisation read
        next. The probe replays these draws to follow the stock run's random stream. The global RNG
        state is left as it was.
        """
        draws = count_rand_draws(lambda: self.model([torch.zeros(SAMPLE_RATE)]), name=f"upstream {self.entry}")
        if draws is None:
            log.warning("cached probes of %s follow the stock batches in distribution, not draw for draw", self.entry)
        return draws

    def layers(self, wavs: List[torch.Tensor]) -> List[torch.Tensor]:
        """The selected feature as a list of (B, T, D) layers (one entry for a single tensor), like Featurizer._select_feature."""
        output = self.model(wavs)
        if self.feature_selection not in output:
            raise KeyError(f"upstream {self.entry} returns no {self.feature_selection!r} (it returns {list(output)})")
        feature = output[self.feature_selection]
        if isinstance(feature, dict):
            feature = list(feature.values())
        if not isinstance(feature, (list, tuple)):
            feature = [feature]
        return list(feature)


# ----------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class RowIndex:
    """Where each row's frames are and which clip (and crop) it is."""

    clip: np.ndarray  # (rows,) clip index in the stock dataset's order
    start: np.ndarray  # (rows,) first frame in features.npy
    frames: np.ndarray  # (rows,) frames of the row
    samples: np.ndarray  # (rows,) waveform samples the upstream saw
    offset: np.ndarray  # (rows,) crop offset in samples (0 for uncropped rows)


class FeatureSplit:
    """One cached (upstream, split): memory-mapped frames, pooled rows and the clip index."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        if not is_complete(self.directory):
            raise FileNotFoundError(f"{self.directory} is not a complete feature cache (delete it and extract again)")
        meta = json.loads((self.directory / "index.json").read_text())
        self.meta = meta
        self.paths: List[str] = meta["paths"]
        self.uids: List[str] = meta["uids"]
        rows = meta["rows"]
        self.rows = RowIndex(*(np.asarray(rows[k], dtype=np.int64) for k in ("clip", "start", "frames", "samples", "offset")))
        self.layers, self.dim = int(meta["layers"]), int(meta["dim"])
        self.single = bool(meta["single"])  # the upstream returned one tensor, not a list of layers
        self.downsample_rate = int(meta["downsample_rate"])
        self.features = np.load(self.directory / "features.npy", mmap_mode="r")  # (frames, layers, dim)
        self.pooled = np.load(self.directory / "pooled.npy", mmap_mode="r")  # (rows, layers, dim)
        self._rows_of_clip: Dict[int, List[int]] = {}
        for row, clip in enumerate(self.rows.clip.tolist()):
            self._rows_of_clip.setdefault(clip, []).append(row)

    def __len__(self) -> int:
        return len(self.paths)

    def rows_of(self, clip: int) -> List[int]:
        """Rows of a clip (several for randomly cropped clips)."""
        return self._rows_of_clip[clip]

    def frames(self, row: int) -> np.ndarray:
        """(T, layers, dim) frames of one row, a view into the memory map."""
        start = int(self.rows.start[row])
        return self.features[start:start + int(self.rows.frames[row])]

    def check_matches(self, setup: TaskSetup, split: str) -> None:
        """Refuse a cache whose clips are not the task's (paths in the stock order; labels come from the task)."""
        clips = setup.clips(split)
        if [c.path for c in clips] != self.paths:
            raise ValueError(f"{self.directory} holds other clips than the task's {split} split "
                             "(a changed data set should have a new key: delete the directory)")


# ----------------------------------------------------------------------------- extraction
def crop_offsets(uid: str, samples: int, crop: int, variants: int) -> List[int]:
    """Fixed random crop offsets of a clip (seeded by its id), drawn like the stock randint(0, samples - crop)."""
    if samples <= crop:
        return [0]
    seed = int(hashlib.sha256(uid.encode()).hexdigest()[:16], 16)
    rng = np.random.default_rng(seed)
    return sorted(set(int(o) for o in rng.integers(0, samples - crop + 1, size=variants)))


def _rows_of_split(setup: TaskSetup, split: str, variants: int):
    """(clip index, offset, waveform) for every row, clip by clip (a generator: audio is read as it is needed)."""
    for index, clip in enumerate(setup.clips(split)):
        wav = setup.load(split, index)
        crop = setup.crop_length(split, index)
        if crop is None or len(wav) <= crop:
            yield index, 0, wav
            continue
        for offset in crop_offsets(clip.uid, len(wav), crop, variants):
            yield index, offset, wav[offset:offset + crop]


def _forward_group(upstream: Upstream, wavs: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Frames per wav (equal lengths, one batch): each (frames, layers, dim) float32, truncated as Featurizer.tolist."""
    tensors = [torch.from_numpy(np.ascontiguousarray(w)).float() for w in wavs]
    with torch.no_grad():
        layers = upstream.layers(tensors)
    stacked = torch.stack(layers, dim=2)  # (B, T, L, D)
    rate = upstream.downsample_rate
    expected = round(len(wavs[0]) / rate)
    if abs(stacked.shape[1] - expected) >= TOLERABLE_SEQLEN_DIFF:
        raise ValueError(f"upstream {upstream.entry} gave {stacked.shape[1]} frames for {len(wavs[0])} samples; "
                         f"s3prl's Featurizer requires about samples / {rate} = {expected}")
    return [s[:expected].numpy() for s in stacked]


def extract_split(upstream: Upstream, setup: TaskSetup, split: str, target: Path, dtype: str = "float16",
                  batch_size: int = 8, variants: int = 8, progress: bool = True, chunk_clips: int = 64) -> None:
    """Forward every row of ``split`` through the upstream and write features.npy, pooled.npy and index.json into ``target``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {list(DTYPES)}")
    store = DTYPES[dtype]
    start_time = time.monotonic()
    raw_path = target / "features.raw"
    rows = {"clip": [], "start": [], "frames": [], "samples": [], "offset": []}
    pooled: List[np.ndarray] = []
    shape: Optional[Tuple[int, int]] = None
    total = 0
    clips = setup.clips(split)
    bar = tqdm(total=len(clips), desc=f"{upstream.entry} {setup.downstream}/{split}", disable=not progress, unit="clip")
    pending: List[Tuple[int, int, np.ndarray]] = []

    def flush(raw) -> None:
        nonlocal shape, total
        by_length: Dict[int, List[int]] = {}
        for position, (_, _, wav) in enumerate(pending):
            by_length.setdefault(len(wav), []).append(position)
        out: Dict[int, np.ndarray] = {}
        for positions in by_length.values():
            for i in range(0, len(positions), batch_size):
                group = positions[i:i + batch_size]
                for position, frames in zip(group, _forward_group(upstream, [pending[p][2] for p in group])):
                    out[position] = frames
        for position, (clip, offset, wav) in enumerate(pending):  # rows stay in clip order
            frames = out[position].astype(store)
            if shape is None:
                shape = frames.shape[1:]
            elif frames.shape[1:] != shape:
                raise ValueError(f"upstream {upstream.entry}: layers x dim changed from {shape} to {frames.shape[1:]}")
            raw.write(frames.tobytes())
            pooled.append(frames.astype(np.float64).mean(axis=0).astype(np.float32))
            for key, value in (("clip", clip), ("start", total), ("frames", len(frames)), ("samples", len(wav)),
                               ("offset", offset)):
                rows[key].append(int(value))
            total += len(frames)
        bar.update(len({clip for clip, _, _ in pending}))
        pending.clear()

    with open(raw_path, "wb") as raw:
        last_clip = -1
        for clip, offset, wav in _rows_of_split(setup, split, variants):
            if clip != last_clip and len({c for c, _, _ in pending}) >= chunk_clips:
                flush(raw)
            pending.append((clip, offset, wav))
            last_clip = clip
        if pending:
            flush(raw)
    bar.close()
    if shape is None:
        raise ValueError(f"{setup.downstream} {split}: no clips to extract")
    with open(target / "features.npy", "wb") as out, open(raw_path, "rb") as src:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(store)), "fortran_order": False,
                  "shape": (total, *shape)}
        np.lib.format.write_array_header_2_0(out, header)
        shutil.copyfileobj(src, out, 1 << 22)
    raw_path.unlink()
    np.save(target / "pooled.npy", np.stack(pooled))
    index = {"format": FORMAT_VERSION, "entry": upstream.entry, "upstream_key": upstream.fingerprint,
             "extracted_for": setup.downstream, "split": split, "dtype": dtype, "layers": int(shape[0]), "dim": int(shape[1]),
             "single": bool(shape[0] == 1),  # Featurizer takes a one-element list as a single tensor
             "downsample_rate": upstream.downsample_rate, "variants": variants,
             "rng_draws_per_forward": upstream.rng_draws_per_forward,
             "paths": [c.path for c in clips], "uids": [c.uid for c in clips],
             "rows": rows, "extract_seconds": round(time.monotonic() - start_time, 2)}
    (target / "index.json").write_text(json.dumps(index))


def split_directory(upstream: Upstream, setup: TaskSetup, split: str, dtype: str = "float16", variants: int = 8,
                    root: Optional[Path] = None) -> Path:
    """Where the (upstream, split) cache lives: keyed by the upstream's fingerprint and the split's data."""
    data_key = content_key({"format": FORMAT_VERSION, "data": setup.data_material(split), "dtype": dtype,
                            "variants": variants, "feature_selection": upstream.feature_selection})
    name = upstream.entry.replace("/", "_")
    return Path(root or feature_cache_root()) / f"{name}-{upstream.fingerprint}" / f"{setup.family.name}-{split}-{data_key}"


def cached_split(upstream: Upstream, setup: TaskSetup, split: str, dtype: str = "float16", variants: int = 8,
                 batch_size: int = 8, root: Optional[Path] = None, refresh: bool = False,
                 progress: bool = True) -> FeatureSplit:
    """The (upstream, split) features: read from the cache, or extracted once into it."""
    target = split_directory(upstream, setup, split, dtype, variants, root)
    if refresh or not is_complete(target):
        log.info("extracting %s %s/%s into %s", upstream.entry, setup.downstream, split, target)
        build_atomically(target, lambda tmp: extract_split(upstream, setup, split, tmp, dtype, batch_size, variants,
                                                           progress), refresh=refresh)
    else:
        log.info("features of %s %s/%s: cached at %s", upstream.entry, setup.downstream, split, target)
    features = FeatureSplit(target)
    features.check_matches(setup, split)
    return features


def cached_splits(upstream: Upstream, setup: TaskSetup, splits: Sequence[str] = ("train", "dev", "test"),
                  **kwargs) -> Dict[str, FeatureSplit]:
    """:func:`cached_split` for several splits."""
    return {split: cached_split(upstream, setup, split, **kwargs) for split in splits}
