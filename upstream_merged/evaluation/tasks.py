"""A downstream task as the stock s3prl runner sees it, minus the upstream: config, head, clips and batch order.

The cached probe must train *the same* probe as ``run_downstream.py``, so nothing here re-implements a
task. :class:`TaskSetup` builds the task's own ``DownstreamExpert`` (``s3prl.downstream.<task>.expert``,
or ours for the music tasks) from the same config and ``-o`` overrides, and takes from it

- the head (projector + model + loss) and its ``forward``, which the probe calls unchanged;
- the datasets, i.e. which clips form each split, their labels and ids, loaded by the dataset's own
  ``__getitem__`` (sox effects, resampling, ``max_seconds``);
- the dataloaders' samplers, i.e. the batch order the stock run draws (shuffling, class-balanced
  sampling with replacement, ``drop_last``), without loading any audio.

What differs is only where the clips' hidden states come from (features.py). Two stock datasets crop
some clips at random each time they are read (speech_commands: 1 s of a background-noise file for
``_silence_``; voxceleb1 train: ``max_timestep`` samples of a longer utterance); :meth:`TaskSetup.crop_length`
says which, so the cache can hold several fixed crops of them to draw from.
"""
from __future__ import annotations

import ast
import copy
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
# datarc keys that change batching only, never the audio a clip turns into (left out of the data fingerprint)
BATCHING_KEYS = frozenset({"batch_size", "train_batch_size", "eval_batch_size", "num_workers"})
# datarc keys that change the audio a listed clip turns into (the files themselves are keyed separately); labels,
# roots and batching do not, so tasks reading the same clips the same way (NSynth pitch and instrument) share features
AUDIO_KEYS = frozenset({"max_seconds", "max_timestep", "sample_rate", "sampling_rate"})


class UnsupportedTask(ValueError):
    """The task's expert is not one the cached probe knows how to read clips from."""


@dataclass(frozen=True)
class Clip:
    """One item of a stock dataset: its audio file, class index and the id the stock run writes predictions under."""

    path: str
    label: int
    uid: str


def apply_overrides(config: dict, overrides: Mapping[str, object]) -> dict:
    """A deep copy of ``config`` with ``-o``-style ``config.a.b`` keys set (strings parsed as Python literals, like -o)."""
    out = copy.deepcopy(config)
    for key, value in overrides.items():
        first, *path = key.split(".")
        if first != "config" or not path:
            raise ValueError(f"override {key!r}: only config.<section>.<key> overrides are supported by the cached probe")
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                pass  # a plain string (e.g. a path), as s3prl's eval fallback keeps it
        node = out
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = value
    return out


def load_config(config_path: str | Path, overrides: Optional[Mapping[str, object]] = None) -> dict:
    """The downstream config YAML (``-c``) with ``-o`` overrides applied."""
    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"downstream config {path} does not exist (see downstream_configs/)")
    return apply_overrides(yaml.safe_load(path.read_text()) or {}, overrides or {})


# ----------------------------------------------------------------------------- per-family readers
@dataclass(frozen=True)
class _Family:
    """How to read one family of stock experts: its datasets, clips, full-length audio and random crops."""

    name: str
    datasets: Callable[[nn.Module], Dict[str, object]]
    clips: Callable[[object], List[Clip]]
    load: Callable[[object, int], np.ndarray]
    crop: Callable[["TaskSetup", str, object, Clip], Optional[int]]


def _speech_commands_family() -> _Family:
    from s3prl.downstream.speech_commands.dataset import SpeechCommandsBaseDataset

    def clips(dataset) -> List[Clip]:
        return [Clip(str(path), dataset.class2index[name], "-".join(Path(path).parts[-2:])) for name, path in dataset.data]

    def load(dataset, index: int) -> np.ndarray:
        return SpeechCommandsBaseDataset.__getitem__(dataset, index)[0]  # the stock loading, before the silence crop

    def crop(setup: "TaskSetup", split: str, dataset, clip: Clip) -> Optional[int]:
        # SpeechCommandsDataset (train and dev) crops every _silence_ clip to a random 1 s
        silence = dataset.class2index["_silence_"]
        return 16000 if split in ("train", "dev") and clip.label == silence else None

    return _Family("speech_commands", lambda e: {"train": e.train_dataset, "dev": e.dev_dataset, "test": e.test_dataset},
                   clips, load, crop)


