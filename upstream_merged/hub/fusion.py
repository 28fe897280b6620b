"""Fusion hub entries: frozen HuBERT / WavLM / Whisper backbones fused by HConv, CHConv, weighted sum or GumD.

hconv, chconv and gumd entries hold their trainable interface inside the upstream, so it trains
only with stock ``-f`` (the backbones stay frozen either way); ws entries expose the aligned
layers and the stock Featurizer learns the layer weights without ``-f``.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Dict, Optional

from upstream_merged.fusion.spec import NEEDS_FINETUNE_FLAG
from upstream_merged.hub.common import (choose_recipe, is_recipe_file, refuse_ckpt_with_model_config,
                                        refuse_unknown_kwargs)
from upstream_merged.registry import hub_entry

if TYPE_CHECKING:  # model code (transformers' Whisper/WavLM) is imported on first use, not with s3prl.hub
    from upstream_merged.fusion.model import FusionUpstream

logger = logging.getLogger(__name__)

# entry name -> packaged recipe (upstream_merged/recipes/<name>.yaml); *_tiny use tiny_<name>.yaml.
PUBLISHED = {
    "fusion_hubert_wavlm_hconv": "hconv",
    "fusion_hubert_wavlm_chconv": "chconv",
    "fusion_hubert_whisper_hconv": "hconv",
    "fusion_hubert_wavlm_whisper_hconv": "hconv",
    "fusion_hubert_wavlm_ws": "ws",
    "fusion_hubert_wavlm_gumd": "gumd",
}
# Every fusion entry -> its packaged default recipe (None: fusion_custom has none); filled below.
DEFAULT_RECIPES: Dict[str, Optional[str]] = {"fusion_custom": None}


def _check_interface(entry: str, wanted: Optional[str], found: str) -> None:
    if wanted is not None and found != wanted:
        raise ValueError(f"{entry} uses interface {wanted}, but the given recipe/dir says {found}; "
                         "use the matching fusion entry or fusion_custom")


def fusion_upstream(ckpt: Optional[str], model_config: Optional[str], default_recipe: Optional[str],
                    interface: Optional[str] = None, entry: str = "fusion_custom") -> "FusionUpstream":
    """Build the upstream for -k/-g: a fused-model dir (-k), a recipe (-g, or -k YAML) or the packaged default."""
    from upstream_merged.fusion.build import fusion_upstream_from_recipe
    from upstream_merged.fusion.fused_dir import is_fused_dir, load_fused_dir

    refuse_ckpt_with_model_config(entry, ckpt, model_config, ckpt_what="a fused-model directory")
    if ckpt and not is_recipe_file(ckpt):
        if not is_fused_dir(ckpt):
            raise ValueError(
                f"{entry}: -k {ckpt} is neither a recipe YAML nor a fused-model directory (no fusion.json). "
                "A fusion entry has several backbones, so one checkpoint dir cannot be -k: name local dirs in a "
                "recipe's sources and pass it with -g, or write a fused dir with `python -m upstream_merged merge`."
            )
        upstream = load_fused_dir(ckpt)
        _check_interface(entry, interface, upstream.spec.interface)
        upstream.frozen_fingerprint.describe(owner=entry)  # mismatch errors on -e name the entry
        return upstream
    recipe = choose_recipe(ckpt, model_config, default_recipe, method="fusion", entry=entry)
    _check_interface(entry, interface, recipe.interface)
    upstream = fusion_upstream_from_recipe(recipe)
    upstream.frozen_fingerprint.describe(owner=entry, sources=recipe.sources)
    return upstream


def register_entry(name: str, recipe_name: str, interface: str, backbones: str) -> None:
    """Register fusion entry ``name`` building the packaged recipe ``recipe_name`` (``backbones`` describes them)."""

    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs):
        refuse_unknown_kwargs(name, kwargs)
        return fusion_upstream(ckpt, model_config, recipe_name, interface, entry=name)

    flag = "train it with -f" if NEEDS_FINETUNE_FLAG[interface] else "no -f needed (Featurizer learns the weights)"
    entry.__doc__ = f"{name}: {interface} fusion ({backbones}; -g RECIPE overrides; {flag})."
    DEFAULT_RECIPES[name] = recipe_name
    hub_entry(name)(entry)


for _name, _interface in PUBLISHED.items():
    register_entry(_name, _name, _interface, "published checkpoints")
    register_entry(f"{_name}_tiny", f"tiny_{_name}", _interface, "tiny embedded backbones")


@hub_entry("fusion_custom")
def fusion_custom(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs):
    """fusion_custom: any fusion recipe (-g RECIPE.yaml) or fused-model dir (-k DIR); -f trains its interface."""
    refuse_unknown_kwargs("fusion_custom", kwargs)
    return fusion_upstream(ckpt, model_config, None, None, entry="fusion_custom")
