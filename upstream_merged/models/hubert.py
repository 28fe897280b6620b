"""HuBERT-family encoders (HuBERT, MERT v0/v1) from Hugging Face-format directories, loaded strictly.

MERT publishes a remote-code ``MERTModel`` that wraps transformers' ``HubertModel``; we never run
that code: a ``HubertConfig`` is built from MERT's config.json and the weights load key by key.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from transformers import HubertConfig, HubertModel
from transformers.modeling_utils import no_init_weights

from upstream_merged.models.checkpoint import (
    CheckpointError,
    load_strict,
    read_config,
    read_weights,
    rename_checkpoint_keys,
)
from upstream_merged.models.config_keys import HUBERT_ALLOWED, MERT_ALLOWED, checked_config

logger = logging.getLogger(__name__)

# MERTConfig options that change the network: each must keep its neutral value (checked by value).
_MERT_NEUTRAL = {"feature_extractor_cqt": False, "deepnorm": False, "conv_pos_batch_norm": False}
_PREFIXES = ("hubert.", "mert_model.", "model.")


@dataclass
class LoadedEncoder:
    """A HuBERT-architecture model with the sample rate it expects."""

    model: HubertModel
    sample_rate: int
    kind: str  # "hubert" or "mert"
    normalize: bool = False  # per-utterance zero-mean/unit-variance input, from preprocessor_config.json


def is_mert_config(config: dict) -> bool:
    """True for MERT's remote-code config."""
    return config.get("model_type") == "mert_model" or "MERTModel" in (config.get("architectures") or [])


def hubert_config_from_dict(config: dict, source: str = "config") -> tuple[HubertConfig, int, str]:
    """A HubertConfig (no layerdrop, no SpecAugment) plus native sample rate and kind for a HuBERT/MERT config."""
    config = dict(config)
    kind = "mert" if is_mert_config(config) else "hubert"
    if kind == "hubert" and config.get("model_type") not in (None, "hubert"):
        raise CheckpointError(f"{source}: model_type {config.get('model_type')!r} is not a HuBERT-family model")
    sample_rate = 16000
    if kind == "mert":
        for key, neutral in _MERT_NEUTRAL.items():
            if config.get(key, neutral) != neutral:
                raise CheckpointError(f"{source}: MERT option {key}={config[key]!r} is not supported (needs {neutral!r})")
        relax = config.get("attention_relax", -1.0)
        if not isinstance(relax, (int, float)) or isinstance(relax, bool):
            raise CheckpointError(f"{source}: MERT option attention_relax must be a number, got {relax!r}")
        if relax > 0:  # MERT-v1-330M: exact as a plain HubertModel, see relaxed_attention_is_plain_attention
            logger.debug("%s: attention_relax=%s is softmax-invariant (row-max shift); loaded as plain attention",
                         source, relax)
        sample_rate = config.get("sample_rate", 16000)
        if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or not 4000 <= sample_rate <= 192000:
            raise CheckpointError(f"{source}: sample_rate must be an integer rate in Hz (e.g. 16000 or 24000), got {sample_rate!r}")
        config["model_type"] = "hubert"
    config = checked_config(config, HubertConfig, MERT_ALLOWED if kind == "mert" else HUBERT_ALLOWED, source)
    config.update(layerdrop=0.0, apply_spec_augment=False)
    return HubertConfig(**config), sample_rate, kind


def relaxed_attention_is_plain_attention() -> str:
    """Why MERT's ``attention_relax`` needs no code here (the reasoning the loader relies on).

    MERT's remote code (modeling_MERT.py) uses its relaxed attention only in ``HubertEncoder_extend``,
    which it builds only for post-LN models with ``deepnorm`` (refused here); pre-LN MERT-v1-330M runs
    transformers' ``HubertEncoderStableLayerNorm`` whatever ``attention_relax`` says. Where it is used,
    the relaxation computes ``(w / r - max(w / r)) * r = w - max(w)`` on the logits ``w`` before the
    softmax: a per-row shift, which the softmax cancels exactly. A plain ``HubertModel`` therefore
    computes the same function (tests/permutation/test_perm_large.py checks a naive implementation).
    """
    return relaxed_attention_is_plain_attention.__doc__ or ""


def build_hubert(config: dict, source: str = "config") -> LoadedEncoder:
    """A randomly initialised HuBERT-family model for ``config`` (no weights loaded)."""
    hf_config, sample_rate, kind = hubert_config_from_dict(config, source)
    return LoadedEncoder(HubertModel(hf_config), sample_rate, kind)


def load_hubert_family(directory: str | Path) -> LoadedEncoder:
    """Load a HuBERT or MERT checkpoint directory strictly, in eval mode."""
    directory = Path(directory)
    config = read_config(directory)
    hf_config, sample_rate, kind = hubert_config_from_dict(config, str(directory))
    with no_init_weights():  # every tensor is overwritten below, strictly, so skip the random init
        encoder = LoadedEncoder(HubertModel(hf_config), sample_rate, kind)
    state = read_weights(directory)
    state = rename_checkpoint_keys(state, encoder.model.state_dict(), _PREFIXES)
    load_strict(encoder.model, state, str(directory))
    encoder.model.eval()
    encoder.normalize = read_preprocessor_normalize(directory, family_normalize(kind, hf_config))
    return encoder


def family_normalize(kind: str, config) -> bool:
    """Input normalisation the model family was pre-trained with, for directories without a preprocessor.

    MERT (every release): on. HuBERT and WavLM: on for the layer-norm CNN of the large models
    (fairseq ``normalize: true``), off for the group-norm base models.
    """
    return kind == "mert" or getattr(config, "feat_extract_norm", "group") == "layer"


def read_preprocessor_normalize(directory: Path, family_default: bool) -> bool:
    """``do_normalize`` of the directory's preprocessor_config.json; without one, the family default (logged)."""
    path = Path(directory) / "preprocessor_config.json"
    if not path.is_file():
        logger.warning("%s has no preprocessor_config.json: input normalisation %s (the model family's default; "
                       "add a preprocessor_config.json with do_normalize to choose)", directory,
                       "ON" if family_default else "OFF")
        return family_default
    try:
        return bool(json.loads(path.read_text()).get("do_normalize", False))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from None
