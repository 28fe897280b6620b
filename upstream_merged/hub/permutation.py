"""Correlation-permutation merge hub entries: HuBERT Base + MERT-v0-public, one entry per Table I preset.

-g (model_config) or a YAML given as -k: the recipe to build (its ``preset``, when set, wins over the
entry's). -k DIR: a finished merge (``python -m upstream_merged merge`` output) loaded as is.
Without either, the packaged recipe of the entry is used (published sources; *_tiny: embedded tiny
models, offline). Merges are built on first use and cached on disk, keyed by recipe + source weights.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from torch import nn

from upstream_merged.hub.common import build_cached, choose_recipe, is_recipe_file
from upstream_merged.registry import hub_entry

logger = logging.getLogger(__name__)

# entry suffix -> (preset, packaged recipe suffix, what it is)
PERMUTATION_ENTRIES = {
    "": ("cnn_ffn_attn", "", "CNN + FFN + attention aligned, 0.9/0.1 (paper Table I ID 5, default)"),
    "_avg": ("avg", "_avg", "0.5/0.5 average, no alignment (ID 3)"),
    "_linear": ("linear", "_linear", "0.9/0.1 interpolation, no alignment (ID 4)"),
    "_cnn": ("cnn", "_cnn", "CNN channels aligned (ID 6)"),
    "_cnn_ffn": ("cnn_ffn", "_cnn_ffn", "CNN + FFN aligned (ID 7)"),
    "_cnn_all": ("cnn_all", "_cnn_all", "CNN + FFN + q/k/v permuted independently (ID 8; not a symmetry)"),
    "_ffn_attn": ("ffn_attn", "_ffn_attn", "FFN + attention aligned, CNN untouched (ID 9)"),
    "_residual": ("cnn_ffn_attn_residual", "_residual", "ID 5 plus the block-structured residual stream"),
}


def merged_dir_upstream(directory: str | Path) -> nn.Module:
    """An s3prl upstream for a finished merge directory (any HuBERT-family HF dir)."""
    from upstream_merged.models.hubert import load_hubert_family
    from upstream_merged.upstream.hubert import HubertFamilyUpstream

    directory = Path(directory)
    if not (directory / "merge_report.json").is_file():
        logger.warning("%s has no merge_report.json; loading it as a plain HuBERT-family checkpoint", directory)
    encoder = load_hubert_family(directory)
    return HubertFamilyUpstream(encoder.model, encoder.sample_rate, encoder.normalize)


def entry_recipe(ckpt: Optional[str], model_config: Optional[str], default_recipe: str, preset: str):
    """The recipe an entry builds: -g / YAML -k else the packaged one; the entry's preset fills an unset one."""
    recipe = choose_recipe(ckpt, model_config, default_recipe, method="permutation")
    if recipe.preset is None:
        recipe = recipe.model_copy(update={"preset": preset})
    elif recipe.preset != preset:
        logger.info("recipe preset %r overrides the entry's preset %r", recipe.preset, preset)
    return recipe


def _entry(name: str, preset: str, default_recipe: str, what: str) -> None:
    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs) -> nn.Module:
        if ckpt and not is_recipe_file(ckpt) and not model_config:
            return merged_dir_upstream(ckpt)
        return merged_dir_upstream(build_cached(entry_recipe(ckpt, model_config, default_recipe, preset), refresh))

    entry.__doc__ = f"{name}: {what} (-g/-k recipe YAML, -k merged dir)."
    hub_entry(name)(entry)


for _suffix, (_preset, _recipe_suffix, _what) in PERMUTATION_ENTRIES.items():
    _entry(f"merged_hubert_mert{_suffix}", _preset, f"hubert_mert{_recipe_suffix}", _what)
    _entry(f"merged_hubert_mert{_suffix}_tiny", _preset, f"tiny_hubert_mert{_recipe_suffix}",
           f"tiny offline variant: {_what}")