def _voxceleb1_family() -> _Family:
    def clips(dataset) -> List[Clip]:
        return [Clip(str(path), int(label), Path("-".join(Path(path).parts[-3:])).stem)
                for path, label in zip(dataset.dataset, dataset.label)]

    def load(dataset, index: int) -> np.ndarray:
        whole = copy.copy(dataset)
        whole.max_timestep = None  # the stock __getitem__ without its random crop
        return whole[index][0]

    def crop(setup: "TaskSetup", split: str, dataset, clip: Clip) -> Optional[int]:
        return int(dataset.max_timestep) if split == "train" and dataset.max_timestep else None

    return _Family("voxceleb1", lambda e: {"train": e.train_dataset, "dev": e.dev_dataset, "test": e.test_dataset},
                   clips, load, crop)


def _utterance_family() -> _Family:
    def clips(dataset) -> List[Clip]:
        return [Clip(str(e.path), int(e.label), e.uid) for e in dataset.examples]

    return _Family("utterance", lambda e: dict(e.datasets), clips, lambda dataset, index: dataset[index][0],
                   lambda setup, split, dataset, clip: None)


def _family_of(downstream: str, expert: nn.Module) -> _Family:
    from upstream_merged.downstream.utterance_task import UtteranceClassificationExpert

    if isinstance(expert, UtteranceClassificationExpert):
        return _utterance_family()
    if downstream == "speech_commands":
        return _speech_commands_family()
    if downstream == "voxceleb1":
        return _voxceleb1_family()
    raise UnsupportedTask(f"-d {downstream}: the cached probe reads speech_commands, voxceleb1 and the utterance tasks "
                          f"of upstream_merged.downstream (nsynth_pitch, nsynth_instrument, gtzan_genre, esc50); "
                          f"run {downstream} with the stock run_downstream.py")


