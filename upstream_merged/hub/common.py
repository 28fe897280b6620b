"""What every recipe-built hub entry shares: reading -k/-g, hashing sources, the on-disk merge cache."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Optional

from upstream_merged.core.atomic import write_text_atomically
from upstream_merged.cache import build_atomically, content_key
from upstream_merged.hub.group_guard import refuse_build_in_process_group
from upstream_merged.recipe import RecipeBase, RecipeError, load_recipe, methods, recipe_dict
from upstream_merged.sources import cache_root, resolve_source

logger = logging.getLogger(__name__)

PACKAGE_RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def packaged_recipe(name: str) -> Path:
    """Path of a recipe shipped inside the package (upstream_merged/recipes/<name>.yaml)."""
    path = PACKAGE_RECIPES / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no packaged recipe {name!r} at {path}")
    return path


def is_recipe_file(path: Optional[str]) -> bool:
    """True when ``path`` names a YAML file (a recipe) rather than a model directory."""
    return bool(path) and str(path).endswith((".yaml", ".yml"))


class EntryArgumentError(ValueError):
    """Hub entry arguments (-k, -g) that conflict or do not fit the entry; the message names them and the fix."""


def refuse_ckpt_with_model_config(entry: str, ckpt: Optional[str], model_config: Optional[str],
                                  ckpt_what: str = "a finished build directory") -> None:
    """Refuse -k and -g together when both name what to load (one would be silently dropped)."""
    if ckpt and model_config:
        kind = "recipe YAML" if is_recipe_file(ckpt) else ckpt_what
        raise EntryArgumentError(
            f"{entry}: got both -k {ckpt} ({kind}) and -g {model_config} (recipe); they name two different things to "
            "load and one would be ignored. Give either -k (a finished build, loaded as is; or a recipe YAML) or "
            "-g RECIPE.yaml (built on first use), not both."
        )


def refuse_unknown_kwargs(entry: str, kwargs: dict) -> None:
    """Refuse keyword arguments an entry does not take (s3prl's ``extra_conf``), which would be silently ignored."""
    if kwargs:
        raise EntryArgumentError(f"{entry} got arguments it does not take: {sorted(kwargs)}; its arguments are s3prl's "
                                 "ckpt (-k), model_config (-g) and refresh (-r)")


def refuse_model_config(entry: str, model_config: Optional[str], why: str) -> None:
    """Refuse -g on an entry that has no use for it (it would be silently ignored)."""
    if model_config:
        raise EntryArgumentError(f"{entry} takes no -g (got -g {model_config}): {why}")


def choose_recipe(ckpt: Optional[str], model_config: Optional[str], default_recipe: Optional[str],
                  method: str, entry: str = "this entry") -> RecipeBase:
    """The recipe for an entry: -g (model_config) or a YAML passed as -k, else the packaged default.

    The recipe must be of ``method``; an entry without a packaged default needs one of -g / -k YAML.
    """
    if model_config:
        source = str(model_config)
    elif is_recipe_file(ckpt):
        source = str(ckpt)
    elif default_recipe is not None:
        source = str(packaged_recipe(default_recipe))
    else:
        raise RecipeError(f"{entry} needs a {method} recipe: pass -g RECIPE.yaml")
    recipe = load_recipe(source)
    if recipe.method != method:
        raise RecipeError(f"{entry} needs a `method: {method}` recipe, but {source} has method {recipe.method!r}")
    return recipe


def _file_digest(path: Path) -> str:
    """sha256 of a file, remembered on disk per (path, size, mtime) so a cached entry loads without re-hashing."""
    stat = path.stat()
    memo_key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    memo = cache_root() / "digests" / memo_key
    if memo.is_file():
        return memo.read_text().strip()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    write_text_atomically(memo, digest.hexdigest())
    return digest.hexdigest()


def source_fingerprint(role: str, source: str) -> dict:
    """Content hash of a source's config and weight files (so a changed checkpoint changes the cache key)."""
    path = resolve_source(source, what=f"recipe source {role}", flag=f"sources.{role}:")
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return {p.name: _file_digest(p) for p in files}


def merged_cache_dir(recipe: RecipeBase) -> Path:
    """Where the built result of ``recipe`` is cached: keyed by the recipe and its sources' content."""
    material = {"recipe": recipe_dict(recipe), "sources": {k: source_fingerprint(k, v) for k, v in recipe.sources.items()}}
    return cache_root() / "merged" / f"{recipe.method}-{content_key(material)}"


def build_cached(recipe: RecipeBase, refresh: bool = False, entry: str = "this hub entry") -> Path:
    """Build ``recipe`` once into the cache (atomically) and return the finished directory.

    Inside a multi-rank torch.distributed group (s3prl's DDP training) a cache miss or ``refresh`` is a
    :class:`~upstream_merged.hub.group_guard.PrebuildRequired` error naming ``entry`` and the pre-build command.
    """
    target = merged_cache_dir(recipe)
    spec = methods()[recipe.method]
    if not refresh and (target / ".complete").is_file():
        return target
    refuse_build_in_process_group(entry, recipe, target, refresh)
    logger.info("building %s into %s (first use)", recipe.method, target)
    return build_atomically(target, lambda tmp: spec.build(recipe, tmp, recipe_text=None, progress=True), refresh=refresh)
