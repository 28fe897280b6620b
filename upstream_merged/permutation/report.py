"""What a merge leaves beside the weights: merge_report.json, a model card README.md, correlation heatmaps."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from upstream_merged.permutation.presets import (CUSTOM, PAPER_REFERENCE, PAPER_SCORE_NOTE, PAPER_URL, PRESETS, entry_for,
                                                 match_preset)
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


TIMING_KEYS = ("lap_seconds",)  # per-group timings stay out of the report so a rebuild is byte-identical
COMPONENT_WORDS = {
    "cnn": "the CNN feature encoder's channels",
    "ffn": "the feed-forward (FFN) units of every layer",
    "attn": "the attention heads (and the q/k and v/out channels inside each head)",
    "residual": "the residual stream (in blocks that follow the positional convolution's groups)",
    "qkv_independent": "the q, k and v projections, each permuted on its own (the paper's 'all' ablation)",
}


def setting_data(components: Sequence[str], alpha: float) -> dict:
    """What the merge report says about the setting: its preset and the paper's reference, or ``custom``."""
    preset = match_preset(components, alpha)
    data = {"preset": preset.name if preset else CUSTOM, "components": list(components), "alpha": alpha,
            "symmetry": "qkv_independent" not in components, "hub_entry": entry_for(components, alpha)}
    if preset is not None and preset.paper_id is not None:
        data["paper_table_i_id"] = preset.paper_id
        data["paper_reference_score"] = preset.paper_average
        data["paper_reference_note"] = PAPER_SCORE_NOTE
    return data


def report_data(recipe, components: Sequence[str], alpha: float, alignment, drift: dict,
                feature_encoder: Optional[dict] = None) -> dict:
    """The merge report as plain data (deterministic: no timings, so a rebuild writes the same bytes).

    ``feature_encoder`` (see ``merge.feature_encoder_data``) is recorded when a's CNN was kept unmerged.
    """
    import transformers

    rows = [{k: v for k, v in m.as_dict().items() if k not in TIMING_KEYS} for m in alignment.matches]
    extra = {"feature_encoder": feature_encoder} if feature_encoder and feature_encoder.get("policy") != "merged" else {}
    return {
        "method": "permutation",
        **setting_data(components, alpha),
        "seed": recipe.seed,
        "sources": dict(recipe.sources),
        "convention": "permutations.safetensors: new[i] = old[perm[i]] along every axis of model b mapped to the group",
        "calibration": alignment.calibration,
        "components_summary": _component_summary(rows),
        "groups": {row["name"]: row for row in rows},
        "function_drift": drift,
        **extra,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "recipe": recipe_dict(recipe),
    }


