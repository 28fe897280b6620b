"""Whisper without 30 s padding vs the reference (WhisperFeatureExtractor + the full HF encoder, sliced).

Stated tolerances: the log-mel frames and the encoder stem (hidden state 0) match the reference
within 1e-4 on a short clip; context="padded" matches every layer within 1e-4. Deeper layers in
context="clip" differ by construction (attention no longer sees 29 s of padding frames); the test
only checks they are finite and reports their relative error.
"""
import pytest
import torch
from transformers import WhisperFeatureExtractor

from upstream_merged.fusion.whisper import WhisperEncoderUpstream
from upstream_merged.models.whisper import WhisperFrontendConfig, load_whisper_encoder
from upstream_merged.sources import resolve_source
from upstream_merged.tiny.fusion import build_tiny_whisper

TOL = 1e-4


@pytest.fixture(scope="module")
def whisper():
    directory = resolve_source("tiny:whisper:0")
    loaded = load_whisper_encoder(directory)
    extractor = WhisperFeatureExtractor.from_pretrained(str(directory))
    return loaded, extractor


@pytest.fixture(scope="module")
def clip():
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(19_237) / 16000
    return (0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(t.shape, generator=generator)).float()


def test_log_mel_matches_feature_extractor_without_padding(whisper, clip):
    loaded, extractor = whisper
    upstream = WhisperEncoderUpstream(loaded.encoder, loaded.frontend)
    reference = extractor(clip.numpy(), sampling_rate=16000, return_tensors="pt").input_features  # (1, 80, 3000)
    short = upstream.frontend(clip[None], 124)
    torch.testing.assert_close(short, reference[..., :124], atol=TOL, rtol=0)
    torch.testing.assert_close(upstream.frontend(clip[None], 3000), reference, atol=TOL, rtol=0)


def test_short_clip_against_padded_reference(whisper, clip):
    loaded, extractor = whisper
    reference_input = extractor(clip.numpy(), sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        reference = loaded.encoder(reference_input, output_hidden_states=True).hidden_states
        short = WhisperEncoderUpstream(loaded.encoder, loaded.frontend, "clip")([clip])["hidden_states"]
        padded = WhisperEncoderUpstream(loaded.encoder, loaded.frontend, "padded")([clip])["hidden_states"]
    frames = -(-len(clip) // 320)
    assert len(short) == len(reference) == 3 and short[0].shape == (1, frames, 48)
    torch.testing.assert_close(short[0], reference[0][:, :frames], atol=TOL, rtol=0)  # frontend + stem exact
    for ours, ref in zip(padded, reference):
        torch.testing.assert_close(ours, ref[:, :frames], atol=TOL, rtol=0)
    for layer, (ours, ref) in enumerate(zip(short, reference)):
        ref = ref[:, :frames]
        assert torch.isfinite(ours).all()
        print(f"layer {layer}: relative error of clip context {float((ours - ref).norm() / ref.norm()):.3f}")


def test_long_clip_is_encoded_window_by_window():
    model = build_tiny_whisper(5, max_source_positions=20)  # a 0.4 s window
    upstream = WhisperEncoderUpstream(model.encoder, WhisperFrontendConfig()).eval()
    with torch.no_grad():
        hidden = upstream([torch.randn(16000), torch.randn(7000)])["hidden_states"]
        padded = WhisperEncoderUpstream(model.encoder, WhisperFrontendConfig(), "padded")([torch.randn(16000)])
    assert [h.shape for h in hidden] == [(2, 50, 48)] * 3
    assert padded["hidden_states"][-1].shape == (1, 50, 48)
    with pytest.raises(ValueError, match="whisper context must be 'clip' or 'padded'"):
        WhisperEncoderUpstream(model.encoder, WhisperFrontendConfig(), "full")


def _windows_by_hand(model, clip, window, context):
    """Reference for a clip longer than one window: WhisperFeatureExtractor's mel, then each window separately.

    padded: every window's mel (2 x window frames) through HF's own WhisperEncoder.forward, outputs
    concatenated. clip: the two stem convs over the whole mel (functional conv1d with the encoder's
    weights), then every window's frames get positions from 0 and run through the layers one by one.
    """
    import torch.nn.functional as F

    encoder = model.encoder
    extractor = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400)
    mel = extractor(clip.numpy(), sampling_rate=16000, return_tensors="pt").input_features  # (1, 80, 3000)
    frames = -(-len(clip) // 320)
    starts = range(0, frames, window)
    states = []
    with torch.no_grad():
        if context == "padded":
            for start in starts:
                segment = mel[..., 2 * start: 2 * (start + window)]
                states.append(encoder(segment, output_hidden_states=True).hidden_states)
        else:
            stem = F.gelu(F.conv1d(mel[..., : 2 * (frames + 1)], encoder.conv1.weight, encoder.conv1.bias, padding=1))
            stem = F.gelu(F.conv1d(stem, encoder.conv2.weight, encoder.conv2.bias, stride=2, padding=1))
            stem = stem.transpose(1, 2)[:, :frames]
            for start in starts:
                x = stem[:, start:start + window]
                x = x + encoder.embed_positions.weight[: x.shape[1]]
                layer_states = [x]
                for layer in encoder.layers:
                    x = layer(x, None, layer_head_mask=None)
                    x = x[0] if isinstance(x, tuple) else x
                    layer_states.append(x)
                layer_states[-1] = encoder.layer_norm(x)
                states.append(layer_states)
    return [torch.cat(layer, dim=1)[:, :frames] for layer in zip(*states)]


@pytest.mark.parametrize("context", ["clip", "padded"])
def test_long_clip_windows_match_each_window_run_separately(context):
    """A clip of 2.5 windows (0.4 s windows): values, not only shapes, against a by-hand window loop."""
    window = 20  # encoder frames per window: 0.4 s
    model = build_tiny_whisper(5, max_source_positions=window)
    t = torch.arange(16000) / 16000
    clip = (0.3 * torch.sin(2 * torch.pi * 330 * t)
            + 0.05 * torch.randn(t.shape, generator=torch.Generator().manual_seed(1))).float()
    upstream = WhisperEncoderUpstream(model.encoder, WhisperFrontendConfig(), context).eval()
    with torch.no_grad():
        ours = upstream([clip])["hidden_states"]
    reference = _windows_by_hand(model, clip, window, context)
    assert len(ours) == len(reference) == 3
    for layer, (mine, ref) in enumerate(zip(ours, reference)):
        assert mine.shape == ref.shape == (1, 50, 48), layer
        torch.testing.assert_close(mine, ref, atol=TOL, rtol=0)
