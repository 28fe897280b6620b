"""Strict config.json keys: a key the transformers config class does not know is an error naming it.

transformers' config classes accept any keyword and keep it as an attribute, so a typo
(``num_hiden_layers``) or an option of another implementation silently does nothing. Here every
key of a config.json must be either known to the config class (its ``__init__`` parameters, the
attributes ``PretrainedConfig`` sets, its ``attribute_map`` aliases) or on the family's explicit
allow-list below: keys the *published* checkpoints carry that transformers does not read (fairseq
leftovers, generation settings of older transformers versions, remote-code metadata). Allow-listed
keys the installed config class does not know are dropped before the config is built (a key some
transformers version does know is passed on as usual); each entry says why it is harmless.
"""
from __future__ import annotations

import inspect
import logging
from functools import lru_cache
from typing import Dict, FrozenSet, Mapping, Type

from transformers import PretrainedConfig

from upstream_merged.models.checkpoint import CheckpointError

logger = logging.getLogger(__name__)

# Keyword arguments PretrainedConfig.__init__ pops (aliases and bookkeeping) that to_dict() does not list.
_PRETRAINED_CONFIG_POPPED = frozenset({"torch_dtype", "name_or_path", "_commit_hash", "attn_implementation"})

# fairseq SpecAugment options that wav2vec2-era conversions wrote into config.json and every later save
# carries along (transformers only reads mask_time_*/mask_feature_* prob/length/min_masks). Published in
# m-a-p/MERT-v1-330M, microsoft/wavlm-base-plus and the HuBERT Large configs (see tests/models/published_configs).
FAIRSEQ_SPEC_AUGMENT: Dict[str, str] = {
    key: "fairseq SpecAugment option transformers does not read (SpecAugment is always off here)"
    for key in ("mask_channel_length", "mask_channel_min_space", "mask_channel_other", "mask_channel_prob",
                "mask_channel_selection", "mask_time_min_space", "mask_time_other", "mask_time_selection",
                "no_mask_channel_overlap", "no_mask_time_overlap")
}

# Keys of the HuBERT releases (facebook/hubert-base-ls960, -large-ll60k, -large-ls960-ft; transformers 4.8-4.10
# era) unknown to HubertConfig.
HUBERT_ALLOWED: Dict[str, str] = {
    "feat_extract_dropout": "old transformers dropout name; no transformers version since 4.11 reads it",
    "hidden_dropout_prob": "BERT-style alias written by old conversions; HubertConfig uses hidden_dropout",
    "gradient_checkpointing": "training switch of transformers < 4.11; dropped so loading never enables it",
    "diversity_loss_weight": "wav2vec2 pre-training loss weight (facebook/hubert-large-ls960-ft); no encoder reads it",
    **FAIRSEQ_SPEC_AUGMENT,
}

# Keys of MERT's remote-code MERTConfig (m-a-p/MERT-v0, -v0-public, -v1-95M, -v1-330M) unknown to
# HubertConfig. The ones that change the network are checked by value in models/hubert.py.
MERT_ALLOWED: Dict[str, str] = {
    **HUBERT_ALLOWED,
    "auto_map": "names the remote-code classes, which are never run",
    "feature_extractor_cqt": "CQT input branch; must be false (checked)",
    "feature_extractor_cqt_bins": "size of the disabled CQT branch",
    "deepnorm": "DeepNorm residual scaling; must be false (checked)",
    "attention_relax": "attention relaxation (MERT-v1-330M): a softmax-invariant row-max shift, exact as plain attention",
    "conv_pos_batch_norm": "batch norm in the positional conv (later MERTConfig versions); must be false (checked)",
    "sample_rate": "native input rate (16000 or 24000); used to resample s3prl's 16 kHz input",
}

# Keys of microsoft/wavlm-base-plus (and wavlm-base / wavlm-large) unknown to WavLMConfig:
# fairseq pre-training and masking options written by the original conversion.
WAVLM_ALLOWED: Dict[str, str] = {
    **HUBERT_ALLOWED,
    "feat_quantizer_dropout": "dropout of the pre-training quantizer, which the encoder does not have",
    "freeze_feat_extract_train": "fairseq fine-tuning switch; frozen backbones never train",
    "mask_feature_min_masks": "SpecAugment option of wav2vec2-era configs (SpecAugment is always off here)",
    "num_ctc_classes": "size of a CTC head the encoder does not have",
    "replace_prob": "fairseq pre-training option",
}

# Keys of openai/whisper-* (transformers 4.27 era) unknown to WhisperConfig: decoding settings that
# moved to generation_config.json; the encoder never reads them.
WHISPER_ALLOWED: Dict[str, str] = {
    "forced_decoder_ids": "decoder generation setting (now in generation_config.json)",
    "use_cache": "decoder generation setting",
}


@lru_cache(maxsize=None)
def known_config_keys(config_class: Type[PretrainedConfig]) -> FrozenSet[str]:
    """Every config.json key ``config_class`` reads (init parameters, PretrainedConfig attributes, aliases)."""
    keys = set(config_class().to_dict())
    keys |= {name for name in inspect.signature(config_class.__init__).parameters if name not in ("self", "kwargs")}
    keys |= set(getattr(config_class, "attribute_map", {}))
    return frozenset(keys | _PRETRAINED_CONFIG_POPPED)


def checked_config(config: Mapping, config_class: Type[PretrainedConfig], allowed: Mapping[str, str],
                   source: str) -> dict:
    """``config`` without its allow-listed extra keys; any other key ``config_class`` does not know is refused."""
    known = known_config_keys(config_class)
    unknown = sorted(key for key in config if key not in known and key not in allowed)
    if unknown:
        raise CheckpointError(
            f"{source}: config key(s) {unknown} are not {config_class.__name__} options (transformers would ignore "
            f"them silently). If you edited config.json, fix the spelling or remove them. If this is a published "
            f"checkpoint's config.json as downloaded, our list of keys published checkpoints carry is incomplete: "
            f"please report it (an issue to the upstream_merged maintainers naming the key(s) {unknown} and the "
            f"checkpoint id, e.g. m-a-p/MERT-v1-330M, and its revision); until then, deleting those keys from your "
            f"local copy of config.json loads it. Keys already allowed: {sorted(allowed)}"
        )
    dropped = sorted(key for key in config if key in allowed and key not in known)
    if dropped:
        logger.debug("%s: ignoring published config keys %s", source, dropped)
    return {key: value for key, value in config.items() if key not in dropped}
