"""Frozen backbones and the fusion upstream's s3prl contract, on the tiny entries."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from upstream_merged.fusion.backbones import FrozenBackbone, load_backbone
from upstream_merged.models.checkpoint import CheckpointError
from upstream_merged.models.wavlm import load_wavlm
from upstream_merged.models.whisper import load_whisper_encoder
from upstream_merged.registry import entries
from upstream_merged.sources import resolve_source
from upstream_merged.testing.contract import assert_deterministic_and_same_layers
from upstream_merged.tiny.fusion import build_tiny_wavlm, build_tiny_whisper
from upstream_merged.upstream.base import UpstreamInputError


@pytest.fixture(scope="module")
def trio():
    """The three-backbone tiny entry (HuBERT 32 x 3, WavLM 32 x 4, Whisper 48 x 3 hidden states)."""
    return entries()["fusion_hubert_wavlm_whisper_hconv_tiny"]()


def test_tiny_checkpoints_load_strictly_in_published_formats():
    wavlm_dir = resolve_source("tiny:wavlm:0")
    state = load_file(str(wavlm_dir / "model.safetensors"))
    assert any(k.endswith("weight_g") for k in state)  # published base+ uses the old weight-norm names
    model, normalize = load_wavlm(wavlm_dir)
    expected = build_tiny_wavlm(3000)
    torch.testing.assert_close(model.state_dict(), expected.state_dict())
    assert normalize is False
    whisper_dir = resolve_source("tiny:whisper:0")
    assert any(k.startswith("model.decoder.") for k in load_file(str(whisper_dir / "model.safetensors")))
    loaded = load_whisper_encoder(whisper_dir)
    torch.testing.assert_close(loaded.encoder.state_dict(), build_tiny_whisper(4000).encoder.state_dict())
    assert loaded.frontend.num_mel_bins == 80


def test_loaders_name_what_is_wrong(tmp_path):
    wavlm_dir = resolve_source("tiny:wavlm:0")
    broken = tmp_path / "wavlm"
    broken.mkdir()
    (broken / "config.json").write_text((wavlm_dir / "config.json").read_text())
    state = load_file(str(wavlm_dir / "model.safetensors"))
    state.pop("encoder.layer_norm.bias")
    save_file(state, str(broken / "model.safetensors"))
    with pytest.raises(CheckpointError, match="encoder.layer_norm.bias"):
        load_backbone(broken)
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="model_type 'bert' is not a supported fusion backbone"):
        load_backbone(other)


def test_backbones_frozen_and_stay_in_eval(trio):
    assert all(isinstance(b, FrozenBackbone) for b in trio.backbones.values())
    assert [b.kind for b in trio.backbones.values()] == ["hubert", "wavlm", "whisper"]
    trio.train()
    assert trio.training and trio.interface.training
    assert all(not m.training for b in trio.backbones.values() for m in b.modules())
    assert all(not p.requires_grad for p in trio.backbones.parameters())
    out = trio([torch.randn(4000), torch.randn(2500)])["hidden_states"]
    out[0].sum().backward()
    assert all(p.grad is None for p in trio.backbones.parameters())
    interface = [p for p in trio.parameters() if p.requires_grad]
    assert interface and all(p.grad is not None for p in interface)
    trio.zero_grad(set_to_none=True)
    trio.eval()


def test_s3prl_contract(trio):
    trio.eval()
    assert trio.get_downsample_rates("hidden_states") == 320
    wavs = [torch.randn(16000)]
    assert_deterministic_and_same_layers(trio, wavs)
    trio.eval()
    with torch.no_grad():
        first = trio(wavs)["hidden_states"]
    assert len(first) == 1 and first[0].shape == (1, 50, trio.output_dim)
    for batch in ([torch.randn(800)], [torch.randn(800), torch.randn(1200), torch.randn(400)]):
        hidden = trio(batch)["hidden_states"]
        assert hidden[0].shape[:2] == (len(batch), round(max(map(len, batch)) / 320))
        hidden[0].mean().backward()
    trio.zero_grad(set_to_none=True)
    with pytest.raises(UpstreamInputError, match="wav 0 must be a 1-D tensor"):
        trio([torch.zeros(2, 800)])


def test_ws_entry_exposes_aligned_layers_without_trainable_weights():
    ws = entries()["fusion_hubert_wavlm_ws_tiny"]().eval()
    with torch.no_grad():
        hidden = ws([torch.randn(16000)])["hidden_states"]
    assert len(hidden) == 4 and all(h.shape == (1, 50, 32) for h in hidden)  # WavLM's 4 layers, HuBERT's 3 interpolated
    assert not any(p.requires_grad for p in ws.parameters())


def test_mert_backbone_at_24khz_fuses_on_the_16khz_grid(tmp_path):
    import yaml

    recipe = tmp_path / "mert.yaml"
    recipe.write_text(yaml.safe_dump({"method": "fusion", "interface": "gumd",
                                      "sources": {"speech": "tiny:hubert:0", "music": "tiny:mert_v1:0"}}))
    fused = entries()["fusion_custom"](model_config=str(recipe)).eval()
    assert fused.backbones["music"].kind == "mert"
    with torch.no_grad():
        (hidden,) = fused([torch.randn(8000), torch.randn(5000)])["hidden_states"]
    assert hidden.shape == (2, 25, 32)


def _linear_by_hand(features, frames):
    """(B, T, D) -> (B, frames, D): linear interpolation with half-sample centres, written out index by index."""
    length = features.shape[1]
    out = []
    for i in range(frames):
        position = max((i + 0.5) * length / frames - 0.5, 0.0)
        low = min(int(position), length - 1)
        high = min(low + 1, length - 1)
        weight = position - low
        out.append((1 - weight) * features[:, low] + weight * features[:, high])
    return torch.stack(out, dim=1)


def test_mert_24khz_backbone_values_match_resample_model_and_interpolation_by_hand(tmp_path):
    """The fusion entry's MERT-v1 (24 kHz) states vs torchaudio resampling + the model + a hand-written interpolation."""
    import torchaudio
    import yaml
    from transformers import Wav2Vec2FeatureExtractor

    recipe = {"method": "fusion", "interface": "gumd", "sources": {"speech": "tiny:hubert:0", "music": "tiny:mert_v1:0"}}
    path = tmp_path / "mert.yaml"
    path.write_text(yaml.safe_dump(recipe))
    fused = entries()["fusion_custom"](model_config=str(path)).eval()
    music = fused.backbones["music"]
    model = music.upstream.model
    generator = torch.Generator().manual_seed(3)
    wavs = [0.1 * torch.randn(8000, generator=generator), 0.1 * torch.randn(5000, generator=generator)]
    ours = music(wavs)
    # by hand: 16 kHz -> 24 kHz with torchaudio's Resample, normalised as MERT's Wav2Vec2FeatureExtractor does
    native = torchaudio.transforms.Resample(16000, 24000)(wavs[0])
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=24000, padding_value=0.0, do_normalize=True)
    inputs = extractor(native.numpy(), sampling_rate=24000, return_tensors="pt").input_values
    with torch.no_grad():
        reference = model(inputs, output_hidden_states=True).hidden_states  # 75 Hz frames
    frames = 8000
    for kernel, stride in zip(model.config.conv_kernel, model.config.conv_stride):
        frames = (frames - kernel) // stride + 1  # the 16 kHz model's frame count (50 Hz grid)
    assert frames == 24 and reference[0].shape[1] == 37
    assert len(ours) == len(reference) == 3
    for layer, (mine, ref) in enumerate(zip(ours, reference)):
        assert mine.shape == (2, frames, 32), layer
        torch.testing.assert_close(mine[:1], _linear_by_hand(ref, frames), atol=1e-4, rtol=0)
