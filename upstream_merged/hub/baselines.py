"""Baseline hub entries researchers compare merges against: HuBERT and MERT as published."""
from __future__ import annotations

from typing import Optional

from upstream_merged.hub.common import refuse_model_config, refuse_unknown_kwargs
from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.registry import hub_entry
from upstream_merged.sources import resolve_source
from upstream_merged.upstream.hubert import HubertFamilyUpstream

DEFAULT_SOURCES = {
    "hubert_base_hf": "facebook/hubert-base-ls960",
    "mert_v0_public": "m-a-p/MERT-v0-public",
    "mert_v1_95m": "m-a-p/MERT-v1-95M",
    "hubert_small": "small:hubert",  # pretrained here on speech, shipped in the package
    "mert_small": "small:mert",  # pretrained here on music, shipped in the package
    "hubert_tiny": "tiny:hubert:0",
    "mert_v1_tiny": "tiny:mert_v1:0",
}


def hubert_family_upstream(source: str, what: str) -> HubertFamilyUpstream:
    """An s3prl upstream for a HuBERT/MERT checkpoint given by local dir, HF id or tiny: source."""
    encoder = load_hubert_family(resolve_source(source, what=what))
    return HubertFamilyUpstream(encoder.model, encoder.sample_rate, encoder.normalize)


def _baseline(name: str):
    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs):
        refuse_unknown_kwargs(name, kwargs)
        refuse_model_config(name, model_config, "the architecture is read from the checkpoint's config.json; pass a "
                            "local Hugging Face directory with -k")
        return hubert_family_upstream(ckpt or DEFAULT_SOURCES[name], what=f"{name} checkpoint")

    entry.__doc__ = f"{name}: HuBERT-family encoder (default {DEFAULT_SOURCES[name]}; -k <local HF dir> overrides)."
    return hub_entry(name)(entry)


for _name in DEFAULT_SOURCES:
    _baseline(_name)
