import os

import numpy as np
import pytest
import torch

from upstream_merged.evaluation import features as features_module
from upstream_merged.evaluation.features import (FeatureSplit, Upstream, cached_split, crop_offsets, split_directory,
                                                 state_dict_digest)


@pytest.fixture
def ks_setup(ks_task, make_setup):
    return make_setup(ks_task)


def test_cached_frames_are_the_featurizer_input_of_each_clip(ks_setup, feature_root):
    upstream = Upstream("hubert_tiny")
    split = cached_split(upstream, ks_setup, "test", root=feature_root, progress=False)
    clips = ks_setup.clips("test")
    assert len(split) == len(clips) and split.features.dtype == np.float16
    for index in (0, len(clips) - 1):
        (row,) = split.rows_of(index)
        wav = torch.from_numpy(ks_setup.load("test", index))
        with torch.no_grad():
            layers = upstream.layers([wav])
        expected = torch.stack(layers, dim=2)[0, : round(len(wav) / 320)].numpy()  # Featurizer.tolist's slice
        stored = np.asarray(split.frames(row), dtype=np.float32)
        assert stored.shape == expected.shape == (expected.shape[0], len(layers), layers[0].shape[-1])
        np.testing.assert_allclose(stored, expected, rtol=2e-3, atol=2e-3)  # float16 storage
        np.testing.assert_allclose(split.pooled[row], stored.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert [split.uids[i] for i in range(3)] == [c.uid for c in clips[:3]]


def test_a_second_call_reads_the_cache_without_extracting(ks_setup, feature_root, monkeypatch):
    first = cached_split(Upstream("hubert_tiny"), ks_setup, "dev", root=feature_root, progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError("extracted again")

    monkeypatch.setattr(features_module, "extract_split", refuse)
    again = cached_split(Upstream("hubert_tiny"), ks_setup, "dev", root=feature_root, progress=False)
    assert again.directory == first.directory
    np.testing.assert_array_equal(again.features[:10], first.features[:10])


def test_randomly_cropped_clips_get_several_fixed_crops(ks_setup, feature_root):
    split = cached_split(Upstream("hubert_tiny"), ks_setup, "train", root=feature_root, progress=False)
    silence = [i for i, c in enumerate(ks_setup.clips("train")) if c.uid.startswith("_background_noise_")]
    words = [i for i, c in enumerate(ks_setup.clips("train")) if not c.uid.startswith("_background_noise_")]
    assert silence and words
    for index in silence:
        rows = split.rows_of(index)
        offsets = split.rows.offset[rows]
        assert len(rows) > 1 and len(set(offsets.tolist())) == len(rows)
        assert (split.rows.samples[rows] == 16000).all()
    assert all(len(split.rows_of(i)) == 1 and split.rows.offset[split.rows_of(i)[0]] == 0 for i in words)


def test_crop_offsets_are_seeded_by_the_clip_and_stay_inside_it():
    offsets = crop_offsets("noise.wav", 160000, 16000, 8)
    assert offsets == crop_offsets("noise.wav", 160000, 16000, 8)
    assert offsets != crop_offsets("other.wav", 160000, 16000, 8)
    assert all(0 <= o <= 160000 - 16000 for o in offsets) and len(offsets) > 1
    assert crop_offsets("short.wav", 16000, 16000, 8) == [0]


def test_the_key_follows_weights_data_and_dtype(ks_setup, speech_commands_root, tmp_path):
    hubert, mert = Upstream("hubert_tiny"), Upstream("mert_v1_tiny")
    assert hubert.fingerprint != mert.fingerprint
    assert Upstream("hubert_tiny").fingerprint == hubert.fingerprint  # stable across loads
    before = state_dict_digest(hubert.model)
    with torch.no_grad():
        next(hubert.model.parameters()).add_(1e-3)
    assert state_dict_digest(hubert.model) != before
    base = split_directory(mert, ks_setup, "test", root=tmp_path)
    assert split_directory(mert, ks_setup, "test", dtype="float32", root=tmp_path) != base
    assert split_directory(mert, ks_setup, "dev", root=tmp_path) != base
    wav = next((speech_commands_root / "speech_commands_test_set_v0.01" / "yes").glob("*.wav"))
    stat = wav.stat()
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a rewritten data file
    try:
        assert split_directory(mert, ks_setup, "test", root=tmp_path) != base
    finally:
        os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_music_task_clips_are_cut_to_max_seconds(nsynth_pitch_task, make_setup, feature_root):
    setup = make_setup(nsynth_pitch_task)
    split = cached_split(Upstream("hubert_tiny"), setup, "dev", root=feature_root, progress=False)
    assert (split.rows.samples == 16000).all() and len(split) == len(setup.clips("dev"))
    assert split.uids == [c.uid for c in setup.clips("dev")]


def test_tasks_reading_the_same_audio_share_one_cache(nsynth_pitch_task, make_setup, tmp_path):
    """NSynth pitch and instrument list the same notes: one extraction serves both (labels come from each task)."""
    from upstream_merged.evaluation.validate import TaskRun

    pitch = make_setup(nsynth_pitch_task)
    instrument = make_setup(TaskRun("nsynth_instrument", "nsynth_instrument",
                                    nsynth_pitch_task.config.replace("nsynth_pitch", "nsynth_instrument"),
                                    nsynth_pitch_task.overrides))
    upstream = Upstream("hubert_tiny")
    assert split_directory(upstream, pitch, "dev", root=tmp_path) == split_directory(upstream, instrument, "dev", root=tmp_path)
    assert [c.label for c in pitch.clips("dev")] != [c.label for c in instrument.clips("dev")]


def test_an_incomplete_cache_directory_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a complete feature cache"):
        FeatureSplit(tmp_path)


def test_an_unknown_entry_is_named():
    with pytest.raises(ValueError, match="-u hubert_smal is neither a stock s3prl hub entry nor one of upstream_merged's"):
        Upstream("hubert_smal").model
