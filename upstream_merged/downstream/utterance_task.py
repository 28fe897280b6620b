"""One generic utterance-classification downstream (mean pooling + linear probe) for s3prl 0.4.18's runner.

Each task directory (``nsynth_pitch``, ``gtzan_genre``, ``esc50``, ...) only supplies a metadata
reader; this module owns audio loading (any rate -> 16 kHz with torchaudio), batching, the probe, the
loss, metrics and logging. The contract is that of s3prl's ``speech_commands`` expert:
``__init__(upstream_dim, downstream_expert, expdir, **kwargs)``, ``get_dataloader(split)``,
``forward(split, features, labels, ids, records)`` -> loss, ``log_records(...)`` -> save names
(``dev-best.ckpt`` on a new best dev accuracy). It prints ``<split> acc: <value>`` like the stock
tasks and writes ``<split>_predict.txt`` / ``<split>_truth.txt`` (``<id> <class>`` per line).
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soundfile as sf
import torch
import torch.nn as nn
import torchaudio
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from upstream_merged.downstream.readers import SPLITS, Example, TaskData

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # what every s3prl upstream expects


@functools.lru_cache(maxsize=8)
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(orig, new)


def load_audio(path: Path, max_seconds: float | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 waveform at ``sample_rate`` (channels averaged, first ``max_seconds`` kept, resampled by torchaudio)."""
    info = sf.info(str(path))
    frames = -1 if max_seconds is None else int(round(max_seconds * info.samplerate))
    wav, rate = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    wav = torch.from_numpy(wav.mean(axis=1))
    if rate != sample_rate:
        wav = _resampler(rate, sample_rate)(wav)
    return wav.numpy()


class UtteranceDataset(Dataset):
    """Clips of one split, loaded on demand; items are (waveform, label, id)."""

    def __init__(self, examples: Sequence[Example], max_seconds: float | None = None):
        self.examples = list(examples)
        self.max_seconds = max_seconds

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int):
        example = self.examples[index]
        return load_audio(example.path, self.max_seconds), example.label, example.uid

    @staticmethod
    def collate_fn(items):
        """(wavs, labels, ids) as lists, the form s3prl's runner unpacks."""
        wavs, labels, uids = zip(*items)
        return list(wavs), list(labels), list(uids)


def subsample(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    """A seeded subset of at most ``limit`` examples, in the original order (None keeps all)."""
    if limit is None or limit >= len(examples):
        return examples
    keep = np.sort(np.random.default_rng(seed).permutation(len(examples))[:limit])
    return [examples[i] for i in keep]


class UtteranceClassificationExpert(nn.Module):
    """s3prl DownstreamExpert: mean pooling over frames + linear probe, cross-entropy, accuracy."""

    task_name = "utterance"  # tensorboard tag prefix; subclasses set their task name

    def read_data(self, datarc: dict) -> TaskData:
        """The task's examples and classes from ``datarc`` (implemented by each task)."""
        raise NotImplementedError

    def __init__(self, upstream_dim: int, downstream_expert: dict, expdir: str, **kwargs):
        super().__init__()
        from s3prl.downstream.model import get_downstream_model  # the stock probe models

        self.datarc = dict(downstream_expert["datarc"])
        self.modelrc = dict(downstream_expert["modelrc"])
        self.expdir = Path(expdir)
        data = self.read_data(self.datarc)
        self.classes = data.classes
        limits = self.datarc.get("max_examples") or {}
        seed = int(self.datarc.get("subsample_seed", 0))
        max_seconds = self.datarc.get("max_seconds")
        self.datasets = {split: UtteranceDataset(subsample(data.splits[split], limits.get(split), seed), max_seconds)
                         for split in SPLITS}
        log.info("%s: %s examples, %d classes", self.task_name,
                 {s: len(d) for s, d in self.datasets.items()}, len(self.classes))

        projector_dim = int(self.modelrc.get("projector_dim", 0))
        self.projector = nn.Linear(upstream_dim, projector_dim) if projector_dim else nn.Identity()
        self.model = get_downstream_model(projector_dim or upstream_dim, len(self.classes), self.modelrc)
        self.objective = nn.CrossEntropyLoss()
        # -1 so the first dev evaluation always writes dev-best.ckpt (stock tasks start at 0)
        self.register_buffer("best_score", torch.full((1,), -1.0))

    def get_dataloader(self, split: str, epoch: int = 0) -> DataLoader:
        """Shuffled batches for 'train', ordered batches for 'dev' / 'test'."""
        if split not in self.datasets:
            raise ValueError(f"split {split!r} is not one of {list(self.datasets)}")
        dataset = self.datasets[split]
        return DataLoader(dataset, batch_size=int(self.datarc["batch_size"]), shuffle=split == "train",
                          drop_last=False, num_workers=int(self.datarc.get("num_workers", 0)),
                          collate_fn=dataset.collate_fn)

    def forward(self, split: str, features: list[torch.Tensor], labels: list[int], uids: list[str],
                records: dict, **kwargs) -> torch.Tensor:
        """Loss of a batch; appends loss, per-clip correctness, predictions and truths to ``records``."""
        device = features[0].device
        features_len = torch.IntTensor([len(f) for f in features]).to(device)
        padded = self.projector(pad_sequence(features, batch_first=True))  # (B, T, D)
        logits, _ = self.model(padded, features_len)  # (B, C)
        target = torch.LongTensor(labels).to(device)
        loss = self.objective(logits, target)
        predicted = logits.argmax(dim=-1)
        records["loss"].append(loss.item())
        records["acc"] += (predicted == target).float().cpu().tolist()
        records["id"] += list(uids)
        records["predict"] += [self.classes[i] for i in predicted.cpu().tolist()]
        records["truth"] += [self.classes[i] for i in target.cpu().tolist()]
        return loss

    def log_records(self, split: str, records: dict, logger, global_step: int, **kwargs) -> list[str]:
        """Log mean loss and accuracy, print '<split> acc: x', write predictions; 'dev-best.ckpt' on a new best dev acc."""
        save_names = []
        loss = float(np.mean(records["loss"]))
        acc = float(np.mean(records["acc"]))
        logger.add_scalar(f"{self.task_name}/{split}-loss", loss, global_step=global_step)
        logger.add_scalar(f"{self.task_name}/{split}-acc", acc, global_step=global_step)
        print(f"{split} loss: {loss}")
        print(f"{split} acc: {acc}")
        with open(self.expdir / "log.log", "a") as f:
            f.write(f"{split} acc at step {global_step}: {acc}\n")
            if split == "dev" and acc > self.best_score.item():
                self.best_score.fill_(acc)
                f.write(f"New best on {split} at step {global_step}: {acc}\n")
                save_names.append(f"{split}-best.ckpt")
        if split != "train":
            _write_lines(self.expdir / f"{split}_predict.txt", records["id"], records["predict"])
            _write_lines(self.expdir / f"{split}_truth.txt", records["id"], records["truth"])
        return save_names


def _write_lines(path: Path, uids: list[str], values: list[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(f"{u} {v}\n" for u, v in zip(uids, values)))
    tmp.replace(path)


def expert_for(task_name: str, reader: Callable[[dict], TaskData]) -> type:
    """A DownstreamExpert class for a task given its metadata reader (what each task's expert.py exports)."""
    return type("DownstreamExpert", (UtteranceClassificationExpert,),
                {"task_name": task_name, "read_data": lambda self, datarc: reader(datarc),
                 "__doc__": f"s3prl downstream expert of the {task_name!r} task (utterance classification)."})
