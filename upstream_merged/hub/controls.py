"""Control entries for the small-scale evidence table (docs/controls.md), all offline.

Random initialisation: ``small_random_init1`` / ``small_random_init2`` are the shipped small
architecture (upstream_merged/pretrained/hubert_small/config.json) at the random initialisation that
tools/pretrain_small.py starts from with init seed 1 (hubert_small) / 2 (mert_small): transformers'
HubertModel init under ``torch.manual_seed(seed)``, rebuilt identically on every call (s3prl's evaluate
rebuilds the upstream), with the input normalisation of the encoder of the same seed.

Single-encoder interfaces: ``{hconv,chconv,gumd}_{hubert,mert}_small`` put ONE shipped small encoder
behind the trainable interface of the matching fusion row (``fusion_hubert_mert_small_{interface}``):
the same fusion recipe with one source, trained with ``-f``, backbone frozen. The ws twin is the plain
encoder entry (hubert_small / mert_small with the stock Featurizer).

Hand-feature controls need no entry: s3prl's stock ``mfcc`` and ``fbank`` / ``mel`` upstreams run offline.
"""
from __future__ import annotations

import logging
from typing import Optional

from upstream_merged.hub import fusion
from upstream_merged.hub.common import EntryArgumentError, refuse_model_config, refuse_unknown_kwargs
from upstream_merged.registry import hub_entry
from upstream_merged.upstream.hubert import HubertFamilyUpstream

logger = logging.getLogger(__name__)

ARCHITECTURE_SOURCE = "small:hubert"  # whose config.json is the architecture (small:mert ships the same one)

# entry -> (init seed of tools/pretrain_small.py, the encoder that started from it, its do_normalize)
RANDOM_INIT_ENTRIES = {
    "small_random_init1": (1, "hubert_small", False),
    "small_random_init2": (2, "mert_small", True),
}

SINGLE_INTERFACES = ("hconv", "chconv", "gumd")  # the fusion rows trained with -f
SINGLE_ENCODERS = {"hubert": "small HuBERT (speech)", "mert": "small MERT (music)"}


def single_interface_entries() -> dict:
    """Single-encoder interface entry -> (packaged recipe, interface, encoder role), e.g. hconv_hubert_small."""
    return {f"{interface}_{encoder}_small": (f"small_fusion_{encoder}_{interface}", interface, encoder)
            for encoder in SINGLE_ENCODERS for interface in SINGLE_INTERFACES}


def random_init_upstream(seed: int, normalize: bool) -> HubertFamilyUpstream:
    """The shipped small architecture, randomly initialised from torch seed ``seed`` (global RNG untouched), in eval mode."""
    from transformers import HubertModel

    from upstream_merged.core.rng import isolated_rng
    from upstream_merged.models.checkpoint import read_config
    from upstream_merged.models.hubert import hubert_config_from_dict
    from upstream_merged.sources import resolve_source

    directory = resolve_source(ARCHITECTURE_SOURCE, what="the small architecture's config.json")
    config, sample_rate, _ = hubert_config_from_dict(read_config(directory), str(directory))
    with isolated_rng(seed):  # as tools/pretrain_small.py build_model: torch.manual_seed(seed), then HubertModel(config)
        model = HubertModel(config)
    return HubertFamilyUpstream(model, sample_rate, normalize).eval()


def _random_init_entry(name: str, seed: int, encoder: str, normalize: bool) -> None:
    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs):
        refuse_unknown_kwargs(name, kwargs)
        refuse_model_config(name, model_config, "the architecture is the shipped small config.json")
        if ckpt:
            raise EntryArgumentError(f"{name} takes no -k (got -k {ckpt}): its weights are the seed-{seed} random init, "
                                     "never loaded; load a checkpoint with -u hubert_base_hf -k DIR")
        return random_init_upstream(seed, normalize)

    entry.__doc__ = (f"{name}: the small architecture at random init seed {seed} (where {encoder} started; "
                     f"input normalisation {'on' if normalize else 'off'} as {encoder}), no pretraining.")
    hub_entry(name)(entry)


for _name, (_seed, _encoder, _normalize) in RANDOM_INIT_ENTRIES.items():
    _random_init_entry(_name, _seed, _encoder, _normalize)
for _name, (_recipe, _interface, _encoder) in single_interface_entries().items():
    fusion.register_entry(_name, _recipe, _interface, f"the shipped {SINGLE_ENCODERS[_encoder]} alone")
