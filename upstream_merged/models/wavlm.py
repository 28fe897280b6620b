"""WavLM encoders (transformers ``WavLMModel``) from Hugging Face-format directories, loaded strictly."""
from __future__ import annotations

import logging
from pathlib import Path

from transformers import WavLMConfig, WavLMModel

from upstream_merged.models.checkpoint import (
    CheckpointError,
    load_strict,
    read_config,
    read_weights,
    rename_checkpoint_keys,
)
from upstream_merged.models.config_keys import WAVLM_ALLOWED, checked_config
from upstream_merged.models.hubert import family_normalize, read_preprocessor_normalize

logger = logging.getLogger(__name__)

_PREFIXES = ("wavlm.", "model.")
# Heads of task checkpoints (WavLMForCTC, ...): not part of the encoder, dropped with a log line.
_HEAD_PREFIXES = ("lm_head.", "projector.", "classifier.", "layer_weights", "quantizer.", "project_q.", "project_hid.")


def wavlm_config_from_dict(config: dict, source: str = "config") -> WavLMConfig:
    """A WavLMConfig without layerdrop or SpecAugment (frozen feature extraction) for a config.json dict."""
    if config.get("model_type") not in (None, "wavlm"):
        raise CheckpointError(f"{source}: model_type {config.get('model_type')!r} is not 'wavlm'")
    config = dict(checked_config(config, WavLMConfig, WAVLM_ALLOWED, source), layerdrop=0.0, apply_spec_augment=False)
    return WavLMConfig(**config)


def build_wavlm(config: dict, source: str = "config") -> WavLMModel:
    """A randomly initialised WavLMModel for ``config`` (no weights loaded)."""
    return WavLMModel(wavlm_config_from_dict(config, source))


def load_wavlm(directory: str | Path) -> tuple[WavLMModel, bool]:
    """Load a WavLM checkpoint directory strictly, in eval mode; also return its ``do_normalize``."""
    directory = Path(directory)
    model = build_wavlm(read_config(directory), str(directory))
    state = rename_checkpoint_keys(read_weights(directory), model.state_dict(), _PREFIXES)
    heads = [k for k in state if k.startswith(_HEAD_PREFIXES)]
    if heads:
        logger.info("%s: ignoring %d task-head tensors (%s...)", directory, len(heads), heads[0])
        state = {k: v for k, v in state.items() if k not in heads}
    load_strict(model, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, str(directory))
    return model.eval(), read_preprocessor_normalize(directory, family_normalize("wavlm", model.config))
