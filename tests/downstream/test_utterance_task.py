"""The generic utterance-classification expert: audio loading, s3prl's expert contract, and a probe that learns."""
from collections import defaultdict

import numpy as np
import pytest
import soundfile as sf
import torch

from upstream_merged.downstream.readers import Example, TaskData
from upstream_merged.downstream.utterance_task import expert_for, load_audio, subsample

MODELRC = {"projector_dim": 16, "select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}


def test_load_audio_resamples_mixes_and_crops(tmp_path):
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    sf.write(tmp_path / "a.wav", stereo, 44100)
    wav = load_audio(tmp_path / "a.wav")
    assert wav.dtype == np.float32 and wav.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spectrum) - 440) <= 1 and np.abs(wav).max() == pytest.approx(0.25, abs=0.02)
    assert load_audio(tmp_path / "a.wav", max_seconds=0.5).shape == (8000,)


def _toy_task(tmp_path, n_per_class=6):
    splits = {}
    for split in ("train", "dev", "test"):
        splits[split] = []
        for label in range(3):
            for i in range(n_per_class):
                path = tmp_path / f"{split}_{label}_{i}.wav"
                sf.write(path, np.full(800 * (label + 1), 0.1 * (label + 1)), 8000)
                splits[split].append(Example(path, label, f"{split}-{label}-{i}"))
    return TaskData(splits, ("low", "mid", "high"))


def _expert(tmp_path, task, upstream_dim=8):
    cls = expert_for("toy", lambda datarc: task)
    return cls(upstream_dim=upstream_dim, upstream_rate=320, expdir=str(tmp_path),
               downstream_expert={"datarc": {"batch_size": 4, "num_workers": 0}, "modelrc": MODELRC})


def test_dataloaders_follow_the_s3prl_contract(tmp_path):
    expert = _expert(tmp_path, _toy_task(tmp_path))
    wavs, labels, uids = next(iter(expert.get_dataloader("test")))
    assert len(wavs) == len(labels) == len(uids) == 4
    assert wavs[0].shape == (1600,) and labels[:2] == [0, 0] and uids[0] == "test-0-0"  # 0.1 s at 8 kHz -> 16 kHz
    with pytest.raises(ValueError, match="split 'valid'"):
        expert.get_dataloader("valid")


def test_probe_learns_and_logs_like_a_stock_task(tmp_path, capsys):
    with torch.random.fork_rng():  # the probe's init draws from torch's global RNG: seed it locally
        torch.manual_seed(0)
        expert = _expert(tmp_path, _toy_task(tmp_path))
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 8, generator=gen) * 2

    def features(labels):  # class-dependent frames of different lengths, like an upstream's
        return [centers[y] + torch.randn(5 + 3 * i, 8, generator=gen) for i, y in enumerate(labels)]

    optimizer = torch.optim.Adam(expert.parameters(), lr=1e-2)
    labels = [0, 1, 2, 1, 0, 2]
    for _ in range(60):
        records = defaultdict(list)
        loss = expert("train", features(labels), labels, [f"u{i}" for i in range(6)], records)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    records = defaultdict(list)
    with torch.no_grad():
        expert("dev", features(labels * 3), labels * 3, [f"d{i}" for i in range(18)], records)
    assert np.mean(records["acc"]) > 0.9 and set(records["predict"]) <= {"low", "mid", "high"}

    class Logger:
        def __init__(self):
            self.scalars = {}

        def add_scalar(self, tag, value, global_step):
            self.scalars[tag] = value

    logger = Logger()
    assert expert.log_records("dev", records, logger, 10) == ["dev-best.ckpt"]
    assert expert.log_records("dev", records, logger, 20) == []  # not strictly better
    out = capsys.readouterr().out
    assert f"dev acc: {np.mean(records['acc'])}" in out and "toy/dev-acc" in logger.scalars
    lines = (tmp_path / "dev_predict.txt").read_text().splitlines()
    assert len(lines) == 18 and lines[0].split()[0] == "d0"
    assert "New best on dev at step 10" in (tmp_path / "log.log").read_text()
    assert expert.best_score.item() == pytest.approx(np.mean(records["acc"]))


def test_subsample_is_seeded_and_ordered():
    items = [Example(None, 0, str(i)) for i in range(20)]
    picked = subsample(items, 5, seed=1)
    assert picked == subsample(items, 5, seed=1) and len(picked) == 5
    assert [int(e.uid) for e in picked] == sorted(int(e.uid) for e in picked)
    assert subsample(items, None, seed=1) == items


def test_mlp_probe_and_no_projector_from_the_config(tmp_path):
    cls = expert_for("toy", lambda datarc: _toy_task(tmp_path, n_per_class=1))
    modelrc = {"projector_dim": 0, "select": "UtteranceLevel",
               "UtteranceLevel": {"pooling": "MeanPooling",
                                  "post_net": {"select": "FrameLevel", "FrameLevel": {"hiddens": [32]}}}}
    expert = cls(upstream_dim=8, expdir=str(tmp_path), downstream_expert={"datarc": {"batch_size": 2}, "modelrc": modelrc})
    shapes = sorted(tuple(p.shape) for p in expert.parameters())
    assert shapes == [(3,), (3, 32), (32,), (32, 8)]  # 8 -> 32 -> 3, no projector
