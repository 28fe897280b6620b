"""MAM / L-MAM hub entries: text (BERT) or image (ViT) attention merged into HuBERT or BEATs.

-k (ckpt): a recipe YAML, a dir written by ``python -m upstream_merged merge`` (fixed λ only), or a
target checkpoint (HuBERT HF dir / BEATs .pt) that replaces the default recipe's target.
-g (model_config): a recipe YAML. Fixed-λ merges are cached on disk; L-MAM builds from its sources
every time (λ starts at the recipe's lambda_init, so train and evaluate rebuild the same model).
"""
from __future__ import annotations

from typing import Optional

from torch import nn

from upstream_merged.hub.common import build_cached, choose_recipe, is_recipe_file
from upstream_merged.mam.recipe import MAMRecipe
from upstream_merged.registry import hub_entry

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
        recipe = recipe.model_copy(update={"sources": {**recipe.sources, "target": str(ckpt)}})
    return recipe


def _is_merged_dir(ckpt: Optional[str]) -> bool:
    from upstream_merged.mam.build import read_report

    return bool(ckpt) and not is_recipe_file(ckpt) and read_report(ckpt) is not None


def _mam(name: str, default_recipe: str, what: str) -> None:
    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs) -> nn.Module:
        from upstream_merged.mam.build import resolve_role
        from upstream_merged.mam.upstream import merged_dir_upstream

        if _is_merged_dir(ckpt) and not model_config:
            return merged_dir_upstream(ckpt)
        recipe = entry_recipe(ckpt, model_config, default_recipe)
        if recipe.learnable:
            raise ValueError(f"{name} merges with a fixed λ but the recipe has `learnable: true`; use an lmam_* entry")
        for role in recipe.sources:  # fail early, with MAM's own how-to-fix message, before hashing sources
            resolve_role(recipe, role)
        return merged_dir_upstream(build_cached(recipe, refresh))

    entry.__doc__ = f"{name}: {what} (-g/-k recipe YAML, -k merged dir or target checkpoint)."
    hub_entry(name)(entry)


def _lmam(name: str, default_recipe: str, what: str) -> None:
    def entry(ckpt: Optional[str] = None, model_config: Optional[str] = None, refresh: bool = False, **kwargs) -> nn.Module:
        from upstream_merged.mam.upstream import learnable_upstream

        return learnable_upstream(entry_recipe(ckpt, model_config, default_recipe), entry=name)

    entry.__doc__ = f"{name}: {what}; train λ with run_downstream.py -f (-g/-k recipe YAML, -k target checkpoint)."
    hub_entry(name)(entry)


for _name, (_recipe, _what) in MAM_ENTRIES.items():
    _mam(_name, _recipe, _what)
for _name, (_recipe, _what) in LMAM_ENTRIES.items():
    _lmam(_name, _recipe, _what)
