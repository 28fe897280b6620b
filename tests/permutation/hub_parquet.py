"""Local replicas of the packaged recipes' hub datasets, in their published schemas, for offline tests.

The features are the ones the dataset cards declare (read via the search tool, see docs/calibration_data.md):
- fixie-ai/librispeech_asr (a Parquet copy of openslr/librispeech_asr, whose dataset_infos.json declares them):
  file: string, audio: Audio(sampling_rate=16000), text: string, speaker_id: int64, chapter_id: int64, id: string;
  config ``clean``, split ``train.100``, files ``clean/train.100-000NN-of-00024.parquet``; FLAC bytes.
- benjamin-paine/free-music-archive-commercial-16khz-full (README.md dataset_info): audio: Audio() (no fixed rate),
  title, url, artist, album_title: string, license: ClassLabel(10 names), copyright: string; config ``default``,
  split ``train``, files ``data/train-*``. The card does not say which codec the bytes use; MP3 at 16 kHz is
  written here (full tracks of about 740 KB on average can only be a lossy codec at that rate).
Files are written as ``push_to_hub`` writes them: the Audio column is a struct of (bytes, path) and the features
ride in the Parquet schema metadata under ``huggingface``; README.md carries the ``configs`` YAML.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import soundfile

FMA_LICENSES = ["CC-BY 1.0", "CC-BY 2.0", "CC-BY 2.5", "CC-BY 3.0", "CC-BY 4.0", "CC-Sampling+ 1.0", "CC0 1.0",
                "FMA Sound Recording Common Law", "Free Art License", "Public Domain Mark 1.0"]


def tone(seconds: float, rate: int, freq: float, seed: int = 0) -> np.ndarray:
    """A seeded test signal (a modulated tone plus a little noise), float32."""
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * noise).astype(np.float32)


def encode(wave: np.ndarray, rate: int, fmt: str = "FLAC", subtype: Optional[str] = "PCM_16") -> bytes:
    """``wave`` encoded as ``fmt`` bytes (FLAC, WAV, MP3, OGG)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def write_audio_parquet(path: Path, features, columns: dict) -> None:
    """A Parquet file as the hub stores it: Audio columns as struct(bytes, path), features in the metadata."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, values in columns.items():
        if isinstance(features[name], datasets.Audio):
            arrays[name] = pa.array(values, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
        else:
            arrays[name] = pa.array(values, type=features[name].pa_type)
    metadata = {b"huggingface": json.dumps({"info": {"features": features.to_dict()}}).encode()}
    pq.write_table(pa.table(arrays).replace_schema_metadata(metadata), str(path))


def _readme(config: str, split: str, pattern: str) -> str:
    return f"---\nconfigs:\n- config_name: {config}\n  data_files:\n  - split: {split}\n    path: {pattern}\n---\n"


def librispeech_replica(root: Path, utterances: int = 8, seconds: float = 1.5,
                        audio: Optional[List[dict]] = None) -> Path:
    """fixie-ai/librispeech_asr's layout (config clean, split train.100) with ``utterances`` FLAC examples."""
    import datasets

    features = datasets.Features({"file": datasets.Value("string"), "audio": datasets.Audio(sampling_rate=16000),
                                  "text": datasets.Value("string"), "speaker_id": datasets.Value("int64"),
                                  "chapter_id": datasets.Value("int64"), "id": datasets.Value("string")})
    ids = [f"374-180298-{n:04d}" for n in range(utterances)]
    if audio is None:
        audio = [{"bytes": encode(tone(seconds, 16000, 140 + 15 * n, seed=n), 16000), "path": f"{i}.flac"}
                 for n, i in enumerate(ids)]
    half = utterances // 2
    for shard, rows in enumerate((range(0, half), range(half, utterances))):
        rows = list(rows)
        write_audio_parquet(root / "clean" / f"train.100-{shard:05d}-of-00002.parquet", features, {
            "file": [f"{ids[r]}.flac" for r in rows], "audio": [audio[r] for r in rows],
            "text": [f"UTTERANCE {r}" for r in rows], "speaker_id": [374] * len(rows),
            "chapter_id": [180298] * len(rows), "id": [ids[r] for r in rows]})
    (root / "README.md").write_text(_readme("clean", "train.100", "clean/train.100-*"))
    return root


def fma_replica(root: Path, tracks: int = 4, seconds: float = 20.0, fmt: str = "MP3",
                subtype: Optional[str] = "MPEG_LAYER_III", audio: Optional[Sequence[dict]] = None) -> Path:
    """benjamin-paine/free-music-archive-commercial-16khz-full's layout (split train) with ``tracks`` whole tracks."""
    import datasets

    features = datasets.Features({"audio": datasets.Audio(), "title": datasets.Value("string"),
                                  "url": datasets.Value("string"), "artist": datasets.Value("string"),
                                  "album_title": datasets.Value("string"),
                                  "license": datasets.ClassLabel(names=FMA_LICENSES),
                                  "copyright": datasets.Value("string")})
    if audio is None:
        audio = [{"bytes": encode(tone(seconds, 16000, 220 + 55 * n, seed=100 + n), 16000, fmt, subtype),
                  "path": f"{1000 + n}.{fmt.lower()}"} for n in range(tracks)]
    write_audio_parquet(root / "data" / "train-00000-of-00001.parquet", features, {
        "audio": list(audio), "title": [f"Track {n}" for n in range(tracks)],
        "url": [f"https://freemusicarchive.org/track/{n}" for n in range(tracks)],
        "artist": ["Artist"] * tracks, "album_title": ["Album"] * tracks,
        "license": [n % len(FMA_LICENSES) for n in range(tracks)], "copyright": [""] * tracks})
    (root / "README.md").write_text(_readme("default", "train", "data/train-*"))
    return root
