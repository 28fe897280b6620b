"""MAM / L-MAM hub entries: text (BERT) or image (ViT) attention merged into HuBERT or BEATs.

-k (ckpt): a recipe YAML, a dir written by ``python -m upstream_merged merge`` (fixed λ only), or a
target checkpoint (HuBERT HF dir / BEATs .pt) that replaces the default recipe's target.
-g (model_config): a recipe YAML. Fixed-λ merges are cached on disk; L-MAM builds from its sources
every time (λ starts at the recipe's lambda_init, so train and evaluate rebuild the same model).
"""
from __future__ import annotations

import logging
from typing import Optional

from torch import nn

from upstream_merged.hub.common import (EntryArgumentError, build_cached, choose_recipe, is_recipe_file,
                                        refuse_ckpt_with_model_config, refuse_unknown_kwargs)
from upstream_merged.mam.recipe import MAMRecipe
from upstream_merged.registry import hub_entry

logger = logging.getLogger(__name__)

# entry name -> (packaged recipe, what it is). Published defaults; *_tiny run offline.
MAM_ENTRIES = {
    "mam_hubert_bert": ("mam_hubert_bert", "HuBERT base + BERT-base attention, λ=0.05"),
    "mam_hubert_vit": ("mam_hubert_vit", "HuBERT base + ViT-base (in21k) attention, λ=0.05"),
    "mam_beats_bert": ("mam_beats_bert", "BEATs (-k BEATs.pt) + BERT-base attention, λ=0.10"),
    "mam_beats_vit": ("mam_beats_vit", "BEATs (-k BEATs.pt) + ViT-base (in21k) attention, λ=0.10"),
}
LMAM_ENTRIES = {
    "lmam_hubert_bert": ("lmam_hubert_bert", "HuBERT base + BERT-base attention, learned λ per layer (init 0.05)"),
    "lmam_hubert_vit": ("lmam_hubert_vit", "HuBERT base + ViT-base attention, learned λ per layer (init 0.05)"),
    "lmam_beats_bert": ("lmam_beats_bert", "BEATs + BERT-base attention, learned λ per layer (init 0.10)"),
    "lmam_beats_vit": ("lmam_beats_vit", "BEATs + ViT-base attention, learned λ per layer (init 0.10)"),
}
for _table in (MAM_ENTRIES, LMAM_ENTRIES):
    for _name, (_recipe, _what) in list(_table.items()):
        _table[f"{_name}_tiny"] = (f"tiny_{_recipe}", f"tiny offline variant of {_name} (embedded tiny: sources)")


def entry_recipe(ckpt: Optional[str], model_config: Optional[str], default_recipe: str) -> MAMRecipe:
    """The recipe an entry runs: -g / YAML -k, else the packaged one; a checkpoint -k replaces the target."""
    recipe = choose_recipe(ckpt, model_config, default_recipe, method="mam")
    if ckpt and not is_recipe_file(ckpt):
        if not recipe.sources["target"].startswith("<"):
            logger.info("-k %s replaces the recipe's target %s", ckpt, recipe.sources["target"])
        recipe = recipe.model_copy(update={"sources": {**recipe.sources, "target": str(ckpt)}})
    return recipe


def _is_merged_dir(ckpt: Optional[str]) -> bool:
    from upstream_merged.mam.build import read_report

    return bool(ckpt) and not is_recipe_file(ckpt) and read_report(ckpt) is not None


def entry_pair(name: str) -> tuple:
    """(target arch, source arch) an entry merges, from its name: mam_hubert_bert_tiny -> (hubert, bert)."""
    parts = name.split("_")
    return parts[1], parts[2]


def _check_pair(name: str, found: tuple, what: str) -> None:
    """Refuse a recipe / merged dir whose target and source architectures are not the entry's, naming the right entry."""
    if tuple(found) != entry_pair(name):
        prefix, tiny = name.split("_")[0], "_tiny" if name.endswith("_tiny") else ""
        raise EntryArgumentError(f"{name} merges {' <- '.join(entry_pair(name))}, but {what} merges "
                                 f"{found[0]} <- {found[1]}; use -u {prefix}_{found[0]}_{found[1]}{tiny}")


def _check_args(name: str, ckpt: Optional[str], model_config: Optional[str]) -> None:
    """-k RECIPE or -k MERGED_DIR with -g names two things to load: refused (-k TARGET with -g replaces the target)."""
    if ckpt and model_config and (is_recipe_file(ckpt) or _is_merged_dir(ckpt)):
        refuse_ckpt_with_model_config(name, ckpt, model_config, ckpt_what="a finished MAM merge directory")


def _recipe_pair(name: str, recipe: MAMRecipe, what: str) -> None:
    from upstream_merged.mam.build import resolve_role
    from upstream_merged.mam.loading import detect_arch

    # fails early, with MAM's own how-to-fix message, before hashing sources
    _check_pair(name, tuple(detect_arch(resolve_role(recipe, role)) for role in ("target", "source")), what)


def _mam(name: str, default_recipe: str, what: str) -> None:
    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs) -> nn.Module:
        from upstream_merged.mam.build import read_report
        from upstream_merged.mam.upstream import merged_dir_upstream

        refuse_unknown_kwargs(name, kwargs)
        _check_args(name, ckpt, model_config)
        if _is_merged_dir(ckpt):
            report = read_report(ckpt)
            _check_pair(name, (report["target"]["arch"], report["source"]["arch"]), f"-k {ckpt} (per its mam_report.json)")
            return merged_dir_upstream(ckpt)
        recipe = entry_recipe(ckpt, model_config, default_recipe)
        if recipe.learnable:
            raise ValueError(f"{name} merges with a fixed λ but the recipe has `learnable: true`; use an lmam_* entry")
        _recipe_pair(name, recipe, f"the recipe {model_config or ckpt or default_recipe}")
        return merged_dir_upstream(build_cached(recipe, refresh, entry=name))

    entry.__doc__ = f"{name}: {what} (-g/-k recipe YAML, -k merged dir or target checkpoint)."
    hub_entry(name)(entry)


def _lmam(name: str, default_recipe: str, what: str) -> None:
    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs) -> nn.Module:
        from upstream_merged.mam.upstream import learnable_upstream

        refuse_unknown_kwargs(name, kwargs)
        _check_args(name, ckpt, model_config)
        if _is_merged_dir(ckpt):
            raise EntryArgumentError(
                f"{name}: -k {ckpt} is a finished fixed-λ MAM merge (it has mam_report.json); L-MAM learns λ from the "
                f"recipe's sources. Pass the target checkpoint itself with -k, or load this merge with "
                f"-u {name[1:]}."
            )
        recipe = entry_recipe(ckpt, model_config, default_recipe)
        _recipe_pair(name, recipe, f"the recipe {model_config or ckpt or default_recipe}")
        return learnable_upstream(recipe, entry=name)

    entry.__doc__ = f"{name}: {what}; train λ with run_downstream.py -f (-g/-k recipe YAML, -k target checkpoint)."
    hub_entry(name)(entry)


for _name, (_recipe, _what) in MAM_ENTRIES.items():
    _mam(_name, _recipe, _what)
for _name, (_recipe, _what) in LMAM_ENTRIES.items():
    _lmam(_name, _recipe, _what)
