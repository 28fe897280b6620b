"""Tables (markdown + CSV) and the λ-curve PNG of a zero-shot MAM sweep; λ = 0 (unmerged) is the reference."""
from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

CSV_FILE = "zero_shot.csv"
MD_FILE = "zero_shot.md"
PNG_FILE = "zero_shot_lambda_curve.png"
# primary metric per dataset kind (lower is better for both) and the extra metric shown
PRIMARY = {"ljspeech": "wer", "vctk": "wer", "esc50": "error"}
SECONDARY = {"ljspeech": "cer", "vctk": "cer", "esc50": "accuracy"}
COLUMNS = ("dataset", "kind", "source", "layers", "layer_ids", "components", "lambda", "metric", "value",
           "reference", "relative_change", "secondary_metric", "secondary_value", "n")


def relative_change(value: float, reference: float) -> Optional[float]:
    """(value - reference) / reference; None when the reference is 0."""
    return None if reference == 0 else (value - reference) / reference


def table_rows(rows: List[dict], kinds: Dict[str, str]) -> List[dict]:
    """Flat rows (one per cell) with the dataset's reference value and the relative change against it."""
    references = {r["cell"]["dataset"]: r for r in rows if r["cell"]["source"] == "(unmerged)"}
    out = []
    for row in rows:
        cell, metrics = row["cell"], row["metrics"]
        kind = kinds.get(cell["dataset"], "esc50" if "error" in metrics else "ljspeech")
        metric, secondary = PRIMARY[kind], SECONDARY[kind]
        reference = references.get(cell["dataset"])
        ref_value = reference["metrics"][metric] if reference else None
        out.append({
            "dataset": cell["dataset"], "kind": kind, "source": cell["source"], "layers": cell["layers"],
            "layer_ids": " ".join(str(i) for i in row.get("layer_ids", [])), "components": cell["components"],
            "lambda": cell["lam"], "metric": metric, "value": metrics[metric], "reference": ref_value,
            "relative_change": None if ref_value is None else relative_change(metrics[metric], ref_value),
            "secondary_metric": secondary, "secondary_value": metrics[secondary],
            "n": metrics.get("utterances", metrics.get("clips")),
        })
    return out


def write_csv(flat: List[dict], path: Path) -> Path:
    """One line per cell, the reference rows first."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in COLUMNS})
    path.write_text(text.getvalue())
    return path


def _percent(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _signed(value: Optional[float]) -> str:
    return "" if value is None else f" ({100 * value:+.2f}%)"


def markdown(flat: List[dict]) -> str:
    """Per dataset: rows (source, layers, components) x columns λ, 'value % (relative change)'; λ=0 = reference."""
    lines = ["# Zero-shot MAM", "",
             "Merged without training; λ = 0 is the unmerged model (reference). Cells: metric in % and, in "
             "parentheses, its relative change against the reference (negative = fewer errors).", ""]
    for dataset in dict.fromkeys(r["dataset"] for r in flat):
        rows = [r for r in flat if r["dataset"] == dataset]
        reference = next((r for r in rows if r["source"] == "(unmerged)"), None)
        metric = rows[0]["metric"]
        lambdas = sorted({r["lambda"] for r in rows if r["source"] != "(unmerged)"})
        lines.append(f"## {dataset} ({rows[0]['kind']}, {rows[0]['n']} items): {metric.upper()} %")
        lines.append("")
        ref_text = _percent(reference["value"]) if reference else "n/a"
        lines.append("| source | layers | components | λ=0 (reference) | " + " | ".join(f"λ={lam:g}" for lam in lambdas) + " |")
        lines.append("|---|---|---|---|" + "---|" * len(lambdas))
        if reference:
            lines.append(f"| (unmerged) | - | - | {ref_text} |" + " |" * len(lambdas))
        groups: Dict[Tuple[str, str, str], Dict[float, dict]] = {}
        for row in rows:
            if row["source"] != "(unmerged)":
                groups.setdefault((row["source"], row["layers"], row["components"]), {})[row["lambda"]] = row
        for (source, layers, components), by_lambda in groups.items():
            values = [(_percent(by_lambda[lam]["value"]) + _signed(by_lambda[lam]["relative_change"]))
                      if lam in by_lambda else "" for lam in lambdas]
            lines.append(f"| {source} | {layers} | {components} | {ref_text} | " + " | ".join(values) + " |")
        merged = [r for r in rows if r["source"] != "(unmerged)" and r["relative_change"] is not None]
        if merged:
            best = min(merged, key=lambda r: (r["relative_change"], r["lambda"]))
            lines += ["", f"Best: {best['source']}, layers {best['layers']}, {best['components']}, λ={best['lambda']:g}: "
                          f"{_percent(best['value'])} % ({100 * best['relative_change']:+.2f}% relative)"]
        lines.append("")
    return "\n".join(lines)


def plot_lambda_curves(flat: List[dict], path: Path) -> Optional[Path]:
    """One panel per dataset: primary metric against λ (λ=0 = reference), a line per (source, layers, components)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no λ-curve PNG (pip install matplotlib)")
        return None
    datasets = list(dict.fromkeys(r["dataset"] for r in flat))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        rows = [r for r in flat if r["dataset"] == dataset]
        reference = next((r for r in rows if r["source"] == "(unmerged)"), None)
        groups: Dict[Tuple[str, str, str], List[dict]] = {}
        for row in rows:
            if row["source"] != "(unmerged)":
                groups.setdefault((row["source"], row["layers"], row["components"]), []).append(row)
        for (source, layers, components), group in groups.items():
            group = sorted(group, key=lambda r: r["lambda"])
            xs = ([0.0] if reference else []) + [r["lambda"] for r in group]
            ys = ([reference["value"]] if reference else []) + [r["value"] for r in group]
            ax.plot(xs, [100 * y for y in ys], marker="o", markersize=3, linewidth=1,
                    label=f"{Path(source).name} {layers} {components}")
        if reference:
            ax.axhline(100 * reference["value"], color="black", linestyle="--", linewidth=0.8, label="unmerged")
        ax.set_title(f"{dataset}")
        ax.set_xlabel("λ")
        ax.set_ylabel(f"{rows[0]['metric'].upper()} (%)")
        ax.legend(fontsize=5, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_reports(rows: List[dict], kinds: Dict[str, str], out_dir: Path) -> List[Path]:
    """zero_shot.csv, zero_shot.md and zero_shot_lambda_curve.png in ``out_dir``."""
    out_dir = Path(out_dir)
    flat = table_rows(rows, kinds)
    files = [write_csv(flat, out_dir / CSV_FILE)]
    (out_dir / MD_FILE).write_text(markdown(flat))
    files.append(out_dir / MD_FILE)
    png = plot_lambda_curves(flat, out_dir / PNG_FILE)
    if png:
        files.append(png)
    return files
