"""Build a MAM recipe: load target and source, plan, merge, and write the merged target dir (or plan text)."""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from upstream_merged.mam.core import MergePlan, check_dims, merge_states, relative_change, resolve_plan, tensor_pairs
from upstream_merged.mam.layouts import TARGET_ARCHS
from upstream_merged.mam.loading import AttentionModel, load_attention_model
from upstream_merged.mam.recipe import MAMRecipe
from upstream_merged.recipe import recipe_yaml
from upstream_merged.sources import SourceError, resolve_source

logger = logging.getLogger(__name__)

REPORT = "mam_report.json"
RECIPE_COPY = "recipe.yaml"
BEATS_FILE = "model.pt"
HF_COPIED = ("config.json", "preprocessor_config.json")
PLACEHOLDER = "<"  # packaged recipes mark a source the user must supply (BEATs has no HF id) with <...>


def resolve_role(recipe: MAMRecipe, role: str) -> Path:
    """Local path of the recipe's ``role`` source; a placeholder gets an error saying how to supply it."""
    source = recipe.sources[role]
    if source.startswith(PLACEHOLDER):
        raise SourceError(
            f"the recipe's {role} is a placeholder ({source}): BEATs checkpoints have no Hugging Face id. Download "
            f"an official BEATs .pt (e.g. BEATs_iter3_plus_AS2M.pt from the microsoft/unilm BEATs release) and pass "
            f"it with `-k /path/to/BEATs.pt`, or copy the recipe, set sources.{role} to the file and pass it with `-g`"
        )
    return resolve_source(source, what=f"MAM {role}", flag="-k" if role == "target" else f"sources.{role}:")


@dataclass
class LoadedPair:
    """Target and source models plus the validated merge plan between them."""

    target: AttentionModel
    source: AttentionModel
    plan: MergePlan


def load_pair(recipe: MAMRecipe) -> LoadedPair:
    """Load both models strictly, check their sizes and resolve the recipe's λ/layers into a plan."""
    target = load_attention_model(resolve_role(recipe, "target"), allow_pickle=recipe.allow_pickle)
    if target.arch not in TARGET_ARCHS:
        raise ValueError(f"MAM target {target.path} is a {target.arch} model; targets must be one of {TARGET_ARCHS}")
    source = load_attention_model(resolve_role(recipe, "source"))
    layer_map = recipe.layer_map
    check_dims(target.dims, source.dims, target.layout, source.layout, layer_map)
    plan = resolve_plan(target.dims.layers, source.dims.layers, recipe.lambda_spec, recipe.layers, layer_map,
                        recipe.include_out_proj)
    return LoadedPair(target, source, plan)


def _write_target(target: AttentionModel, state: dict, out_dir: Path) -> None:
    if target.task_model is not None:  # HubertForCTC dir / fine-tuned BEATs .pt, head unchanged
        from upstream_merged.mam.task_models import write_task_target

        write_task_target(target.task_model, target.path, state, out_dir)
    elif target.arch == "hubert":
        from safetensors.torch import save_file

        for name in HF_COPIED:
            if (target.path / name).is_file():
                shutil.copyfile(target.path / name, out_dir / name)
        save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(out_dir / "model.safetensors"))
    else:
        # BEATs' state_dict() keys are the official checkpoint keys (models/beats.py)
        torch.save({"cfg": dict(target.config), "model": {k: v.detach().clone() for k, v in state.items()}},
                   out_dir / BEATS_FILE)


