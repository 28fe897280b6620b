"""The s3prl upstream contract for BEATs, the hub entries, and one stock run_downstream.py training run."""
import pytest
import torch

from upstream_merged.hub.beats import beats, beats_tiny
from upstream_merged.models.beats import beats_fbank, fbank_frames, load_beats
from upstream_merged.registry import entries
from upstream_merged.sources import SourceError
from upstream_merged.testing.contract import assert_deterministic_and_same_layers
from upstream_merged.testing.s3prl_run import CONFIG_DIR, run_downstream, speech_commands_overrides
from upstream_merged.tiny.beats import build_tiny_beats, write_beats_checkpoint
from upstream_merged.upstream.beats import BEATsUpstream

RATE = 2560


def _wavs(*seconds, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(int(s * 16000), generator=generator) for s in seconds]


@pytest.fixture
def upstream():
    return BEATsUpstream(build_tiny_beats(seed=7))


def _expected_frames(samples):
    return max(fbank_frames(samples) // 16, 1)


def test_all_hidden_states_per_time_patch_with_integer_rate(upstream):
    upstream.eval()
    wavs = _wavs(1.0, 0.7)
    with torch.no_grad():
        hidden = upstream(wavs)["hidden_states"]
    assert len(hidden) == 1 + upstream.model.config.encoder_layers
    rate = upstream.get_downsample_rates("hidden_states")
    assert isinstance(rate, int) and rate == RATE
    assert {tuple(h.shape) for h in hidden} == {(2, _expected_frames(16000), 32)}
    for samples in (800, 16000, 16000 * 3 + 77, 160000):  # s3prl's Featurizer tolerance is 5 frames
        assert abs(_expected_frames(samples) - samples / rate) <= 5


def test_hidden_states_average_the_eight_frequency_tokens(upstream):
    upstream.eval()
    wav = _wavs(1.2)[0]
    with torch.no_grad():
        tokens = upstream.model(beats_fbank(wav)[None]).hidden_states
        pooled = upstream([wav])["hidden_states"]
    for token_state, frame_state in zip(tokens, pooled):
        time_patches = frame_state.shape[1]
        assert token_state.shape[1] == 8 * time_patches
        for t in range(time_patches):  # tokens are time-major: index t * 8 + f
            expected = torch.stack([token_state[0, t * 8 + f] for f in range(8)]).mean(0)
            torch.testing.assert_close(frame_state[0, t], expected)


def test_deterministic_in_eval_and_same_layers_in_train(upstream):
    assert_deterministic_and_same_layers(upstream, _wavs(0.5))


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_short_padded_batches_forward_and_backward(upstream, batch):
    upstream.train()
    wavs = [w.requires_grad_() for w in _wavs(*[0.05 * (i + 1) for i in range(batch)])]  # 0.05 s = 3 fbank frames < one patch
    hidden = upstream(wavs)["hidden_states"]
    assert {tuple(h.shape) for h in hidden} == {(batch, 1, 32)}
    sum(h.pow(2).mean() for h in hidden).backward()
    named = dict(upstream.named_parameters())
    for name in ("model.patch_embedding.weight", "model.encoder.pos_conv.0.weight_g",
                 "model.encoder.layers.0.self_attn.q_proj.weight", "model.encoder.layers.0.self_attn.grep_a",
                 "model.encoder.layers.0.self_attn.relative_attention_bias.weight"):
        assert named[name].grad is not None and named[name].grad.abs().sum() > 0, name
    assert all(w.grad is not None and torch.isfinite(w.grad).all() for w in wavs)  # as s3prl's get_pseudo_wavs


def test_padded_batch_matches_each_utterance_alone(upstream):
    upstream.eval()
    wavs = _wavs(1.0, 0.35, 2.2, seed=3)
    with torch.no_grad():
        batched = upstream(wavs)["hidden_states"]
        for row, wav in enumerate(wavs):
            alone = upstream([wav])["hidden_states"]
            frames = alone[0].shape[1]
            assert frames == _expected_frames(wav.numel())
            for a, b in zip(alone, batched):
                torch.testing.assert_close(b[row, :frames], a[0], atol=1e-5, rtol=1e-5)


def test_hub_entries_are_registered_and_beats_needs_a_checkpoint(tmp_path):
    assert {"beats", "beats_tiny"} <= set(entries())
    with pytest.raises(SourceError, match=r"BEATs_iter3_plus_AS2M\.pt.*-k"):
        beats()
    with pytest.raises(ValueError, match="-g"):
        beats(ckpt="x.pt", model_config="recipe.yaml")
    path = write_beats_checkpoint(tmp_path / "mine.pt", build_tiny_beats(seed=9))
    upstream = beats(ckpt=str(path)).eval()
    reference = BEATsUpstream(load_beats(path)).eval()
    wavs = _wavs(0.8)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(upstream(wavs)["hidden_states"], reference(wavs)["hidden_states"]))
    assert len(beats_tiny()(wavs)["hidden_states"]) == 3


def test_stock_run_downstream_trains_with_beats_tiny(speech_commands_root, tmp_path, plugin_cache_env):
    run = run_downstream(
        ["-m", "train", "-u", "beats_tiny", "-d", "speech_commands",
         "-c", str(CONFIG_DIR / "speech_commands_cpu_small.yaml"), "-p", str(tmp_path / "exp"),
         "-o", speech_commands_overrides(speech_commands_root) + ",,config.runner.total_steps=20"],
        env=plugin_cache_env,
    ).check()
    dev = run.metric("dev acc")
    assert len(dev) == 1 and all(0.0 <= acc <= 1.0 for acc in dev)
    assert (run.expdir / "dev-best.ckpt").is_file()