# ----------------------------------------------------------------------------- the task
class _Indices(Dataset):
    """A dataset whose items are their own indices (the stock sampler's draws, without loading audio)."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


class TaskSetup:
    """A task's stock expert (built once for its clip lists) and fresh stock heads on demand."""

    def __init__(self, downstream: str, config: dict, expdir: str | Path):
        self.downstream = downstream
        self.config = config
        self.expdir = Path(expdir)
        self.expdir.mkdir(parents=True, exist_ok=True)
        for key in ("downstream_expert", "runner", "optimizer"):
            if key not in config:
                raise ValueError(f"the {downstream} config has no {key!r} section (is -c the right file?)")
        if config.get("specaug"):
            raise UnsupportedTask("config.specaug is set: SpecAugment on features is not part of the cached probe; "
                                  "run this task stock")
        self._reference = self.build_expert(upstream_dim=8, upstream_rate=320)  # any width: only its datasets are used
        self.family = _family_of(downstream, self._reference)
        self.datasets = self.family.datasets(self._reference)
        missing = [s for s in SPLITS if s not in self.datasets]
        if missing:
            raise UnsupportedTask(f"-d {downstream}: the expert has no {missing} split(s)")
        self._clips = {split: self.family.clips(self.datasets[split]) for split in SPLITS}

    @classmethod
    def from_files(cls, downstream: str, config_path: str | Path, overrides: Optional[Mapping[str, object]] = None,
                   expdir: str | Path = ".") -> "TaskSetup":
        """The task of ``run_downstream.py -d DOWNSTREAM -c CONFIG -o OVERRIDES``."""
        return cls(downstream, load_config(config_path, overrides), expdir)

    @property
    def datarc(self) -> dict:
        """``config.downstream_expert.datarc``."""
        return dict(self.config["downstream_expert"].get("datarc", {}))

    @property
    def modelrc(self) -> dict:
        """``config.downstream_expert.modelrc``."""
        return dict(self.config["downstream_expert"].get("modelrc", {}))

    def build_expert(self, upstream_dim: int, upstream_rate: int) -> nn.Module:
        """A fresh stock DownstreamExpert (head initialised from the current torch RNG state), as the runner builds it."""
        from upstream_merged import register

        register()  # the plugin's tasks even where the .pth hook is off (python -S, a moved editable install)
        module = importlib.import_module(f"s3prl.downstream.{self.downstream}.expert")
        expert_cls = getattr(module, "DownstreamExpert")
        extra = {k: v for k, v in self.config.items() if k != "downstream_expert"}
        return expert_cls(upstream_dim=upstream_dim, upstream_rate=upstream_rate,
                          downstream_expert=copy.deepcopy(self.config["downstream_expert"]), expdir=str(self.expdir),
                          **copy.deepcopy(extra))

    def clips(self, split: str) -> List[Clip]:
        """The split's clips in the stock dataset's index order."""
        return self._clips[split]

    def load(self, split: str, index: int) -> np.ndarray:
        """The clip's waveform as the stock dataset loads it (16 kHz float32), before any random crop."""
        return np.asarray(self.family.load(self.datasets[split], index), dtype=np.float32)

    def crop_length(self, split: str, index: int) -> Optional[int]:
        """Samples the stock dataset crops this clip to at a random offset each time it is read, or None."""
        return self.family.crop(self, split, self.datasets[split], self._clips[split][index])

    def batches(self, expert: nn.Module, split: str, epoch: int = 0) -> Iterator[List[int]]:
        """Dataset indices of each batch, drawn as iterating ``expert.get_dataloader(split)`` draws them (no audio read).

        The expert's own batch sampler runs inside a DataLoader over the indices, so the global torch RNG
        is consumed exactly as in the stock loop (the loader's base seed, then the sampler's draws): with
        the same seed, the cached probe sees the stock run's batches.
        """
        try:
            loader = expert.get_dataloader(split, epoch=epoch)
        except TypeError as err:  # the runner's own fallback for experts without an epoch argument
            if "unexpected keyword argument 'epoch'" not in str(err):
                raise
            loader = expert.get_dataloader(split)
        if loader.batch_sampler is None:
            raise UnsupportedTask(f"{self.downstream} {split}: its dataloader has no batch sampler")
        indices = DataLoader(_Indices(len(loader.dataset)), batch_sampler=loader.batch_sampler, collate_fn=list,
                             num_workers=0, generator=loader.generator)
        for batch in indices:
            yield [int(i) for i in batch]

    def data_material(self, split: str) -> dict:
        """What the split's audio depends on: the reader, audio-changing datarc keys, every file's path, size and mtime,
        and the random crops. Labels and the task name are left out: tasks reading the same audio share its features."""
        files = []
        for clip in self._clips[split]:
            stat = Path(clip.path).stat()
            files.append([clip.path, stat.st_size, stat.st_mtime_ns])
        datarc = {k: v for k, v in self.datarc.items() if k in AUDIO_KEYS}
        return {"reader": self.family.name, "split": split, "datarc": datarc, "files": files,
                "crops": [self.crop_length(split, i) for i in range(len(self._clips[split]))]}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch as run_downstream.py (and the runner's evaluate) do."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stock_eval_batches(setup: TaskSetup, expert: nn.Module, split: str) -> List[List[int]]:
    """The batches the runner's ``evaluate(split)`` reads (after its reseeding), honouring ``runner.evaluate_ratio``."""
    batches = list(setup.batches(expert, split))
    ratio = float(setup.config["runner"].get("evaluate_ratio", 1))
    steps = round(len(batches) * ratio)
    return batches[: steps + 1]  # the runner breaks only once batch_id > evaluate_steps


def describe(setup: TaskSetup) -> Dict[str, int]:
    """Clips per split (for logs)."""
    return {split: len(setup.clips(split)) for split in SPLITS}


def require_splits(names: Sequence[str]) -> None:
    """Refuse unknown split names, naming the valid ones."""
    unknown = [n for n in names if n not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; choose from {list(SPLITS)}")