def write_report(out_dir: Path, data: dict) -> Path:
    """Write merge_report.json."""
    path = Path(out_dir) / "merge_report.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def read_setting(directory: Path) -> Optional[dict]:
    """The setting recorded in a merge directory's merge_report.json (None when there is no report).

    The preset is re-derived from the recorded components and alpha, so reports written before
    ``custom`` existed are judged by what was built, not by the name they carry.
    """
    path = Path(directory) / "merge_report.json"
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text())
        components, alpha = report["components"], float(report["alpha"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a permutation merge report ({type(err).__name__}: {err})") from None
    return setting_data(components, alpha)


def _calibration_text(recipe: dict, calibration: dict) -> str:
    spec = recipe.get("calibration") or {}
    kinds = []
    synthetic = spec.get("synthetic")
    if synthetic:
        kinds.append(f"synthetic audio generated from the seed ({synthetic['clips']} clips of {synthetic['seconds']:g} s, "
                     f"{synthetic['speech_share']:.0%} speech-like, the rest music-like)")
    if spec.get("dirs"):
        kinds.append("audio files from " + ", ".join(f"`{d}`" for d in spec["dirs"]))
    if spec.get("manifest"):
        kinds.append(f"the files listed in `{spec['manifest']}`")
    text = "Calibration audio: " + ("; ".join(kinds) or "none") + "."
    if calibration:
        text += (f" {calibration['clips_used']} clips were used, {calibration['seconds']:.1f} s of audio in total "
                 f"({calibration['clips_skipped_silent']} silent and {calibration['clips_skipped_too_short']} too-short "
                 "clips skipped).")
    return text


def _hf_ids(sources: Dict[str, str]) -> List[str]:
    """Sources that look like Hugging Face ids (owner/name, not a local path or tiny: model)."""
    return [s for s in sources.values() if s.count("/") == 1 and not s.startswith((".", "/", "~", "tiny:"))]


def write_model_card(out_dir: Path, data: dict) -> Path:
    """Write a Hugging Face model card README.md describing what was built and how to use it."""
    alpha, components, sources = data["alpha"], data["components"], data["sources"]
    preset = PRESETS.get(data["preset"])
    front = ["---", "library_name: transformers", "tags: [hubert, audio, model-merging, permutation-alignment, s3prl]"]
    bases = _hf_ids(sources)
    if bases:
        front.append("base_model: [" + ", ".join(bases) + "]")
    front.append("---")
    title = f"preset `{preset.name}`" if preset else "custom setting"
    lines = front + [
        f"# HuBERT-architecture encoder merged from two pre-trained models ({title})",
        "",
        "A self-supervised speech/music encoder with the HuBERT architecture whose weights are a merge of two "
        "pre-trained models, made with the `upstream_merged` plugin for s3prl. No training was involved: the units of "
        "model b were re-ordered to line up with those of model a, then the two sets of weights were averaged.",
        "",
        "## Sources",
        "",
        "| role | model | weight in the merge |",
        "|---|---|---|",
        f"| a (reference, kept in place) | `{sources['a']}` | {alpha:g} |",
        f"| b (re-ordered onto a) | `{sources['b']}` | {1 - alpha:g} |",
        "",
        "## Method",
        "",
        "Correlation-permutation merging (reference code: " + PAPER_URL + "). Both models run on the same "
        "calibration audio; for each group of interchangeable units, b's units are matched to a's by the correlation "
        "of their activations (a linear assignment), b's weights are permuted accordingly, and the merged weights are "
        f"`{alpha:g} * a + {1 - alpha:g} * permuted(b)`.",
        "",
    ]
    if components:
        lines.append("Units aligned before averaging:")
        lines += [f"- {COMPONENT_WORDS.get(c, c)}" for c in components]
    else:
        lines.append("Nothing is aligned in this setting: the weights are averaged as they are.")
    lines.append("")
    feature_encoder = data.get("feature_encoder") or {}
    if feature_encoder.get("policy") == "from_a":
        keys = ", ".join(f"`{key}` {v['a']!r} in a vs {v['b']!r} in b" for key, v in feature_encoder["differing_keys"].items())
        lines += ["**CNN feature encoder: taken from model a, unmerged.** The two CNNs have different layouts "
                  f"({keys}), so b's convolutions cannot be averaged into a's (they were trained with other norms "
                  "and biases). The merged model runs a's CNN (its norms, biases, input normalisation and sample "
                  "rate); b's feature projection is aligned to a's CNN channels (the last conv's channels, matched "
                  "by correlation) and, with the transformer, averaged as above.", ""]
    if data["symmetry"]:
        if components:
            lines.append("Every permutation used is a symmetry of the architecture: the re-ordered b computes exactly "
                         "what b computed.")
    else:
        lines.append("**Not function-preserving**: q, k and v are permuted independently, so the re-ordered b "
                     "computes a different function from b (this is an ablation).")
    drift = data.get("function_drift") or {}
    if drift:
        lines.append(f"Measured on {drift['clips']} calibration clip(s): the re-ordered b's hidden states differ from "
                     f"b's by {drift['relative_error']:.2e} (relative).")
    lines += ["", "## Setting", ""]
    if preset is not None and data.get("paper_table_i_id") is not None:
        lines.append(f"This build is preset `{preset.name}`: {preset.description}. It is the setting listed as ID "
                     f"{data['paper_table_i_id']} in Table I of the paper, which reports an average score of "
                     f"{data['paper_reference_score']} for it (HuBERT Base alone: {PAPER_REFERENCE['hubert']}, "
                     f"MERT-v0-public alone: {PAPER_REFERENCE['mert']}). That figure is {PAPER_SCORE_NOTE}.")
    elif preset is not None:
        lines.append(f"This build is preset `{preset.name}`: {preset.description}. The paper has no such setting, "
                     "so no reference score applies.")
    else:
        lines.append(f"This is a custom setting (aligned: {', '.join(components) or 'nothing'}; weight of a "
                     f"{alpha:g}) that equals none of the paper's Table I settings, so no paper score applies.")
    lines += ["", "## Calibration data", "", _calibration_text(data.get("recipe") or {}, data.get("calibration") or {}),
              f"Random seed of the build: {data['seed']} (clip order, frame subsampling and any synthetic audio)."]
    if data["components_summary"]:
        lines += ["", "| aligned units | groups | share of units moved | mean correlation before | after |",
                  "|---|---|---|---|---|"]
        for name, row in data["components_summary"].items():
            lines.append(f"| {name} | {row['groups']} | {row['moved_share']:.3f} | {row['corr_before']:.3f} | "
                         f"{row['corr_after']:.3f} |")
        lines += ["", "Per-group figures are in `merge_report.json`, the permutations in `permutations.safetensors`."]
    lines += [
        "",
        "## Use with s3prl",
        "",
        "Install `upstream_merged` (it adds its entries to s3prl's hub), then pass this directory with `-k`:",
        "",
        "```bash",
        f"python run_downstream.py -m train -u {data['hub_entry']} -k /path/to/this/directory -d <task> ...",
        "```",
        "",
        "Add `-f` to fine-tune the encoder. Outside s3prl it is a plain `transformers.HubertModel.from_pretrained(...)` "
        "directory taking 16 kHz mono audio.",
        "",
        "## Reproduce",
        "",
        "`python -m upstream_merged merge recipe.yaml OUT` rebuilds this directory file for file from the recipe "
        f"stored beside it (built with torch {data['versions']['torch']}, transformers {data['versions']['transformers']}).",
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