def build_merged_dir(recipe: MAMRecipe, out_dir: Path, recipe_text: Optional[str] = None, progress: bool = True) -> Path:
    """Write the merged target (HF dir for HuBERT, official .pt for BEATs), a recipe copy and a report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pair = load_pair(recipe)
    before = pair.target.model.state_dict()
    merged = merge_states(before, pair.source.model.state_dict(), pair.plan, pair.target.layout, pair.source.layout)
    from upstream_merged.models.checkpoint import check_finite

    check_finite(merged, f"MAM merge into {out_dir}", "merged")
    _write_target(pair.target, merged, out_dir)
    (out_dir / RECIPE_COPY).write_text(recipe_yaml(recipe.effective()))  # the effective recipe, never raw text
    report = _report(recipe, pair, before, merged)
    (out_dir / REPORT).write_text(json.dumps(report, indent=2))
    logger.info("MAM: merged %d tensors of %s into %s", report["tensors_merged"], pair.source.path, out_dir)
    return out_dir


def _report(recipe: MAMRecipe, pair: LoadedPair, before: dict, merged: dict) -> dict:
    from upstream_merged.mam.task_models import head_kind

    pairs = tensor_pairs(pair.plan, pair.target.layout, pair.source.layout)
    per_layer = []
    for item in pair.plan.layers:
        names = [n for role in pair.plan.roles for n in pair.target.layout.tensor_names(role, item.target)]
        per_layer.append({"target_layer": item.target, "source_layer": item.source, "lambda": item.lam,
                          "relative_change": relative_change(before, merged, names)})
    return {
        "method": "mam",
        "target": {"path": str(pair.target.path), "arch": pair.target.arch, **vars(pair.target.dims),
                   "head": head_kind(pair.target.task_model)},
        "source": {"path": str(pair.source.path), "arch": pair.source.arch, **vars(pair.source.dims),
                   "load_notes": pair.source.notes},
        "roles": list(pair.plan.roles),
        "learnable": recipe.learnable,
        "note": "learnable recipe: this dir holds the merge at lambda_init; lmam_* entries learn λ under -f"
        if recipe.learnable else "",
        "tensors_merged": len(pairs),
        "layers": per_layer,
        "seed": recipe.seed,
    }


def read_report(directory: Path) -> Optional[dict]:
    """The mam_report.json of a merged dir, or None when ``directory`` is not one."""
    path = Path(directory) / REPORT
    return json.loads(path.read_text()) if path.is_file() else None


def plan_text(recipe: MAMRecipe) -> str:
    """The --dry-run description: sources, roles and λ per layer (sizes when the sources are local)."""
    lines = [f"MAM merge ({'learnable λ, L-MAM' if recipe.learnable else 'fixed λ'})",
             f"  target: {recipe.sources['target']}", f"  source: {recipe.sources['source']}"]
    roles = "q, k, v" + (", out" if recipe.include_out_proj else "")
    lines.append(f"  projections (weights and biases): {roles}")
    try:
        pair = load_pair(recipe)
    except (SourceError, ValueError) as err:
        lines.append(f"  (sources not inspected: {err})")
        lines.append(f"  lambda: {recipe.lambda_spec}, layers: {recipe.layers or 'all'}, layer_map: {recipe.layer_map}")
        return "\n".join(lines)
    t, s = pair.target, pair.source
    lines.append(f"  target arch {t.arch}: width {t.dims.width}, heads {t.dims.heads}, layers {t.dims.layers}")
    lines.append(f"  source arch {s.arch}: width {s.dims.width}, heads {s.dims.heads}, layers {s.dims.layers}")
    for item in pair.plan.layers:
        q_target = t.layout.module("q", item.target).rsplit(".", 1)[0]
        q_source = s.layout.module("q", item.source).rsplit(".", 1)[0]
        lines.append(f"  layer {item.target}: λ={item.lam:g}  {q_target}.* <- {q_source}.*")
    untouched = sorted(set(range(t.dims.layers)) - {m.target for m in pair.plan.layers})
    if untouched:
        lines.append(f"  unchanged target layers: {untouched}")
    lines.append(f"  writes: {'HF HuBERT dir (model.safetensors)' if t.arch == 'hubert' else 'official BEATs ' + BEATS_FILE}"
                 f", {RECIPE_COPY}, {REPORT}")
    return "\n".join(lines)
