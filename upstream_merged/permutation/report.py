"""What a merge leaves beside the weights: merge_report.json, a model card README.md, correlation heatmaps."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from upstream_merged.permutation.presets import PAPER_REFERENCE, PAPER_URL, PRESETS
from upstream_merged.recipe import recipe_dict

COMPONENT_ORDER = ("cnn", "ffn", "attn", "residual", "qkv_independent")


def _component_summary(rows: Sequence[dict]) -> Dict[str, dict]:
    summary = {}
    for component in COMPONENT_ORDER:
        mine = [r for r in rows if r["component"] == component]
        if not mine:
            continue
        summary[component] = {
            "groups": len(mine),
            "moved_share": round(sum(r["moved_share"] for r in mine) / len(mine), 4),
            "corr_before": round(sum(r["corr_before"] for r in mine) / len(mine), 4),
            "corr_after": round(sum(r["corr_after"] for r in mine) / len(mine), 4),
            "symmetry": all(r["symmetry"] for r in mine),
        }
    return summary


def report_data(recipe, preset: str, components: Sequence[str], alpha: float, alignment, drift: dict) -> dict:
    """The merge report as plain data."""
    import transformers

    rows = [m.as_dict() for m in alignment.matches]
    info = PRESETS[preset]
    return {
        "method": "permutation",
        "preset": preset,
        "paper_id": info.paper_id,
        "paper_average": info.paper_average,
        "components": list(components),
        "alpha": alpha,
        "symmetry": "qkv_independent" not in components,
        "seed": recipe.seed,
        "sources": dict(recipe.sources),
        "convention": "permutations.safetensors: new[i] = old[perm[i]] along every axis of model b mapped to the group",
        "calibration": alignment.calibration,
        "components_summary": _component_summary(rows),
        "groups": {row["name"]: row for row in rows},
        "function_drift": drift,
        "seconds": {k: round(v, 3) for k, v in alignment.seconds.items()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "recipe": recipe_dict(recipe),
    }


def write_report(out_dir: Path, data: dict) -> Path:
    """Write merge_report.json."""
    path = Path(out_dir) / "merge_report.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def write_model_card(out_dir: Path, data: dict) -> Path:
    """Write a model card README.md describing the merge."""
    preset = PRESETS[data["preset"]]
    lines = [
        "---",
        "library_name: transformers",
        "tags: [hubert, model-merging, permutation-alignment, s3prl]",
        "---",
        f"# Merged HuBERT-family encoder ({data['preset']})",
        "",
        f"Correlation-permutation merge (seed 000, reference code {PAPER_URL}) built by `upstream_merged`.",
        f"`merged = {data['alpha']:g} * a + {1 - data['alpha']:g} * permute(b)`, where `permute` aligns b's units to a's "
        "by maximising activation correlation on calibration audio.",
        "",
        f"- a (reference): `{data['sources']['a']}`",
        f"- b (aligned): `{data['sources']['b']}`",
        f"- preset: `{data['preset']}` - {preset.description}",
    ]
    if preset.paper_id:
        lines.append(f"- paper Table I setting {preset.paper_id}: average score {preset.paper_average} "
                     f"(HuBERT {PAPER_REFERENCE['hubert']}, MERT {PAPER_REFERENCE['mert']})")
    lines.append(f"- aligned components: {', '.join(data['components']) or 'none'}; seed {data['seed']}")
    if not data["symmetry"]:
        lines.append("- **Not function-preserving**: q, k and v are permuted independently (the paper's 'all' ablation);"
                     " the permuted b computes a different function.")
    drift = data.get("function_drift") or {}
    if drift:
        lines.append(f"- permuted b vs b on {drift['clips']} calibration clips: relative change of hidden states "
                     f"{drift['relative_error']:.2e}")
    if data["components_summary"]:
        lines += ["", "| component | groups | share moved | mean corr before | mean corr after |", "|---|---|---|---|---|"]
        for name, row in data["components_summary"].items():
            lines.append(f"| {name} | {row['groups']} | {row['moved_share']:.3f} | {row['corr_before']:.3f} | {row['corr_after']:.3f} |")
        lines += ["", "Per-group figures are in `merge_report.json`; the permutations in `permutations.safetensors`."]
    calibration = data.get("calibration") or {}
    if calibration:
        lines.append(f"Calibration: {calibration['clips_used']} clips, {calibration['seconds']:.1f} s of audio "
                     f"({calibration['clips_skipped_silent']} silent and {calibration['clips_skipped_too_short']} too short skipped).")
    lines += [
        "",
        "## Use",
        "```",
        "python run_downstream.py -m train -u merged_hubert_mert -k <this directory> -d <task> ...",
        "```",
        "or `transformers.HubertModel.from_pretrained(<this directory>)`. The recipe that built it is `recipe.yaml`.",
        "",
    ]
    path = Path(out_dir) / "README.md"
    path.write_text("\n".join(lines))
    return path


def default_heatmap_groups(names: Sequence[str]) -> List[str]:
    """A few representative groups: first and last CNN conv, first and last FFN, first attention, residual."""
    picks: List[str] = []
    for prefix in ("cnn.", "ffn.", "attn."):
        mine = [n for n in names if n.startswith(prefix)]
        if mine:
            picks += [mine[0]] if prefix == "attn." else [mine[0], mine[-1]]
    if "residual" in names:
        picks.append("residual")
    seen = []
    for name in picks:
        if name not in seen:
            seen.append(name)
    return seen[:6]


def write_heatmaps(out_dir: Path, alignment, groups: Optional[Sequence[str]], units: int) -> Optional[Path]:
    """PNG of correlation matrices (first ``units`` units of a vs b) before and after alignment, a few groups."""
    if not alignment.correlations or (groups is not None and len(groups) == 0):
        return None  # nothing aligned, or heatmaps switched off with report.heatmap_groups: []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if groups:
        unknown = sorted(set(groups) - set(alignment.correlations))
        if unknown:
            raise ValueError(f"report.heatmap_groups names groups that were not aligned: {unknown}")
    names = list(groups) if groups else default_heatmap_groups(list(alignment.correlations))
    figure, axes = plt.subplots(len(names), 2, figsize=(7, 3.2 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        corr = alignment.correlations[name]
        perm = alignment.perms[name]
        n = min(units, corr.shape[0])
        for col, (title, matrix) in enumerate((("before", corr[:n, :n]), ("after", corr[:n][:, perm[:n]]))):
            ax = axes[row][col]
            image = ax.imshow(matrix.float().numpy(), vmin=-1, vmax=1, cmap="RdBu_r", interpolation="nearest")
            ax.set_title(f"{name}: {title}", fontsize=9)
            ax.set_xlabel("b unit")
            ax.set_ylabel("a unit")
        figure.colorbar(image, ax=axes[row].tolist(), shrink=0.8)
    path = Path(out_dir) / "correlation_heatmaps.png"
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path
