"""Hub entries ``beats`` (an official BEATs .pt via -k) and ``beats_tiny`` (the embedded tiny checkpoint)."""
from __future__ import annotations

from typing import Optional

from upstream_merged.models.beats import load_beats
from upstream_merged.registry import hub_entry
from upstream_merged.sources import SourceError, resolve_source
from upstream_merged.upstream.beats import BEATsUpstream

OFFICIAL_CHECKPOINT = "BEATs_iter3_plus_AS2M.pt"
TINY_SOURCE = "tiny:beats:0"


def beats_upstream(source: str, what: str = "BEATs checkpoint") -> BEATsUpstream:
    """An s3prl upstream for an official-format BEATs .pt (a file, a dir holding one, or tiny:beats[:seed])."""
    return BEATsUpstream(load_beats(resolve_source(source, what=what)))


def _no_model_config(name: str, model_config: Optional[str]) -> None:
    if model_config:
        raise ValueError(f"{name} takes no -g (model_config={model_config!r}); the cfg is read from the .pt given with -k")


@hub_entry("beats")
def beats(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs):
    """BEATs encoder from an official .pt passed with -k (no public Hugging Face id exists)."""
    _no_model_config("beats", model_config)
    if not ckpt:
        raise SourceError(
            "the beats entry needs the official checkpoint: no Hugging Face id publishes BEATs, so nothing "
            f"can be downloaded for you. Download {OFFICIAL_CHECKPOINT} (or another BEATs .pt) from the "
            "official BEATs release (microsoft/unilm, beats/README.md) and pass it with "
            f"`-k /path/to/{OFFICIAL_CHECKPOINT}`; `-u beats_tiny` runs an embedded tiny model offline."
        )
    return beats_upstream(ckpt)


@hub_entry("beats_tiny")
def beats_tiny(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs):
    """A tiny random BEATs (official format, written once into the cache) for offline runs; -k overrides."""
    _no_model_config("beats_tiny", model_config)
    return beats_upstream(ckpt or TINY_SOURCE, what="beats_tiny checkpoint")
