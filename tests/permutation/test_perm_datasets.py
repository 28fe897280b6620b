"""calibration.datasets, offline: parquet datasets (Audio column, as the hub stores them) the test writes; seeded
selection, streaming and not, crops, cache, offline errors, per-source sizes in merge_report.json."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile

datasets = pytest.importorskip("datasets")  # tools/requirements.txt lists it; skip cleanly where it is missing

from perm_helpers import make_recipe, scrambled_copy, write_pair  # noqa: E402

from upstream_merged.permutation.audio import CalibrationError, list_clips  # noqa: E402
from upstream_merged.permutation.merge import build  # noqa: E402
from upstream_merged.permutation.recipe import Calibration  # noqa: E402
from upstream_merged.tiny.hubert import build_tiny_hubert  # noqa: E402


def MUSIC(corpora) -> str:  # noqa: N802 - the music set's source label (its id is a temp dir)
    return f"dataset:{corpora['music']['id']}:train"


def _tone(seconds: float, rate: int, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _wav_bytes(wave: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _write_audio_parquet(path, column, rows, texts) -> None:
    """A parquet file with an Audio column as the hub stores it (struct of bytes + path, features in the metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    features = datasets.Features({column: datasets.Audio(), "text": datasets.Value("string")})
    audio = pa.array(rows, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    table = pa.table({column: audio, "text": pa.array(texts)})
    metadata = {b"huggingface": json.dumps({"info": {"features": features.to_dict()}}).encode()}
    pq.write_table(table.replace_schema_metadata(metadata), str(path))


@pytest.fixture
def corpora(tmp_path, monkeypatch):
    """A streamed parquet 'speech' set (12 clips, 16 kHz, column 'speech') and a downloaded 'music' one (6 clips, 22.05 kHz)."""
    monkeypatch.setenv("UPSTREAM_MERGED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    rows = [{"bytes": _wav_bytes(_tone(1.5, 16000, 150 + 20 * n), 16000), "path": f"utt{n}.wav"} for n in range(12)]
    parquet = tmp_path / "speech" / "train.parquet"
    _write_audio_parquet(parquet, "speech", rows, [f"utterance {n}" for n in range(12)])
    songs = [{"bytes": _wav_bytes(_tone(2.0, 22050, 330 + 40 * n), 22050), "path": f"song{n}.wav"} for n in range(6)]
    _write_audio_parquet(tmp_path / "music" / "data" / "train-00000-of-00001.parquet", "audio", songs, ["song"] * 6)
    return {"speech": {"id": "parquet", "data_files": [str(parquet)], "audio_column": "speech", "domain": "speech"},
            "music": {"id": str(tmp_path / "music"), "streaming": False, "domain": "music"}}


def _calibration(corpora, speech: int = 5, music: int = 3, **extra) -> Calibration:
    return Calibration(datasets=[dict(corpora["speech"], clips=speech, max_seconds=1.0), dict(corpora["music"], clips=music)],
                       clip_seconds=1.2, **extra)


def test_seeded_per_domain_selection_is_cropped_cached_and_mixable(corpora, tmp_path):
    refs = list_clips(_calibration(corpora, synthetic={"clips": 2, "seconds": 0.5}), seed=4)
    counts = {}
    for ref in refs:
        counts[ref.source] = counts.get(ref.source, 0) + 1
    assert counts == {"dataset:parquet:train": 5, MUSIC(corpora): 3, "synthetic:speech": 1, "synthetic:music": 1}
    assert len([ref.path for ref in refs if ref.path]) == 8  # the dataset and corpus clips are files; synthetic ones are not
    speech = [soundfile.info(r.path) for r in refs if r.source == "dataset:parquet:train"]
    assert all(info.samplerate == 16000 and info.frames == 16000 for info in speech)  # cropped to max_seconds
    music = [soundfile.info(r.path) for r in refs if r.source == MUSIC(corpora)]
    assert all(info.samplerate == 22050 and info.frames == int(1.2 * 22050) for info in music)  # clip_seconds crop

    again = list_clips(_calibration(corpora, synthetic={"clips": 2, "seconds": 0.5}), seed=4)
    assert [r.path for r in again] == [r.path for r in refs]  # same seed, same clips, same order
    (tmp_path / "speech" / "train.parquet").unlink()  # from now on only the cache can serve the selection
    cached = list_clips(_calibration(corpora, synthetic={"clips": 2, "seconds": 0.5}), seed=4)
    assert [r.path for r in cached] == [r.path for r in refs]
    with pytest.raises(CalibrationError, match=r"(?s)parquet:train is not cached here.*dirs:"):
        list_clips(_calibration(corpora), seed=5)  # another seed needs another selection: source gone, uncached


def test_selection_depends_on_the_seed(corpora):
    def chosen(seed):
        refs = list_clips(Calibration(datasets=[dict(corpora["music"], clips=3)], shuffle=False), seed=seed)
        return [soundfile.read(r.path)[0][:2000].round(4).tobytes() for r in refs]

    assert chosen(1) == chosen(1)
    assert chosen(1) != chosen(2) or chosen(1) != chosen(3)  # 20 possible 3-of-6 picks: two seeds may collide, not three


def test_offline_and_uncached_names_the_dataset_and_shows_local_folder_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSTREAM_MERGED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    calibration = Calibration(datasets=[{"id": "openslr/librispeech_asr", "config": "clean", "split": "train.100",
                                         "clips": 5000}])
    with pytest.raises(CalibrationError) as caught:
        list_clips(calibration, seed=0)
    message = str(caught.value)
    assert "openslr/librispeech_asr/clean:train.100" in message
    assert "dirs:" in message and "LibriSpeech" in message and "music" in message
    assert not list((tmp_path / "cache").rglob("*.flac"))  # nothing partial was written


def test_calibration_set_sizes_are_in_merge_report(corpora, tmp_path):
    a = build_tiny_hubert(81)
    b, _ = scrambled_copy(a, seed=82)
    dir_a, dir_b = write_pair(tmp_path / "pair", a, b)
    section = _calibration(corpora, batch_size=4, frames_per_second=None).model_dump()
    out = build(make_recipe(dir_a, dir_b, calibration=section, preset="cnn_ffn"), tmp_path / "out", progress=False)
    report = json.loads((out / "merge_report.json").read_text())["calibration"]
    assert report["clips_used"] == 8
    assert report["clips_per_source"] == {MUSIC(corpora): 3, "dataset:parquet:train": 5}
