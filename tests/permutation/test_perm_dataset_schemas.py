"""The packaged recipes' calibration datasets, offline: local replicas in their published schemas (hub_parquet.py)
are streamed by ``datasets`` and decoded by the plugin without torchcodec, as the real ones would be."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import soundfile

datasets = pytest.importorskip("datasets")

from hub_parquet import fma_replica, librispeech_replica  # noqa: E402

from upstream_merged.permutation.audio import list_clips  # noqa: E402
from upstream_merged.permutation.recipe import Calibration  # noqa: E402
from upstream_merged.recipe import load_recipe  # noqa: E402


@pytest.fixture(autouse=True)
def _no_torchcodec(monkeypatch, tmp_path):
    """Whatever is installed, the decode path must not need torchcodec (None in sys.modules makes imports fail)."""
    monkeypatch.setitem(sys.modules, "torchcodec", None)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")


def test_librispeech_layout_streams_config_clean_split_train_100(tmp_path):
    root = librispeech_replica(tmp_path / "librispeech_asr", utterances=8, seconds=1.5)
    sources = {}
    for path in sorted((root / "clean").glob("*.parquet")):
        table = datasets.Dataset.from_parquet(str(path)).cast_column("audio", datasets.Audio(decode=False))
        for row in table:
            sources[row["id"]] = soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")[0]
    entry = {"id": str(root), "config": "clean", "split": "train.100", "audio_column": "audio", "clips": 5,
             "max_seconds": 1.0, "domain": "speech"}
    refs = list_clips(Calibration(datasets=[entry], shuffle=False), seed=3)
    assert len(refs) == 5 and all(ref.source == f"dataset:{root}/clean:train.100" for ref in refs)
    starts = {key: wave[:16000] for key, wave in sources.items()}
    for ref in refs:
        clip, rate = soundfile.read(ref.path, dtype="float32")
        assert rate == 16000 and len(clip) == 16000
        assert any(np.abs(clip - start).max() < 1e-4 for start in starts.values())  # the first second of one source


def test_fma_layout_whole_mp3_tracks_are_cropped_at_their_native_rate(tmp_path):
    root = fma_replica(tmp_path / "fma", tracks=4, seconds=12.0)
    tracks = datasets.Dataset.from_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    tracks = tracks.cast_column("audio", datasets.Audio(decode=False))
    starts = [soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")[0][:32000] for row in tracks]
    entry = {"id": str(root), "split": "train", "audio_column": "audio", "clips": 3, "domain": "music"}
    refs = list_clips(Calibration(datasets=[entry], clip_seconds=2.0, shuffle=False), seed=0)
    assert len(refs) == 3
    for ref in refs:
        clip, rate = soundfile.read(ref.path, dtype="float32")
        assert rate == 16000 and len(clip) == 32000  # 2 s of a 12 s track
        assert min(np.abs(clip - start).max() for start in starts) < 1e-3


def test_packaged_recipes_name_the_verified_datasets():
    from pathlib import Path

    import upstream_merged

    recipes = sorted((Path(upstream_merged.__file__).parent / "recipes").glob("*.yaml"))
    seen = set()
    for path in recipes:
        recipe = load_recipe(path)
        for entry in getattr(getattr(recipe, "calibration", None), "datasets", []):
            seen.add((entry.id, entry.config, entry.split, entry.audio_column))
    assert seen == {("fixie-ai/librispeech_asr", "clean", "train.100", "audio"),
                    ("benjamin-paine/free-music-archive-commercial-16khz-full", None, "train", "audio")}
