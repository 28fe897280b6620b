"""The one recipe format shared by every method: strict YAML, validated by pydantic, hashed for caching.

A recipe names its ``method``; each method module declares its schema (a :class:`RecipeBase`
subclass with ``method: Literal[...]``) and a builder with :func:`register_method`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Type

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

METHOD_MODULES = (
    "upstream_merged.permutation.recipe",
    "upstream_merged.mam.recipe",
    "upstream_merged.fusion.recipe",
)


class RecipeError(ValueError):
    """A recipe file is missing, unreadable or invalid; the message names the key."""


class StrictModel(BaseModel):
    """Base for every recipe section: unknown keys are rejected and values are never coerced.

    pydantic's strict mode: ``"0.9"`` is not a number and ``"yes"`` / ``1`` are not booleans. The one
    conversion kept is int -> float (``alpha: 1`` means 1.0), which loses nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RecipeBase(StrictModel):
    """Keys every recipe has. ``sources`` maps a role (e.g. a/b, target/source) to an HF id, dir or tiny:."""

    method: str
    sources: Dict[str, str]
    seed: int = 0
    description: str = ""

    def effective(self) -> "RecipeBase":
        """This recipe with every default its build applies written out (what OUT/recipe.yaml records)."""
        return self


@dataclass(frozen=True)
class MethodSpec:
    """How one method validates and builds its recipes."""

    schema: Type[RecipeBase]
    build: Callable[..., Any]  # build(recipe, out_dir, recipe_text=..., progress=...) writes a finished dir whose recipe.yaml is the effective recipe
    plan: Callable[[Any], str]  # plan(recipe) -> human-readable description of what build would do


_METHODS: Dict[str, MethodSpec] = {}


def register_method(name: str, schema: Type[RecipeBase], build: Callable[..., Any], plan: Callable[[Any], str]) -> None:
    """Declare the schema, builder and dry-run planner of recipe method ``name``."""
    _METHODS[name] = MethodSpec(schema, build, plan)


def methods() -> Dict[str, MethodSpec]:
    """Every registered method, importing the method modules on first use."""
    for module in METHOD_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module and not module.startswith(str(err.name) + "."):
                raise
    return dict(_METHODS)


_UNION_TAGS = {"float", "int", "str", "bool"}  # pydantic names union members in an error's loc; not keys


def _key(loc) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p))]
    return ".".join(parts) or "<top>"


def _format_validation(err: ValidationError, source: str) -> str:
    problems: Dict[str, list] = {}
    for item in err.errors():
        messages, value = problems.setdefault(_key(item["loc"]), [[], None])
        if item["msg"] not in messages:
            messages.append(item["msg"])
        if item["type"].endswith("_type") and not isinstance(item.get("input"), (dict, list)):
            problems[_key(item["loc"])][1] = ("input", item.get("input"))
    lines = []
    for key, (messages, value) in problems.items():
        rest = [m[len("Input should be "):] if m.startswith("Input should be ") else m for m in messages[1:]]
        problem = f"{key}: " + " or ".join(messages[:1] + rest)
        if value is not None:
            problem += f", got {value[1]!r} ({type(value[1]).__name__})"
            if isinstance(value[1], str):
                problem += "; write the value without quotes"
        lines.append(problem)
    return f"invalid recipe {source}: " + "; ".join(lines)


def parse_recipe(data: Any, source: str = "<recipe>") -> RecipeBase:
    """Validate a recipe mapping against the schema of its ``method``."""
    if not isinstance(data, dict):
        raise RecipeError(f"invalid recipe {source}: expected a mapping at the top level")
    method = data.get("method")
    known = methods()
    if method not in known:
        raise RecipeError(f"invalid recipe {source}: method must be one of {sorted(known)}, got {method!r}")
    try:
        return known[method].schema.model_validate(data)
    except ValidationError as err:
        raise RecipeError(_format_validation(err, source)) from None


def load_recipe(path: str | Path) -> RecipeBase:
    """Read and validate a recipe YAML file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise RecipeError(f"recipe {path} is not valid YAML: {err}") from None
    return parse_recipe(data, str(path))


def recipe_dict(recipe: RecipeBase) -> dict:
    """The recipe as plain data with defaults filled (what the cache key hashes)."""
    return recipe.model_dump(mode="json")


def recipe_yaml(recipe: RecipeBase) -> str:
    """The recipe as YAML that :func:`load_recipe` reads back to an equal recipe (written as OUT/recipe.yaml)."""
    data = recipe.model_dump(mode="python", by_alias=True)  # python mode keeps int keys (layer_map) as ints
    header = "# Effective recipe of this build (defaults written out); rebuild with: python -m upstream_merged merge recipe.yaml OUT\n"
    return header + yaml.safe_dump(data, sort_keys=False)
