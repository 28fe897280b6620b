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
