"""Calibration: audio sources, silent/short clips, batching invariance, other sample rates, torch.distributed."""
from __future__ import annotations

import json
import multiprocessing
import threading
import weakref

import numpy as np
import pytest
import soundfile
import torch
from perm_helpers import SMALL_CALIBRATION, scrambled_copy, write_pair
from safetensors import safe_open

from upstream_merged.models.hubert import LoadedEncoder
from upstream_merged.permutation.audio import CalibrationError, list_clips, load_clip, manifest_files, synthesize
from upstream_merged.permutation.merge import align
from upstream_merged.permutation.recipe import Calibration
from upstream_merged.tiny.hubert import build_tiny_hubert, write_mert_dir

def _tone(seconds: float, rate: int, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.fixture(scope="module")
def pair():
    a = build_tiny_hubert(51)
    b, perms = scrambled_copy(a, seed=52)
    return LoadedEncoder(a, 16000, "hubert"), LoadedEncoder(b, 16000, "hubert"), perms


def test_synthetic_audio_is_seeded_and_sounds_like_two_domains():
    speech, again, music = synthesize("speech", 4, 1.0), synthesize("speech", 4, 1.0), synthesize("music", 4, 1.0)
    assert speech.shape == (16000,) and speech.dtype == np.float32
    assert np.array_equal(speech, again) and not np.array_equal(speech, synthesize("speech", 5, 1.0))
    assert 0.1 < np.abs(speech).max() <= 0.5 and 0.1 < np.abs(music).max() <= 0.5
    # speech-like clips pause (low-energy stretches); music-like clips sustain notes
    frames = lambda w: np.sqrt((w[: len(w) // 400 * 400].reshape(-1, 400) ** 2).mean(1))  # noqa: E731
    assert (frames(speech) < 0.01).mean() > (frames(music) < 0.01).mean()


def test_clip_listing_orders_limits_and_reads_files(tmp_path):
    speech = tmp_path / "speech"
    music = tmp_path / "music" / "sub"
    music.mkdir(parents=True)
    speech.mkdir()
    for n in range(4):
        soundfile.write(speech / f"s{n}.wav", _tone(1.0, 16000, 200 + n), 16000)
        soundfile.write(music / f"m{n}.flac", _tone(2.0, 22050, 300 + n), 22050)
    config = Calibration(dirs=[str(speech), str(tmp_path / "music")])
    refs = list_clips(config, seed=0)
    assert len(refs) == 8 and [r.index for r in refs] == list(range(8))
    assert [r.path for r in refs] == [r.path for r in list_clips(config, seed=0)]
    assert [r.path for r in refs] != [r.path for r in list_clips(config, seed=1)]
    assert len(list_clips(Calibration(dirs=[str(speech)], max_clips=3), 0)) == 3
    budget = list_clips(Calibration(dirs=[str(tmp_path / "music")], max_seconds=3.0), 0)
    assert len(budget) == 2  # 2 s + 2 s reaches the 3 s budget
    wave, rate = load_clip(refs[0], clip_seconds=0.5)
    assert rate in (16000, 22050) and len(wave) == int(0.5 * rate)

    manifest = tmp_path / "list.tsv"
    manifest.write_text(f"{tmp_path}\nspeech/s0.wav\t16000\nmusic/sub/m1.flac\t44100\n")
    assert [p.name for p in manifest_files(manifest)] == ["s0.wav", "m1.flac"]
    manifest.write_text("speech/s0.wav\nspeech/missing.wav\n")
    with pytest.raises(CalibrationError, match="missing"):
        manifest_files(manifest)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="no .wav/.flac"):
        list_clips(Calibration(dirs=[str(tmp_path / "empty")]), 0)
    with pytest.raises(CalibrationError, match="not found"):
        list_clips(Calibration(dirs=[str(tmp_path / "nowhere")]), 0)


def test_silent_and_too_short_clips_are_skipped_or_refused(tmp_path, pair):
    a, b, _ = pair
    bad = tmp_path / "bad"
    bad.mkdir()
    soundfile.write(bad / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    soundfile.write(bad / "short.wav", _tone(0.01, 16000), 16000)  # 160 samples < one 400-sample frame
    with pytest.raises(CalibrationError, match=r"1 clip\(s\) silent.*1 shorter than one frame"):
        align(a, b, ("ffn",), Calibration(dirs=[str(bad)]), seed=0, progress=False)
    soundfile.write(bad / "good.flac", _tone(1.0, 22050), 22050)  # another rate: resampled to 16 kHz
    alignment = align(a, b, ("ffn",), Calibration(dirs=[str(bad)], frames_per_second=None), seed=0, progress=False)
    summary = alignment.calibration
    assert (summary["clips_used"], summary["clips_skipped_silent"], summary["clips_skipped_too_short"]) == (1, 1, 1)
    assert summary["frames_per_group"]["ffn.0"] == 49  # 1 s at 16 kHz -> 49 frames


def test_the_shift_is_primed_on_the_first_second_or_on_whole_clips_when_every_start_is_silent(tmp_path, pair):
    from upstream_merged.permutation.calibration import PRIME_SECONDS

    a, b, _ = pair
    lengths = []
    handle = a.model.register_forward_pre_hook(lambda _m, args: lengths.append(args[0].shape[-1]))
    try:
        for name, wave in (("tone", _tone(3.0, 16000)), ("late", np.concatenate([np.zeros(19200, np.float32), _tone(1.0, 16000)]))):
            folder = tmp_path / name
            folder.mkdir()
            soundfile.write(folder / f"{name}.wav", wave, 16000)
            lengths.clear()
            alignment = align(a, b, ("ffn",), Calibration(dirs=[str(folder)]), seed=0, progress=False)
            assert alignment.calibration["clips_used"] == 1 and torch.isfinite(alignment.correlations["ffn.0"]).all()
            primed = int(PRIME_SECONDS * 16000) if name == "tone" else len(wave)  # a silent first second: the whole clip
            assert lengths == [primed, len(wave)], name
    finally:
        handle.remove()


def test_each_forward_stops_after_its_last_probe_site_and_the_statistics_are_unchanged(pair, monkeypatch):
    from upstream_merged.permutation import calibration

    a, b, _ = pair
    ran = {"layers": 0, "last_ffn_output": 0}
    handles = [layer.register_forward_hook(lambda *_: ran.__setitem__("layers", ran["layers"] + 1))
               for model in (a.model, b.model) for layer in model.encoder.layers]
    handles += [model.encoder.layers[-1].feed_forward.output_dense.register_forward_hook(
        lambda *_: ran.__setitem__("last_ffn_output", ran["last_ffn_output"] + 1)) for model in (a.model, b.model)]
    config = Calibration(**SMALL_CALIBRATION)
    try:
        cnn_only = align(a, b, ("cnn",), config, seed=0, progress=False)
        assert ran["layers"] == 0  # a CNN-only merge never runs the transformer
        stopped = align(a, b, ("cnn", "ffn"), config, seed=0, progress=False)
        assert ran["layers"] > 0 and ran["last_ffn_output"] == 0  # the last FFN probe is the input of that linear
        monkeypatch.setattr(calibration.Calibrator, "_stop_when_every_probe_fired", lambda self, key: None)
        whole = align(a, b, ("cnn", "ffn"), config, seed=0, progress=False)
        assert ran["last_ffn_output"] > 0
    finally:
        for handle in handles:
            handle.remove()
    for name, correlation in whole.correlations.items():
        assert torch.equal(stopped.correlations[name], correlation), name
        assert torch.equal(stopped.perms[name], whole.perms[name]), name
    assert all(torch.equal(cnn_only.correlations[name], whole.correlations[name]) for name in cnn_only.correlations)


def test_on_two_threads_a_and_b_forward_side_by_side_with_the_statistics_of_one_thread(pair):
    a, b, _ = pair
    config = Calibration(**SMALL_CALIBRATION)
    one_thread = align(a, b, ("cnn", "ffn", "attn"), config, seed=0, progress=False)  # conftest: one torch thread
    threads = {"a": set(), "b": set()}
    handles = [model.encoder.layers[0].register_forward_hook(
        lambda *_, side=side: threads[side].add((threading.current_thread().name, torch.get_num_threads())))
        for side, model in (("a", a.model), ("b", b.model))]
    torch.set_num_threads(2)
    try:
        side_by_side = align(a, b, ("cnn", "ffn", "attn"), config, seed=0, progress=False)
        assert torch.get_num_threads() == 2  # restored after the pass
    finally:
        torch.set_num_threads(1)
        for handle in handles:
            handle.remove()
    # a forwarded on the pass's helper thread (but for the priming forward), b on the calling one, each on one torch thread
    here = (threading.current_thread().name, 1)
    helpers = {entry for entry in threads["a"] if entry != here}
    assert len(helpers) == 1 and all(name.startswith("calibration") and count == 1 for name, count in helpers)
    assert threads["b"] == {here}
    for name, correlation in one_thread.correlations.items():
        assert torch.equal(side_by_side.correlations[name], correlation), name
        assert torch.equal(side_by_side.perms[name], one_thread.perms[name]), name


@pytest.mark.parametrize("threads", [1, 2])  # 2: a and b forward side by side
def test_a_forwards_inputs_are_made_when_it_comes_up_and_dropped_after(pair, monkeypatch, threads):
    """Not the whole batch's inputs at once: at most the chunk b is still forwarding lives beside a new one."""
    from upstream_merged.permutation.calibration import Calibrator

    torch.set_num_threads(threads)  # conftest restores one thread
    a, b, _ = pair
    made, others = [], []
    prepare = Calibrator._prepare

    def counted(self, *args, **kwargs):
        others.append(sum(chunk() is not None for chunk in made))
        chunk = prepare(self, *args, **kwargs)
        made.append(weakref.ref(chunk))
        return chunk

    monkeypatch.setattr(Calibrator, "_prepare", counted)
    config = Calibration(**{**SMALL_CALIBRATION, "batch_size": 6, "max_batch_seconds": 1.5})  # one clip a forward
    align(a, b, ("cnn", "ffn"), config, seed=0, progress=False)
    assert len(others) == 1 + 6  # the priming forward and one per clip
    assert max(others) == (1 if threads == 2 else 0)
    assert all(chunk() is None for chunk in made)


@pytest.mark.parametrize("threads", [1, 2])  # 2: a and b forward side by side
def test_a_probe_site_that_fires_in_one_model_only_is_an_error_naming_it(pair, monkeypatch, threads):
    torch.set_num_threads(threads)  # conftest restores one thread
    a, b, _ = pair
    last = b.model.encoder.layers[-1].feed_forward
    monkeypatch.setattr(last, "forward", lambda hidden_states: hidden_states)  # b skips its last FFN: no output_dense input
    last_ffn = f"ffn.{len(b.model.encoder.layers) - 1}"
    with pytest.raises(CalibrationError, match=f"{last_ffn}#0.*fired in model a but not in model b"):
        align(a, b, ("ffn",), Calibration(**SMALL_CALIBRATION), seed=0, progress=False)
    monkeypatch.undo()
    monkeypatch.setattr(a.model.encoder.layers[-1].feed_forward, "forward", lambda hidden_states: hidden_states)
    with pytest.raises(CalibrationError, match=f"{last_ffn}#0 fired in model b but not in model a"):
        align(a, b, ("ffn",), Calibration(**SMALL_CALIBRATION), seed=0, progress=False)


def test_statistics_do_not_depend_on_batching(pair):
    a, b, _ = pair
    capped = dict(SMALL_CALIBRATION, frames_per_second=20.0, cnn_frames_per_second=20.0, max_batch_seconds=2.0)
    one = align(a, b, ("cnn", "ffn"), Calibration(**{**capped, "batch_size": 1}), seed=0, progress=False)
    many = align(a, b, ("cnn", "ffn"), Calibration(**{**capped, "batch_size": 4}), seed=0, progress=False)
    for name in one.correlations:
        assert torch.allclose(one.correlations[name], many.correlations[name], atol=1e-6), name
        assert torch.equal(one.perms[name], many.perms[name])
    full = align(a, b, ("cnn",), Calibration(**SMALL_CALIBRATION), seed=0, progress=False)
    frames_capped, frames_full = one.calibration["frames_per_group"], full.calibration["frames_per_group"]
    assert frames_full["cnn.0"] > 50 * frames_capped["cnn.0"]  # 3200 frames/s site kept at ~20/s
    assert frames_capped["cnn.6"] < frames_full["cnn.6"]


def test_float32_statistics_recover_the_scramble_exactly_as_float64(pair):
    a, b, perms = pair
    from upstream_merged.permutation.apply import invert_all

    runs = {dtype: align(a, b, ("cnn", "ffn", "attn", "residual"), Calibration(**SMALL_CALIBRATION, statistics_dtype=dtype),
                         seed=0, progress=False) for dtype in ("float32", "float64")}
    expected = invert_all(perms)
    for name, perm in runs["float64"].perms.items():
        assert torch.equal(runs["float32"].perms[name], perm), name
        assert torch.equal(perm, expected[name]), name  # both recover the scramble
        assert torch.allclose(runs["float32"].correlations[name], runs["float64"].correlations[name], atol=1e-5), name


def test_models_at_different_native_rates_are_frame_aligned(tmp_path, pair):
    a, _, _ = pair
    from upstream_merged.models.hubert import load_hubert_family

    mert = load_hubert_family(write_mert_dir(tmp_path / "mert_v1", build_tiny_hubert(53), version="v1"))
    assert mert.sample_rate == 24000 and mert.normalize
    alignment = align(a, mert, ("cnn", "ffn", "attn"), Calibration(**SMALL_CALIBRATION), seed=0, progress=False)
    same_rate = align(a, pair[1], ("ffn",), Calibration(**SMALL_CALIBRATION), seed=0, progress=False)
    assert alignment.calibration["frames_per_group"]["ffn.0"] == same_rate.calibration["frames_per_group"]["ffn.0"]
    assert all(torch.isfinite(c).all() for c in alignment.correlations.values())


def test_two_gloo_ranks_on_half_the_clips_match_one_process_on_all(tmp_path):
    a = build_tiny_hubert(61)
    b, _ = scrambled_copy(a, seed=62)
    with torch.no_grad():  # perturb the copy so correlations are informative but not all exactly 1
        generator = torch.Generator().manual_seed(63)
        for tensor in b.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.3 * tensor.std().nan_to_num() * torch.randn(tensor.shape, generator=generator))
    dir_a, dir_b = write_pair(tmp_path, a, b)
    calibration = json.dumps({"synthetic": {"clips": 7, "seconds": 1.0}, "batch_size": 2, "frames_per_second": 20.0})
    from perm_dist_worker import run

    # Fork: the children inherit the imported stack (a fresh interpreter spends ~10 s importing transformers).
    context = multiprocessing.get_context("fork")
    init = f"file://{tmp_path / 'rendezvous'}"
    ranks = [context.Process(target=run, args=(r, 2, init, str(dir_a), str(dir_b), json.loads(calibration),
                                               str(tmp_path / f"rank{r}.safetensors"))) for r in range(2)]
    for proc in ranks:
        proc.start()
    run(0, 1, "", str(dir_a), str(dir_b), json.loads(calibration), str(tmp_path / "single.safetensors"))
    for proc in ranks:
        proc.join(timeout=120)
        assert proc.exitcode == 0, f"rank exited with {proc.exitcode}"

    def read(name):
        with safe_open(str(tmp_path / name), "pt") as handle:
            return {k: handle.get_tensor(k) for k in handle.keys()}, handle.metadata()

    reference, meta = read("single.safetensors")
    assert meta["clips"] == "7"
    for rank in range(2):
        tensors, meta = read(f"rank{rank}.safetensors")
        assert meta["clips"] == "7"  # the all-reduced count covers both halves
        for key, value in reference.items():
            if key.startswith("perm/"):
                assert torch.equal(tensors[key], value), key
            else:
                assert torch.allclose(tensors[key], value, atol=1e-5), key  # float32 per-batch co-moments
    moved = [k for k, v in reference.items() if k.startswith("perm/") and not torch.equal(v, torch.arange(v.numel()))]
    assert len(moved) >= 10  # the proof is about real permutations, not identities
