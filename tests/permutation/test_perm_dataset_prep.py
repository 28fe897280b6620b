"""Calibration dataset preparation that finishes: crop before decode, bad examples skipped and counted up to
max_bad_share (then an error naming them), worker-count independence, script-based datasets named as such."""
from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import soundfile

datasets = pytest.importorskip("datasets")

from hub_parquet import encode, fma_replica, librispeech_replica, tone  # noqa: E402

from upstream_merged.permutation.audio import CalibrationError, list_clips  # noqa: E402
from upstream_merged.permutation.audio_crop import read_start  # noqa: E402
from upstream_merged.permutation.calibration_datasets import dataset_cache_dir  # noqa: E402
from upstream_merged.permutation.recipe import Calibration, DatasetAudio  # noqa: E402


@pytest.fixture(autouse=True)
def _datasets_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")


class CountingStream(io.BytesIO):
    """A byte stream that counts what its reader takes."""

    taken = 0

    def read(self, size=-1):
        data = super().read(size)
        self.taken += len(data)
        return data

    def readinto(self, buffer):
        count = super().readinto(buffer)
        self.taken += count
        return count


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("MP3", "MPEG_LAYER_III")])
def test_crop_reads_only_the_bytes_of_the_kept_seconds(fmt, subtype):
    wave = tone(60.0, 16000, 330.0)
    data = encode(wave, 16000, fmt, subtype)
    stream = CountingStream(data)
    start, rate = read_start(stream, 1.0)
    full = soundfile.read(io.BytesIO(data), dtype="float32")[0]
    assert rate == 16000 and len(start) == 16000
    assert np.abs(start - full[:16000]).max() < 1e-6  # exactly what a full decode starts with
    assert stream.taken < 0.1 * len(data), f"read {stream.taken} of {len(data)} bytes for 1 s of a 60 s {fmt}"


def test_a_build_decodes_only_the_cropped_frames(tmp_path, monkeypatch):
    root = fma_replica(tmp_path / "fma", tracks=3, seconds=30.0)
    requested = []
    real_read = soundfile.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(soundfile.SoundFile, "read", spy)
    refs = list_clips(Calibration(datasets=[{"id": str(root), "split": "train", "clips": 3}], clip_seconds=2.0), seed=0)
    assert len(refs) == 3
    assert requested and all(frames == 32000 for frames in requested), requested  # 2 s at 16 kHz, never the track


def _with_bad(tmp_path, bad_at, utterances=12):
    audio = [{"bytes": encode(tone(1.0, 16000, 150 + 10 * n, seed=n), 16000), "path": f"374-180298-{n:04d}.flac"}
             for n in range(utterances)]
    for n in bad_at:
        audio[n] = {"bytes": b"this is not audio" * 10, "path": f"374-180298-{n:04d}.flac"}
    return librispeech_replica(tmp_path / "librispeech_asr", utterances=utterances, audio=audio)


@pytest.mark.parametrize("streaming", [True, False])
def test_bad_examples_are_skipped_and_counted(tmp_path, caplog, streaming):
    root = _with_bad(tmp_path, bad_at=(2, 5, 9))
    entry = {"id": str(root), "config": "clean", "split": "train.100", "clips": 9, "max_bad_share": 0.34,
             "streaming": streaming}
    with caplog.at_level(logging.INFO, logger="upstream_merged"):
        refs = list_clips(Calibration(datasets=[entry], clip_seconds=1.0), seed=1)
    assert len(refs) == 9  # all 9 good examples, the 3 bad ones replaced
    assert all(soundfile.info(ref.path).frames == 16000 for ref in refs)
    skipped = (dataset_cache_dir(DatasetAudio(**entry), 1, 1.0) / "skipped.tsv").read_text().splitlines()
    assert sorted(line.split("(")[1].split(")")[0] for line in skipped) == [
        "374-180298-0002", "374-180298-0005", "374-180298-0009"]
    assert "3 undecodable skipped" in caplog.text


def test_too_many_bad_examples_fail_naming_them_and_cache_nothing(tmp_path):
    root = _with_bad(tmp_path, bad_at=(2, 5, 9))
    entry = DatasetAudio(id=str(root), config="clean", split="train.100", clips=9, max_bad_share=0.2)  # allows 1
    with pytest.raises(CalibrationError) as caught:
        list_clips(Calibration(datasets=[entry.model_dump()], clip_seconds=1.0, shuffle=False), seed=1)
    message = str(caught.value)
    named = [f"374-180298-{n:04d}" for n in (2, 5, 9) if f"374-180298-{n:04d}" in message]
    assert len(named) == 2 and "max_bad_share" in message and "cannot decode it" in message and "libsndfile" in message
    assert not dataset_cache_dir(entry, 1, 1.0).exists()


def test_worker_count_changes_nothing_in_the_clips(tmp_path, monkeypatch):
    root = librispeech_replica(tmp_path / "librispeech_asr", utterances=10, seconds=1.2)

    def build(workers):
        monkeypatch.setenv("UPSTREAM_MERGED_CACHE", str(tmp_path / f"cache_{workers}"))
        entry = {"id": str(root), "config": "clean", "split": "train.100", "clips": 7, "workers": workers}
        refs = list_clips(Calibration(datasets=[entry], clip_seconds=1.0, shuffle=False), seed=5)
        return [soundfile.read(ref.path, dtype="int16")[0].tobytes() for ref in refs]

    assert build(1) == build(4)
    one = DatasetAudio(id="x", clips=3, workers=1, max_bad_share=0.5)
    assert dataset_cache_dir(one, 0, 10.0) == dataset_cache_dir(DatasetAudio(id="x", clips=3), 0, 10.0)


def test_script_based_dataset_gets_its_own_error(tmp_path):
    scripted = tmp_path / "scripted_corpus"
    scripted.mkdir()
    (scripted / "scripted_corpus.py").write_text("import datasets\n")
    with pytest.raises(CalibrationError) as caught:
        list_clips(Calibration(datasets=[{"id": str(scripted), "clips": 2}]), seed=0)
    message = str(caught.value)
    assert f"{scripted}:train is a script-based dataset (scripted_corpus.py)" in message
    assert f"datasets {datasets.__version__}" in message and "not cached here" not in message
    assert "fixie-ai/librispeech_asr" in message
