"""Entries on the small encoders pretrained here and shipped in the package (small:hubert, small:mert).

hubert_small / mert_small: the encoders themselves (-k DIR loads another HF dir instead).
merged_hubert_mert*_small: every permutation preset of hub/permutation.py on the two small encoders,
calibrated on a seeded espeak-ng speech + synthesised music set built on first use (``synth:``
manifest, upstream_merged/synth/calibration.py). fusion_hubert_mert_small_*: the two small encoders
fused by HConv, CHConv, weighted sum or GumD. Everything runs offline.
"""
from __future__ import annotations

from typing import Optional

from upstream_merged.fusion.spec import NEEDS_FINETUNE_FLAG
from upstream_merged.hub.baselines import hubert_family_upstream
from upstream_merged.hub.fusion import DEFAULT_RECIPES, fusion_upstream
from upstream_merged.hub.permutation import PERMUTATION_ENTRIES
from upstream_merged.hub.permutation import _entry as permutation_entry
from upstream_merged.registry import hub_entry

SMALL_SOURCES = {"hubert_small": "small:hubert", "mert_small": "small:mert"}
FUSION_INTERFACES = ("hconv", "chconv", "ws", "gumd")


def _encoder_entry(name: str, source: str) -> None:
    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs):
        return hubert_family_upstream(ckpt or source, what=f"{name} checkpoint")

    entry.__doc__ = f"{name}: small encoder pretrained here, shipped in the package ({source}; -k <HF dir> overrides)."
    hub_entry(name)(entry)


def _fusion_entry(name: str, interface: str) -> None:
    recipe = f"small_fusion_hubert_mert_{interface}"  # packaged upstream_merged/recipes/<recipe>.yaml

    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs):
        return fusion_upstream(ckpt, model_config, recipe, interface, entry=name)

    flag = "train it with -f" if NEEDS_FINETUNE_FLAG[interface] else "no -f needed (Featurizer learns the weights)"
    entry.__doc__ = f"{name}: {interface} fusion of the shipped small HuBERT + small MERT (-g RECIPE overrides; {flag})."
    DEFAULT_RECIPES[name] = recipe
    hub_entry(name)(entry)


for _name, _source in SMALL_SOURCES.items():
    _encoder_entry(_name, _source)
for _suffix, (_preset, _recipe_suffix, _what) in PERMUTATION_ENTRIES.items():
    permutation_entry(f"merged_hubert_mert{_suffix}_small", _preset, f"small_hubert_mert{_recipe_suffix}",
                      f"shipped small encoders: {_what}")
for _interface in FUSION_INTERFACES:
    _fusion_entry(f"fusion_hubert_mert_small_{_interface}", _interface)
