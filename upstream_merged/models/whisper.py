"""Whisper encoders (transformers ``WhisperEncoder``) from Hugging Face-format directories, loaded strictly.

Only the encoder is built: the decoder (and the tied ``proj_out``) of a ``WhisperModel`` /
``WhisperForConditionalGeneration`` checkpoint is skipped by name, never loaded.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from upstream_merged.models.checkpoint import CheckpointError, load_strict, read_config, read_weights
from upstream_merged.models.config_keys import WHISPER_ALLOWED, checked_config

logger = logging.getLogger(__name__)

_ENCODER_PREFIXES = ("model.encoder.", "encoder.")
_SKIPPED_PREFIXES = ("model.decoder.", "decoder.", "proj_out.")


@dataclass(frozen=True)
class WhisperFrontendConfig:
    """The log-mel settings of WhisperFeatureExtractor (preprocessor_config.json, defaults as published)."""

    num_mel_bins: int = 80
    n_fft: int = 400
    hop_length: int = 160
    sampling_rate: int = 16000
    chunk_length: int = 30  # seconds the reference pads every clip to


@dataclass
class LoadedWhisper:
    """A Whisper encoder and the frontend settings it was trained with."""

    encoder: WhisperEncoder
    frontend: WhisperFrontendConfig


def whisper_config_from_dict(config: dict, source: str = "config") -> WhisperConfig:
    """A WhisperConfig without encoder layerdrop for a config.json dict."""
    if config.get("model_type") not in (None, "whisper"):
        raise CheckpointError(f"{source}: model_type {config.get('model_type')!r} is not 'whisper'")
    return WhisperConfig(**dict(checked_config(config, WhisperConfig, WHISPER_ALLOWED, source), encoder_layerdrop=0.0))


def build_whisper_encoder(config: dict, source: str = "config") -> WhisperEncoder:
    """A randomly initialised WhisperEncoder for ``config`` (no weights loaded)."""
    return WhisperEncoder(whisper_config_from_dict(config, source))


def read_frontend_config(directory: Path, num_mel_bins: int) -> WhisperFrontendConfig:
    """Frontend settings from preprocessor_config.json; the mel count must agree with config.json."""
    path = Path(directory) / "preprocessor_config.json"
    if not path.is_file():
        return WhisperFrontendConfig(num_mel_bins=num_mel_bins)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from None
    frontend = WhisperFrontendConfig(
        num_mel_bins=int(data.get("feature_size", num_mel_bins)),
        n_fft=int(data.get("n_fft", 400)),
        hop_length=int(data.get("hop_length", 160)),
        sampling_rate=int(data.get("sampling_rate", 16000)),
        chunk_length=int(data.get("chunk_length", 30)),
    )
    if frontend.num_mel_bins != num_mel_bins:
        raise CheckpointError(
            f"{path}: feature_size={frontend.num_mel_bins} disagrees with config.json num_mel_bins={num_mel_bins}"
        )
    return frontend


def encoder_state(state: dict, source: str) -> dict:
    """The encoder's tensors of a full Whisper state dict, keys relative to the encoder."""
    out, skipped = {}, 0
    for key, tensor in state.items():
        prefix = next((p for p in _ENCODER_PREFIXES if key.startswith(p)), None)
        if prefix is not None:
            out[key[len(prefix):]] = tensor.float() if tensor.is_floating_point() else tensor
        elif key.startswith(_SKIPPED_PREFIXES):
            skipped += 1
        else:
            raise CheckpointError(f"{source}: key {key!r} is neither encoder nor decoder of a Whisper checkpoint")
    if not out:
        raise CheckpointError(f"{source}: no encoder weights (keys starting with {' or '.join(_ENCODER_PREFIXES)})")
    logger.debug("%s: skipped %d decoder tensors", source, skipped)
    return out


def load_whisper_encoder(directory: str | Path) -> LoadedWhisper:
    """Load the encoder of a Whisper checkpoint directory strictly, in eval mode."""
    directory = Path(directory)
    config = read_config(directory)
    encoder = build_whisper_encoder(config, str(directory))
    load_strict(encoder, encoder_state(read_weights(directory), str(directory)), str(directory))
    frontend = read_frontend_config(directory, encoder.config.num_mel_bins)
    return LoadedWhisper(encoder.eval(), frontend)
