"""Tiny WavLM and Whisper checkpoints in the formats their publishers use (for the fusion entries).

Widths and depths differ from tiny:hubert (hidden 32, 2 layers) on purpose: tiny:wavlm has 3
layers (exercises layer-count interpolation), tiny:whisper has d_model 48 (exercises the width
projection) and keeps the real 1500 positions so the 30 s padded reference stays runnable.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import WavLMConfig, WavLMModel, WhisperConfig, WhisperModel

from upstream_merged.core.rng import isolated_rng
from upstream_merged.tiny import randomize_, tiny_writer
from upstream_merged.tiny.hubert import TINY_FEATURE_ENCODER

TINY_WAVLM = dict(
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
    **TINY_FEATURE_ENCODER,
    num_buckets=32,
    max_bucket_distance=100,
    feat_extract_norm="group",
    do_stable_layer_norm=False,
    conv_bias=False,
)

TINY_WHISPER = dict(
    d_model=48,
    encoder_layers=2,
    encoder_attention_heads=4,
    encoder_ffn_dim=96,
    decoder_layers=1,
    decoder_attention_heads=4,
    decoder_ffn_dim=96,
    num_mel_bins=80,
    max_source_positions=1500,
    max_target_positions=32,
    vocab_size=64,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    decoder_start_token_id=1,
    suppress_tokens=[],
    begin_suppress_tokens=[],
)

WHISPER_PREPROCESSOR = dict(
    feature_extractor_type="WhisperFeatureExtractor",
    chunk_length=30,
    hop_length=160,
    n_fft=400,
    n_samples=480000,
    nb_max_frames=3000,
    padding_side="right",
    padding_value=0.0,
    return_attention_mask=False,
    sampling_rate=16000,
)


def build_tiny_wavlm(seed: int = 0, **overrides) -> WavLMModel:
    """A seeded, fully randomised tiny WavLMModel in eval mode."""
    config = WavLMConfig(**{**TINY_WAVLM, **overrides}, layerdrop=0.0, apply_spec_augment=False)
    with isolated_rng(seed):  # module construction draws from torch's RNG; keep the caller's state
        return randomize_(WavLMModel(config), seed).eval()


def build_tiny_whisper(seed: int = 0, **overrides) -> WhisperModel:
    """A seeded, fully randomised tiny WhisperModel (encoder + decoder) in eval mode."""
    config = WhisperConfig(**{**TINY_WHISPER, **overrides})
    with isolated_rng(seed):
        model = randomize_(WhisperModel(config), seed).eval()
    with torch.no_grad():  # Whisper's positions are sinusoidal constants, not noise
        from transformers.models.whisper.modeling_whisper import sinusoids

        positions = model.encoder.embed_positions.weight
        positions.copy_(sinusoids(*positions.shape))
    return model


def _write(directory: Path, config: dict, state: dict, preprocessor: dict) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    (directory / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2, sort_keys=True))
    save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(directory / "model.safetensors"))
    return directory


def write_wavlm_dir(directory: Path, model: WavLMModel) -> Path:
    """Save ``model`` as microsoft/wavlm-base-plus is published: old weight_g/weight_v names, no prefix."""
    config = dict(model.config.to_dict(), architectures=["WavLMModel"], model_type="wavlm")
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        state[key.replace("parametrizations.weight.original1", "weight_v")] = value
    preprocessor = dict(feature_extractor_type="Wav2Vec2FeatureExtractor", feature_size=1, sampling_rate=16000,
                        padding_side="right", padding_value=0.0, return_attention_mask=True, do_normalize=False)
    return _write(directory, config, state, preprocessor)


def write_whisper_dir(directory: Path, model: WhisperModel) -> Path:
    """Save ``model`` as openai/whisper-* is published: WhisperForConditionalGeneration keys ("model." prefix)."""
    config = dict(model.config.to_dict(), architectures=["WhisperForConditionalGeneration"], model_type="whisper")
    state = {"model." + k: v for k, v in model.state_dict().items()}
    preprocessor = dict(WHISPER_PREPROCESSOR, feature_size=model.config.num_mel_bins)
    return _write(directory, config, state, preprocessor)


@tiny_writer("wavlm")
def _tiny_wavlm(directory: Path, seed: int) -> None:
    write_wavlm_dir(directory, build_tiny_wavlm(seed + 3000))


@tiny_writer("whisper")
def _tiny_whisper(directory: Path, seed: int) -> None:
    write_whisper_dir(directory, build_tiny_whisper(seed + 4000))
