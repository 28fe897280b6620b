"""Correlation-permutation merge hub entries: HuBERT Base + MERT-v0-public, one entry per Table I preset.

Each preset entry builds and loads exactly its preset (aligned components and alpha); anything else is
an error that names the entry to use, so a run's ``-u`` name always says what was merged:

- ``-g RECIPE`` (or a YAML given as ``-k``): the recipe to build. A recipe without preset, components
  and alpha takes the entry's preset; one whose effective setting is another preset, or a custom
  setting, is refused (use that preset's entry, or ``merged_hubert_mert_custom``).
- ``-k DIR``: a finished merge (``python -m upstream_merged merge`` output) loaded as is. Its
  ``merge_report.json`` must record the entry's setting; a ``custom`` merge loads only with
  ``merged_hubert_mert_custom``. A directory without a merge report is refused (a plain HuBERT-family
  checkpoint loads with ``hubert_base_hf -k DIR``).
- ``-k DIR`` together with ``-g`` is an error naming both.
- Neither: the packaged recipe of the entry (published sources; *_tiny: embedded tiny models, offline).

``merged_hubert_mert_custom`` has no default: it builds any permutation recipe (-g / YAML -k) or
loads any merge directory (-k DIR). Merges are built on first use and cached on disk, keyed by the
effective recipe + source weights.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from torch import nn

from upstream_merged.hub.common import (EntryArgumentError, build_cached, choose_recipe, is_recipe_file,
                                        refuse_ckpt_with_model_config, refuse_unknown_kwargs)
from upstream_merged.permutation.presets import CUSTOM, CUSTOM_ENTRY, ENTRY_PREFIX, PRESETS
from upstream_merged.registry import hub_entry

logger = logging.getLogger(__name__)

# entry suffix -> (preset, packaged recipe suffix, what it is)
PERMUTATION_ENTRIES = {
    p.entry_suffix: (p.name, p.entry_suffix,
                     f"{p.description}, alpha {p.alpha:g}" + (f" (paper Table I ID {p.paper_id})" if p.paper_id else " (not in the paper)"))
    for p in PRESETS.values()
}


def _setting_text(setting: dict) -> str:
    if setting["preset"] != CUSTOM:
        return f"preset {setting['preset']!r}"
    return f"a custom setting (components {setting['components']}, alpha {setting['alpha']:g})"


def check_setting(entry: str, preset: Optional[str], setting: dict, what: str) -> None:
    """Refuse a build/merge dir whose setting is not the entry's preset, naming both and the entry to use."""
    if preset is None or setting["preset"] == preset:
        return
    twin = entry[len(PRESETS[preset].entry):] if entry.startswith(PRESETS[preset].entry) else ""  # _tiny, _small
    use = setting["hub_entry"] if setting["preset"] == CUSTOM else setting["hub_entry"] + twin
    raise EntryArgumentError(
        f"{entry} builds preset {preset!r}, but {what} is {_setting_text(setting)}. "
        f"Use -u {use} for it"
        + (" (the entry for merges that equal no preset)." if setting["preset"] == CUSTOM else ".")
    )


def merged_dir_upstream(directory: str | Path, entry: str = CUSTOM_ENTRY, preset: Optional[str] = None) -> nn.Module:
    """An s3prl upstream for a finished merge directory whose setting is ``preset`` (None: any setting)."""
    from upstream_merged.models.hubert import load_hubert_family
    from upstream_merged.permutation.report import read_setting
    from upstream_merged.upstream.hubert import HubertFamilyUpstream

    directory = Path(directory)
    if not directory.is_dir():
        raise EntryArgumentError(f"{entry}: -k {directory} is neither a recipe YAML (.yaml/.yml) nor a merge directory")
    setting = read_setting(directory)
    if setting is None:
        raise EntryArgumentError(
            f"{entry}: -k {directory} has no merge_report.json, so it is not a merge built by upstream_merged. "
            f"Load a plain HuBERT/MERT checkpoint with -u hubert_base_hf -k {directory}; to merge it, name it in a "
            "recipe's sources (a or b) and pass the recipe with -g."
        )
    check_setting(entry, preset, setting, f"-k {directory} (per its merge_report.json)")
    if preset is None and setting["preset"] != CUSTOM:
        logger.info("%s holds preset %r; -u %s names it in experiment records", directory, setting["preset"],
                    setting["hub_entry"])
    encoder = load_hubert_family(directory)
    return HubertFamilyUpstream(encoder.model, encoder.sample_rate, encoder.normalize)


def entry_recipe(ckpt: Optional[str], model_config: Optional[str], default_recipe: Optional[str], preset: Optional[str],
                 entry: Optional[str] = None):
    """The effective recipe an entry builds: -g / YAML -k else the packaged one; it must be the entry's preset.

    A recipe that sets none of preset, components and alpha takes the entry's preset.
    """
    entry = entry or (PRESETS[preset].entry if preset else CUSTOM_ENTRY)
    recipe = choose_recipe(ckpt, model_config, default_recipe, method="permutation", entry=entry)
    if preset is not None and recipe.preset is None and recipe.components is None and recipe.alpha is None:
        recipe = recipe.model_copy(update={"preset": preset})
    recipe = recipe.effective()
    _, components, alpha = recipe.settings()
    from upstream_merged.permutation.report import setting_data

    check_setting(entry, preset, setting_data(components, alpha), f"the recipe {model_config or ckpt}")
    return recipe


def register_entry(name: str, preset: Optional[str], default_recipe: Optional[str], what: str) -> None:
    """Register permutation entry ``name``: exactly ``preset``, built from the packaged ``default_recipe``."""

    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs) -> nn.Module:
        refuse_unknown_kwargs(name, kwargs)
        refuse_ckpt_with_model_config(name, ckpt, model_config, ckpt_what="a merge directory")
        if ckpt and not is_recipe_file(ckpt):
            return merged_dir_upstream(ckpt, entry=name, preset=preset)
        recipe = entry_recipe(ckpt, model_config, default_recipe, preset, entry=name)
        return merged_dir_upstream(build_cached(recipe, refresh, entry=name), entry=name, preset=preset)

    entry.__doc__ = f"{name}: {what}" + (" (-g/-k recipe YAML, -k merge dir)." if default_recipe else ".")
    hub_entry(name)(entry)


for _suffix, (_preset, _recipe_suffix, _what) in PERMUTATION_ENTRIES.items():
    register_entry(f"{ENTRY_PREFIX}{_suffix}", _preset, f"hubert_mert{_recipe_suffix}", _what)
    register_entry(f"{ENTRY_PREFIX}{_suffix}_tiny", _preset, f"tiny_hubert_mert{_recipe_suffix}", f"tiny offline variant: {_what}")
    register_entry(f"{ENTRY_PREFIX}{_suffix}_large", _preset, f"large_hubert_mert{_recipe_suffix}",
                   f"the large pair (HuBERT Large ll60k + MERT-v1-330M at 24 kHz): {_what}")
register_entry(CUSTOM_ENTRY, None, None, "any permutation setting, custom ones included (-g RECIPE.yaml or -k merge dir; no default)")
