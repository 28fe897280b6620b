"""tools/pretrain_small.py: a shortened run of each objective writes a strictly loadable encoder; the pieces."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from superb_tool_helpers import tool

pretrain = tool("pretrain_small")
corpora = tool("make_pretrain_corpora")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A few seconds of speech (espeak-ng) and music (upstream_merged.synth.music) with held-out clips."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.fail("espeak-ng and sox are required (tools/setup_env.sh installs them)")
    from upstream_merged.synth.speech import write_manifest, write_speech_corpus

    out = tmp_path_factory.mktemp("corpus")
    rows = write_speech_corpus(out, minutes=0.2, seed=0, heldout_share=0.5)
    rows += corpora.write_music_corpus(out, minutes=0.1, seed=0, phrase_seconds=2.0, heldout_share=0.5)
    write_manifest(rows, out / "manifest.jsonl")
    return out


@pytest.mark.parametrize("objective", ["hubert", "mert"])
def test_short_run_writes_a_strictly_loadable_encoder(corpus, tmp_path, objective):
    from upstream_merged.models.hubert import load_hubert_family

    out = tmp_path / objective
    code = pretrain.main([str(corpus), str(out), "--objective", objective, "--arch", "test", "--steps", "3",
                          "--batch", "2", "--crop-seconds", "0.5", "--eval-every", "3", "--log-every", "1",
                          "--threads", "1", "--probe-clips", "0"])
    assert code == 0
    encoder = load_hubert_family(out / "encoder")  # strict: every key mapped, every parameter filled
    assert encoder.normalize is pretrain.NORMALIZE[objective]
    assert encoder.model.config.num_hidden_layers == pretrain.TEST_ARCH["num_hidden_layers"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["objective"] == objective
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["kind"] == "train"] == [0, 1, 2]
    assert all(np.isfinite(r["loss"]) for r in log)
    if objective == "mert":
        assert "mse_cqt" in log[-1] and {"acc_mel", "acc_chroma"} <= set(log[-1])
    assert (out / "loss_curve.png").stat().st_size > 0 and not (out / "checkpoint.pt").exists()


def test_conv_frames_matches_the_model():
    model = pretrain.build_model(pretrain.TEST_ARCH, init_seed=0).eval()
    for samples in (8000, 16000, 16321):
        with torch.no_grad():
            frames = model(torch.zeros(1, samples)).last_hidden_state.shape[1]
        assert frames == pretrain.conv_frames(samples, pretrain.TEST_ARCH)


def test_different_init_seeds_give_different_weights():
    a = pretrain.build_model(pretrain.TEST_ARCH, 1).state_dict()
    b = pretrain.build_model(pretrain.TEST_ARCH, 2).state_dict()
    key = "encoder.layers.0.attention.q_proj.weight"
    assert a.keys() == b.keys() and not torch.equal(a[key], b[key])


def test_span_mask_and_kmeans_are_seeded():
    mask = pretrain.span_mask(4, 100, torch.Generator().manual_seed(0))
    assert mask.shape == (4, 100) and 0.2 < mask.float().mean() < 0.8
    assert torch.equal(mask, pretrain.span_mask(4, 100, torch.Generator().manual_seed(0)))
    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal(c, 0.1, size=(50, 2)) for c in (-5.0, 0.0, 5.0)]).astype(np.float32)
    centroids = pretrain.kmeans(data, 3, seed=0)
    assert np.allclose(centroids, pretrain.kmeans(data, 3, seed=0))
    assert sorted(np.round(centroids[:, 0]).tolist()) == [-5.0, 0.0, 5.0]
    units = pretrain.assign_units(data, centroids)
    assert len(set(units[:50])) == len(set(units[50:100])) == 1 and len(set(units)) == 3


def test_lr_schedule_warms_up_then_decays():
    lrs = [pretrain.lr_at(s, 100, 1.0) for s in range(100)]
    peak = int(np.argmax(lrs))
    assert lrs[0] < lrs[peak] == pytest.approx(1.0) and lrs[-1] < 0.05 and 0 < peak < 20


def test_wsd_schedule_warms_up_holds_then_decays_at_the_end():
    lrs = [pretrain.lr_at(s, 100, 1.0, schedule="wsd", warmup_steps=10, decay_fraction=0.2) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(lr == pytest.approx(1.0) for lr in lrs[10:80])  # constant until the decay
    assert lrs[80] == pytest.approx(1.0) and lrs[99] == pytest.approx(0.05) and lrs[90] < lrs[85] < 1.0
    # extending the run before the decay leaves every learning rate so far unchanged
    longer = [pretrain.lr_at(s, 200, 1.0, schedule="wsd", warmup_steps=10, decay_fraction=0.2) for s in range(80)]
    assert longer == lrs[:80]


RESUME_ARGS = ["--arch", "test", "--batch", "2", "--crop-seconds", "0.5", "--eval-every", "3", "--threads", "1",
               "--probe-clips", "0", "--schedule", "wsd", "--warmup-steps", "2", "--steps", "6"]


@pytest.mark.parametrize("objective", ["hubert", "mert"])
def test_a_stopped_run_resumes_bit_identically(corpus, tmp_path, objective):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert pretrain.main([str(corpus), str(straight), "--objective", objective, *RESUME_ARGS]) == 0
    assert pretrain.main([str(corpus), str(stopped), "--objective", objective, *RESUME_ARGS, "--stop-at", "4"]) == 0
    assert (stopped / "checkpoint.pt").is_file() and not (stopped / "encoder").exists()
    assert torch.load(stopped / "checkpoint.pt", weights_only=False)["step"] == 4
    assert pretrain.main([str(corpus), str(stopped), "--objective", objective, *RESUME_ARGS, "--resume"]) == 0
    a = (straight / "encoder" / "model.safetensors").read_bytes()
    assert a == (stopped / "encoder" / "model.safetensors").read_bytes()
    log_a = [json.loads(x) for x in (straight / "train_log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (stopped / "train_log.jsonl").read_text().splitlines()]
    assert [(r["step"], r["loss"]) for r in log_a] == [(r["step"], r["loss"]) for r in log_b]


def test_resume_refuses_a_checkpoint_of_different_arguments_naming_them(corpus, tmp_path):
    out = tmp_path / "run"
    assert pretrain.main([str(corpus), str(out), "--objective", "hubert", *RESUME_ARGS, "--stop-at", "2"]) == 0
    with pytest.raises(SystemExit, match=r"lr \(0.0005 there, 0.001 now\)"):
        pretrain.main([str(corpus), str(out), "--objective", "hubert", *RESUME_ARGS, "--resume", "--lr", "1e-3"])


def test_sigterm_checkpoints_and_exits(corpus, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, str(pretrain.__file__), str(corpus), str(out), "--objective", "hubert", *RESUME_ARGS,
           "--checkpoint-every", "1"]
    cmd[cmd.index("--steps") + 1] = "100000"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert "continue with --resume" in output
    step = torch.load(out / "checkpoint.pt", weights_only=False)["step"]
    assert 0 < step < 100000 and f"stopped after step {step} of 100000" in output


def test_iteration2_targets_are_kmeans_units_of_the_iteration1_layer(corpus, tmp_path):
    first = tmp_path / "iter1"
    args = ["--arch", "test", "--batch", "2", "--crop-seconds", "0.5", "--eval-every", "2", "--threads", "1",
            "--probe-clips", "0", "--steps", "2"]
    assert pretrain.main([str(corpus), str(first), "--objective", "hubert", *args]) == 0
    train, _, _ = pretrain.read_corpus(corpus, "speech")
    train = train[: len(train) // pretrain.HOP * pretrain.HOP]
    feats = pretrain.layer_features(first / "encoder", train, 1, normalize=False)
    assert feats.shape == (len(train) // pretrain.HOP, pretrain.TEST_ARCH["hidden_size"])
    # the windowed extraction equals one forward over the whole stream
    from upstream_merged.models.hubert import load_hubert_family

    model = load_hubert_family(first / "encoder").model.eval()
    whole = torch.from_numpy(np.pad(train, (0, pretrain.receptive_overhang(pretrain.TEST_ARCH))))[None]
    with torch.no_grad():
        ref = model(whole, output_hidden_states=True).hidden_states[1][0, : len(feats)].numpy()
    assert len(train) < 20 * 16000  # one window: the overhang padding makes it the whole-stream forward
    assert np.abs(feats - ref).max() < 1e-4
    short = pretrain.layer_features(first / "encoder", train, 1, normalize=False, window_seconds=1.0)
    assert short.shape == feats.shape  # windows tile the stream frame by frame
    second = tmp_path / "iter2"
    assert pretrain.main([str(corpus), str(second), "--objective", "hubert", *args, "--iteration2-from",
                          str(first / "encoder"), "--iteration2-layer", "1", "--iteration2-clusters", "8"]) == 0
    log = [json.loads(x) for x in (second / "train_log.jsonl").read_text().splitlines()]
    assert "acc_iter2" in log[-1] and "acc_mfcc" not in log[-1]
    from safetensors.numpy import load_file

    assert load_file(str(second / "pretrain_state.safetensors"))["targets.iter2.centroids"].shape == (8, 32)


def test_init_from_continues_a_finished_run_with_its_weights_heads_and_codebooks(corpus, tmp_path):
    from safetensors.numpy import load_file

    first, second = tmp_path / "first", tmp_path / "second"
    assert pretrain.main([str(corpus), str(first), "--objective", "mert", *RESUME_ARGS]) == 0
    assert pretrain.main([str(corpus), str(second), "--objective", "mert", *RESUME_ARGS, "--steps", "0",
                          "--init-from", str(first)]) == 0
    # zero steps: the continued run is the finished one, weights, heads and codebooks alike
    assert (first / "encoder" / "model.safetensors").read_bytes() == (second / "encoder" / "model.safetensors").read_bytes()
    a, b = load_file(str(first / "pretrain_state.safetensors")), load_file(str(second / "pretrain_state.safetensors"))
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    log = [json.loads(x) for x in (second / "train_log.jsonl").read_text().splitlines()]
    first_log = [json.loads(x) for x in (first / "train_log.jsonl").read_text().splitlines()]
    assert log[0]["acc_mel"] == first_log[-1]["acc_mel"]  # its step-0 evaluation is the finished run's last
    with pytest.raises(SystemExit, match="needs a finished run"):
        pretrain.main([str(corpus), str(tmp_path / "third"), "--objective", "mert", *RESUME_ARGS,
                       "--init-from", str(tmp_path / "nothing")])
    assert not (tmp_path / "third").exists()  # refused before OUT is made


def test_refit_targets_keeps_the_encoder_and_fits_the_next_iterations_units_and_heads(corpus, tmp_path):
    from safetensors.numpy import load_file

    first, second = tmp_path / "first", tmp_path / "second"
    assert pretrain.main([str(corpus), str(first), "--objective", "hubert", *RESUME_ARGS]) == 0
    assert pretrain.main([str(corpus), str(second), "--objective", "hubert", *RESUME_ARGS, "--steps", "0",
                          "--init-from", str(first), "--refit-targets", "--iteration2-from", str(first / "encoder"),
                          "--iteration2-layer", "2", "--iteration2-clusters", "6"]) == 0
    # zero steps: the encoder is the finished one; the codebook is new (k = 6 on its layer 2), and so are the heads
    assert (first / "encoder" / "model.safetensors").read_bytes() == (second / "encoder" / "model.safetensors").read_bytes()
    a, b = load_file(str(first / "pretrain_state.safetensors")), load_file(str(second / "pretrain_state.safetensors"))
    assert "targets.mfcc.centroids" in a and "targets.mfcc.centroids" not in b
    assert b["targets.iter2.centroids"].shape[0] == 6 and b["heads.embed.iter2"].shape[0] == 6
    assert json.loads((second / "summary.json").read_text())["refit_targets"] is True


def test_refit_targets_without_init_from_is_refused_naming_it_and_writes_nothing(corpus, tmp_path, capsys):
    with pytest.raises(SystemExit):
        pretrain.main([str(corpus), str(tmp_path / "third"), "--objective", "hubert", *RESUME_ARGS, "--refit-targets"])
    assert "--refit-targets needs --init-from" in capsys.readouterr().err
    assert not (tmp_path / "third").exists()


def test_degrade_changes_the_inputs_not_the_targets_and_resumes_bit_identically(corpus, tmp_path):
    wav = torch.from_numpy(np.random.default_rng(0).standard_normal((3, 8000)).astype(np.float32) * 0.1)
    noisy = pretrain.degrade_batch(wav, seed=0, step=5, profile="pretrain")
    assert noisy.shape == wav.shape and noisy.dtype == torch.float32
    assert not torch.equal(noisy, wav)
    assert torch.equal(noisy, pretrain.degrade_batch(wav, seed=0, step=5, profile="pretrain"))  # (seed, step) decide
    assert not torch.equal(noisy, pretrain.degrade_batch(wav, seed=0, step=6, profile="pretrain"))
    args = [*RESUME_ARGS, "--degrade", "pretrain"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert pretrain.main([str(corpus), str(straight), "--objective", "hubert", *args]) == 0
    assert pretrain.main([str(corpus), str(stopped), "--objective", "hubert", *args, "--stop-at", "3"]) == 0
    with pytest.raises(SystemExit, match=r"degrade \('pretrain' there, 'none' now\)"):
        pretrain.main([str(corpus), str(stopped), "--objective", "hubert", *RESUME_ARGS, "--resume"])
    assert pretrain.main([str(corpus), str(stopped), "--objective", "hubert", *args, "--resume"]) == 0
    assert (straight / "encoder" / "model.safetensors").read_bytes() == (stopped / "encoder" / "model.safetensors").read_bytes()
    clean = tmp_path / "clean"
    assert pretrain.main([str(corpus), str(clean), "--objective", "hubert", *RESUME_ARGS]) == 0
    assert (clean / "encoder" / "model.safetensors").read_bytes() != (straight / "encoder" / "model.safetensors").read_bytes()
    with pytest.raises(SystemExit):
        pretrain.main([str(corpus), str(tmp_path / "bad"), "--objective", "hubert", *RESUME_ARGS, "--degrade", "loud"])


def test_utterance_normalize_standardises_each_utterances_frames_on_their_own():
    rng = np.random.default_rng(0)
    lengths = [5 * pretrain.HOP, 3 * pretrain.HOP + 100, 4 * pretrain.HOP]
    frames = sum(lengths) // pretrain.HOP
    offsets = np.repeat([10.0, -4.0, 50.0], [5, 4, frames - 9])[:, None]  # a constant per utterance ("speaker")
    feats = (rng.normal(size=(frames, 3)) * [1.0, 2.0, 0.5] + offsets).astype(np.float32)
    out = pretrain.utterance_normalize(feats, lengths)
    # frame j starts at sample j * HOP: utterance 2 (3 * HOP + 100 samples) owns the frame starting in its tail
    for rows in (slice(0, 5), slice(5, 9), slice(9, frames)):
        assert np.allclose(out[rows].mean(0), 0, atol=1e-5) and np.allclose(out[rows].std(0), 1, atol=1e-3)
    assert out.dtype == np.float32 and out.shape == feats.shape


def test_iteration2_normalize_fits_units_on_per_utterance_standardised_features(corpus, tmp_path, capsys):
    from safetensors.numpy import load_file

    first, plain, normed = tmp_path / "first", tmp_path / "plain", tmp_path / "normed"
    assert pretrain.main([str(corpus), str(first), "--objective", "hubert", *RESUME_ARGS]) == 0
    refit = [*RESUME_ARGS, "--steps", "0", "--init-from", str(first), "--refit-targets", "--iteration2-from",
             str(first / "encoder"), "--iteration2-layer", "2", "--iteration2-clusters", "6"]
    assert pretrain.main([str(corpus), str(plain), "--objective", "hubert", *refit]) == 0
    assert pretrain.main([str(corpus), str(normed), "--objective", "hubert", *refit,
                          "--iteration2-normalize", "utterance"]) == 0
    a, b = load_file(str(plain / "pretrain_state.safetensors")), load_file(str(normed / "pretrain_state.safetensors"))
    # per-utterance standardised features are globally ~zero-mean, unit-std already; the plain ones need not be
    assert np.abs(b["targets.iter2.mean"]).max() < 1e-3 and not np.allclose(a["targets.iter2.centroids"],
                                                                             b["targets.iter2.centroids"])
    assert json.loads((normed / "summary.json").read_text())["iteration2_normalize"] == "utterance"
    with pytest.raises(SystemExit):
        pretrain.main([str(corpus), str(tmp_path / "bad"), "--objective", "hubert", *RESUME_ARGS,
                       "--iteration2-normalize", "utterance"])
    assert "--iteration2-normalize needs --iteration2-from" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
