"""Alpha sweep recipes: aligned vs unaligned merges of one pair at several alphas (issue 20 item 5).

    python -m upstream_merged.permutation.sweep small_hubert_mert OUT_DIR [--alphas 0.5 0.7 0.9]
        [--presets cnn_ffn_attn linear] [--source-a DIR] [--source-b DIR] [--force]

``alpha`` is the weight of ``sources.a``, the reference kept in place: merged = alpha * a + (1 - alpha) * P(b),
P = the permutation aligning b onto a (identity for ``linear``). The packaged pairs put HuBERT in a and
MERT in b, so the paper's setting alpha 0.9 is 0.9 HuBERT + 0.1 MERT, and alpha 0.5 weighs both equally.
Each recipe writes its components, alpha and sources out explicitly (no preset), so every one builds
with ``-u merged_hubert_mert_custom -k RECIPE.yaml`` whatever setting it equals (linear at 0.5 is preset
avg, paper ID 3; cnn_ffn_attn at 0.9 is ID 5; linear at 0.9 is ID 4); everything else (calibration,
seed, report) is the base recipe's, so the rows differ only in alignment and alpha.
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from upstream_merged.permutation.presets import CUSTOM_ENTRY, PRESETS, match_preset
from upstream_merged.recipe import RecipeError, parse_recipe

logger = logging.getLogger(__name__)

SWEEP_ALPHAS = (0.5, 0.7, 0.9)
SWEEP_PRESETS = ("cnn_ffn_attn", "linear")  # aligned (the paper's best components) vs plain interpolation
SWEEP_ENTRY = CUSTOM_ENTRY  # builds any setting from -k RECIPE.yaml
BaseRecipe = Union[str, Path, Mapping]


def read_base(base_recipe: BaseRecipe) -> Tuple[str, dict]:
    """(name, data) of a base recipe given as a packaged name (small_hubert_mert), a YAML path or a mapping."""
    from upstream_merged.hub.common import PACKAGE_RECIPES

    if isinstance(base_recipe, Mapping):
        return "sweep", copy.deepcopy(dict(base_recipe))
    path = Path(base_recipe)
    if not path.is_file():
        packaged = PACKAGE_RECIPES / f"{base_recipe}.yaml"
        if not packaged.is_file():
            raise RecipeError(f"base recipe {base_recipe!r} is neither a YAML file nor a packaged recipe "
                              f"({PACKAGE_RECIPES}/<name>.yaml, e.g. small_hubert_mert)")
        path = packaged
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise RecipeError(f"base recipe {path} is not a mapping")
    return path.stem, data


def sweep_name(base_name: str, preset: str, alpha: float) -> str:
    """Name of one sweep recipe, e.g. small_hubert_mert_cnn_ffn_attn_alpha0.50."""
    return f"{base_name}_{preset}_alpha{alpha:.2f}"


def alpha_sweep_recipes(base_recipe: BaseRecipe, alphas: Sequence[float] = SWEEP_ALPHAS,
                        presets: Sequence[str] = SWEEP_PRESETS,
                        sources: Optional[Mapping[str, str]] = None) -> List[Tuple[str, dict]]:
    """(name, recipe dict) for every preset x alpha: the base's components replaced by the preset's, alpha explicit.

    ``sources`` ({"a": ..., "b": ...}, either or both) replaces the base's sources (e.g. HF dirs on disk).
    Every recipe is validated before any is returned; a bad alpha, preset or source raises RecipeError.
    """
    base_name, base = read_base(base_recipe)
    if base.get("method") != "permutation":
        raise RecipeError(f"base recipe {base_name}: method must be permutation, got {base.get('method')!r}")
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise RecipeError(f"unknown preset(s) {unknown} for the sweep; choose from {sorted(PRESETS)}")
    if not alphas or not presets:
        raise RecipeError("an alpha sweep needs at least one alpha and one preset")
    merged_sources = {**dict(base.get("sources") or {}), **dict(sources or {})}
    recipes: Dict[str, dict] = {}
    for preset_name in presets:
        preset = PRESETS[preset_name]
        for alpha in alphas:
            alpha = float(alpha)
            name = sweep_name(base_name, preset_name, alpha)
            if name in recipes:
                raise RecipeError(f"alpha {alpha:g} is listed twice (recipe {name})")
            data = {key: copy.deepcopy(value) for key, value in base.items() if key not in ("preset", "components", "alpha")}
            aligned = ", ".join(preset.components) if preset.components else "no alignment"
            data.update(
                sources=dict(merged_sources),
                description=(f"alpha sweep of {base_name}: {aligned}, {alpha:g} a + {1 - alpha:g} b "
                             f"(a = {merged_sources.get('a')}, b = {merged_sources.get('b')})"),
                components=list(preset.components),
                alpha=alpha,
            )
            parse_recipe(data, source=name)  # validated now: nothing is returned (or written) for a bad sweep
            recipes[name] = data
    return list(recipes.items())


def recipe_header(name: str, data: dict) -> str:
    """The YAML comment above a written sweep recipe: which preset it equals and how to run it."""
    matched = match_preset(data["components"], data["alpha"])
    equals = (f"equals preset {matched.name}" + (f" (paper Table I ID {matched.paper_id})" if matched.paper_id else "")
              if matched else "a custom setting (no preset)")
    return (f"# {name}: alpha = weight of sources.a ({data['alpha']:g} a + {1 - data['alpha']:g} b); {equals}.\n"
            f"# Run: run_downstream.py -u {SWEEP_ENTRY} -k {name}.yaml ...\n")


def write_sweep_recipes(out_dir: Path, recipes: Sequence[Tuple[str, dict]], force: bool = False) -> List[Path]:
    """Write each recipe as OUT_DIR/<name>.yaml; an existing file is refused (naming it) unless ``force``."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{name}.yaml" for name, _ in recipes]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise FileExistsError(f"sweep recipe(s) already exist: {existing}; pass force=True (--force) to overwrite")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, (name, data) in zip(paths, recipes):
        text = recipe_header(name, data) + yaml.safe_dump(data, sort_keys=False)
        if path.is_file() and path.read_text() == text:
            continue  # unchanged: keep its mtime, which keys the results of whatever read it (evaluation.cells)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    logger.info("wrote %d sweep recipes into %s", len(paths), out_dir)
    return paths


def main(argv: Optional[List[str]] = None) -> int:
    """Command line: write the sweep recipes of a base recipe into a directory."""
    parser = argparse.ArgumentParser(prog="python -m upstream_merged.permutation.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="packaged recipe name (small_hubert_mert) or a permutation recipe YAML")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--alphas", type=float, nargs="+", default=list(SWEEP_ALPHAS), help="weights of sources.a")
    parser.add_argument("--presets", nargs="+", default=list(SWEEP_PRESETS), help="whose components each row aligns")
    parser.add_argument("--source-a", default=None, help="replace sources.a (HF dir, id, small:/tiny: name)")
    parser.add_argument("--source-b", default=None, help="replace sources.b")
    parser.add_argument("--force", action="store_true", help="overwrite existing recipe files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sources = {role: value for role, value in (("a", args.source_a), ("b", args.source_b)) if value}
    try:
        paths = write_sweep_recipes(args.out_dir, alpha_sweep_recipes(args.base, args.alphas, args.presets, sources),
                                    force=args.force)
    except (RecipeError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
