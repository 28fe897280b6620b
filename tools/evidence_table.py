#!/usr/bin/env python
"""Table I with evidence: every row probed to convergence on test sets with power, controls, and the paper's claims decided.

    python tools/evidence_table.py --evalsets /work/evalsets       # full: 4 tasks, all rows, 3 seeds -> results/table_i.*
    python tools/evidence_table.py --quick                          # demo: small sets drawn like the evaluation sets, core rows (<= 10 min)
    python tools/evidence_table.py --evalsets DIR --rows hubert_small mert_small linear cnn_ffn_attn --tasks ks pitch

Frozen rows (encoders, merges, the alpha sweep, random-init and hand-feature controls) are cached-feature
probes (upstream_merged.evaluation: hidden states of all layers extracted once, s3prl's Featurizer + the
task's stock head trained until dev accuracy plateaus, one probe per seed). Fine-tuned rows (``-f``: the
HConv fusion of both encoders and the same HConv over each encoder alone) are stock ``run_downstream.py``
runs with one step budget for all three. Each row x task result (per-clip predictions) is saved under
``--work-dir/results`` and reused on a rerun, so an interrupted run continues where it stopped.

Scores are chance-corrected, 1000 (acc - chance) / (reference - chance), the reference being the encoder
of the task's domain (upstream_merged.evaluation.claims). The claims table gives, for each claim of the
paper, the difference with its paired-bootstrap 95% interval (clips and seeds resampled) and a verdict.
Writes table_i.md (claims first, then the full table), table_i.json, table_i.png and predictions.json
(every row's per-clip correctness, enough to recompute everything) into --out.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from upstream_merged.core.atomic import write_atomically, write_text_atomically  # noqa: E402
from upstream_merged.evaluation.cells import (RUN_ENV, Job, Profile, Row, read_done, run_jobs,  # noqa: E402
                                              shipped_weights_digest)

logger = logging.getLogger("evidence_table")
SPEECH_REF, MUSIC_REF, CHANCE = "hubert_small", "mert_small", "chance"


# ----------------------------------------------------------------------------- rows
ROWS = [
    Row(CHANCE, "", "chance", "chance: the training set's majority class"),
    # without CMVN: the stock heads mean-pool a linear projection, and CMVN zeroes every clip's mean (upstream_configs/)
    Row("mfcc", "baseline_local", "hand", "MFCC 13 + Δ + ΔΔ, no CMVN (stock s3prl `baseline_local`)",
        model_config=str(REPO / "upstream_configs" / "mfcc_no_cmvn.yaml")),
    Row("fbank", "fbank_no_cmvn", "hand", "log-mel 80 + Δ + ΔΔ, no CMVN (stock s3prl `fbank_no_cmvn`)"),
    Row("random_init1", "small_random_init1", "random", "random init, seed 1 (HuBERT's start)"),
    Row("random_init2", "small_random_init2", "random", "random init, seed 2 (MERT's start)"),
    Row("hubert_small", "hubert_small", "encoder", "speech encoder (HuBERT-style)", 1),
    Row("mert_small", "mert_small", "encoder", "music encoder (MERT-style)", 2),
    Row("avg", "merged_hubert_mert_avg_small", "merge", "0.5/0.5, no alignment", 3, alpha=0.5, aligned=False),
    Row("linear", "merged_hubert_mert_linear_small", "merge", "0.9/0.1, no alignment", 4, alpha=0.9, aligned=False),
    Row("cnn_ffn_attn", "merged_hubert_mert_small", "merge", "CNN + FFN + attention aligned, 0.9/0.1", 5,
        alpha=0.9, aligned=True),
    Row("cnn", "merged_hubert_mert_cnn_small", "merge", "CNN aligned", 6),
    Row("cnn_ffn", "merged_hubert_mert_cnn_ffn_small", "merge", "CNN + FFN aligned", 7),
    Row("cnn_all", "merged_hubert_mert_cnn_all_small", "merge", "CNN + FFN + q,k,v independently", 8),
    Row("ffn_attn", "merged_hubert_mert_ffn_attn_small", "merge", "FFN + attention, no CNN", 9),
    Row("aligned_0.5", "merged_hubert_mert_custom", "sweep", "CNN + FFN + attention aligned, 0.5/0.5",
        alpha=0.5, aligned=True),
    Row("aligned_0.7", "merged_hubert_mert_custom", "sweep", "CNN + FFN + attention aligned, 0.7/0.3",
        alpha=0.7, aligned=True),
    Row("linear_0.7", "merged_hubert_mert_custom", "sweep", "0.7/0.3, no alignment", alpha=0.7, aligned=False),
    Row("fusion_hconv", "fusion_hubert_mert_small_hconv", "finetune", "fusion: HConv over both encoders (-f)",
        finetune=True),
    Row("hconv_hubert", "hconv_hubert_small", "finetune", "HConv over the speech encoder alone (-f)", finetune=True),
    Row("hconv_mert", "hconv_mert_small", "finetune", "HConv over the music encoder alone (-f)", finetune=True),
]
QUICK_ROWS = ("chance", "mfcc", "hubert_small", "mert_small", "avg", "linear", "cnn_ffn_attn")


def claims():
    """The paper's claims (and the alpha sweep's expectation) as Claim records on the rows above."""
    from upstream_merged.evaluation.claims import Claim

    return [
        Claim("id5_gt_id4", "ID 5 > ID 4 on average (alignment helps at 0.9/0.1)", "cnn_ffn_attn", "linear",
              "average", "greater", paper="957.65 vs 938.11 (+19.5)"),
        Claim("id5_eq_id1_speech", "ID 5 ≈ ID 1 on speech (within ±50 points)", "cnn_ffn_attn", "hubert_small",
              "speech", "equivalent", margin=50.0, paper="997.72 vs 1000 (−2.3)"),
        Claim("id5_gt_id1_music", "ID 5 > ID 1 on music (the merge gains music)", "cnn_ffn_attn", "hubert_small",
              "music", "greater", paper="917.58 vs 885.63 (+32.0)"),
        Claim("id3_collapses", "ID 3 collapses: > 100 points below ID 4 on average", "avg", "linear",
              "average", "below", margin=100.0, paper="476.55 vs 938.11 (−461.6)"),
        Claim("fusion_gt_speech", "fusion > speech encoder (same HConv, -f, same budget)", "fusion_hconv",
              "hconv_hubert", "average", "greater", paper="fusion rows above every single encoder"),
        Claim("fusion_gt_music", "fusion > music encoder (same HConv, -f, same budget)", "fusion_hconv",
              "hconv_mert", "average", "greater", paper="fusion rows above every single encoder"),
        Claim("aligned_gt_linear_0.5", "alignment matters at 0.5/0.5: aligned > linear (ours, issue 20)",
              "aligned_0.5", "avg", "average", "greater", paper="not in the paper"),
        Claim("aligned_gt_linear_0.7", "aligned > linear at 0.7/0.3 (ours)", "aligned_0.7", "linear_0.7",
              "average", "greater", paper="not in the paper"),
    ]


def select_rows(labels: Optional[Sequence[str]], quick: bool) -> List[Row]:
    """The rows to run: the given labels (always with chance and both references), the quick set, or all."""
    by_label = {r.label: r for r in ROWS}
    wanted = list(labels) if labels else list(QUICK_ROWS if quick else by_label)
    unknown = [label for label in wanted if label not in by_label]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; choose from {list(by_label)}")
    wanted = list(dict.fromkeys([CHANCE, SPEECH_REF, MUSIC_REF, *wanted]))
    return [r for r in ROWS if r.label in wanted]


def sweep_recipes(rows: Sequence[Row], directory: Path) -> List[Row]:
    """The rows with the alpha-sweep ones pointing at their written recipes (-k) under ``directory``."""
    from upstream_merged.permutation.sweep import alpha_sweep_recipes, sweep_name, write_sweep_recipes

    sweep = [r for r in rows if r.kind == "sweep"]
    if not sweep:
        return list(rows)
    recipes = alpha_sweep_recipes("small_hubert_mert", sorted({r.alpha for r in sweep}), ["cnn_ffn_attn", "linear"])
    write_sweep_recipes(directory, recipes, force=True)
    out = []
    for row in rows:
        if row.kind == "sweep":
            name = sweep_name("small_hubert_mert", "cnn_ffn_attn" if row.aligned else "linear", row.alpha)
            row = replace(row, ckpt=str(directory / f"{name}.yaml"))
        out.append(row)
    return out


# ----------------------------------------------------------------------------- tasks and budgets
PROFILES = {
    # -f rows are stock runs, compared like for like with each other: at 500 steps 22 of 36 were still improving and
    # all sat below the frozen probes of their encoders on pitch, so the full table gives them 4,000 (docs/evidence.md)
    "full": Profile("full", (0, 1, 2), {"max_steps": 30000, "eval_step": 200, "patience": 15, "min_steps": 3000},
                    4000, 250),
    "quick": Profile("quick", (0, 1), {"max_steps": 3000, "eval_step": 100, "patience": 5, "min_steps": 500}, 200, 50),
}


# ----------------------------------------------------------------------------- the table
def build_evidence(rows: Sequence[Row], tasks: Sequence, cells: Dict[Tuple[str, str], dict]):
    """claims.Evidence over every finished cell."""
    from upstream_merged.evaluation.claims import Evidence, TaskGroup

    results = {}
    for row in rows:
        for task in tasks:
            cell = cells.get((row.label, task.name))
            if cell:
                results.setdefault(row.label, {})[task.name] = [s["correct"] for s in cell["seeds"]]
    return Evidence(results, [TaskGroup(t.name, t.domain) for t in tasks], {"speech": SPEECH_REF, "music": MUSIC_REF},
                    chance=CHANCE)


def _num(value: Optional[float], digits: int = 0, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _interval(low: float, high: float, digits: int = 0) -> str:
    return "–" if math.isnan(low) or math.isnan(high) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def report(rows: Sequence[Row], tasks: Sequence, cells: Dict[Tuple[str, str], dict], profile: Profile, meta: dict,
           resamples: int) -> Tuple[str, dict]:
    """(table_i.md text, table_i.json data): claims, the full table with controls, the alpha sweep, timing."""
    from upstream_merged.evaluation.claims import evaluate_claims, score_intervals

    evidence = build_evidence(rows, tasks, cells)
    present = [r for r in rows if r.label in evidence.flags]
    verdicts = evaluate_claims(evidence, claims(), resamples=resamples)
    intervals = score_intervals(evidence, [r.label for r in present], resamples=resamples)
    groups = [g for g in ("speech", "music") if any(t.domain == g for t in tasks)]
    data = {"meta": meta, "tasks": [{"name": t.name, "domain": t.domain, "downstream": t.run.downstream,
                                     "test_clips": len(evidence.clips[t.name])} for t in tasks],
            "rows": {}, "claims": [v.as_dict() for v in verdicts]}
    for row in present:
        scores = evidence.scores(row.label)
        data["rows"][row.label] = {
            "entry": row.entry, "kind": row.kind, "title": row.title, "paper_id": row.paper_id,
            "accuracy": {t.name: evidence.seed_accuracies(row.label, t.name) for t in tasks},
            "scores": {k: (None if math.isnan(v) else round(v, 2)) for k, v in scores.items()},
            "intervals": {k: [None if math.isnan(x) else round(x, 2) for x in v] for k, v in intervals[row.label].items()}}
    lines = [f"# Table I with evidence ({meta['label']})", "",
             f"Generated by `{meta['command']}` on {meta['date']} ({meta['host']}); wall {meta['wall']}.", "",
             "## The paper's claims", "",
             f"Difference of chance-corrected scores (points on the 1000 scale, a − b) with its 95% paired bootstrap "
             f"interval ({resamples} resamples of test clips, shared by all rows, and of each row's probe seeds). "
             "Verdict: *supported* when the interval lies on the claimed side of the margin, *contradicted* when it "
             "lies entirely on the other side, *undecided* otherwise.", "",
             "| claim | a | b | scope | a − b [95% CI] | verdict | paper |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        c = v.claim
        diff = "–" if v.verdict == "not run" else f"{_num(v.difference, 1, sign=True)} {_interval(v.low, v.high, 1)}"
        lines.append(f"| {c.text} | `{c.a}` | `{c.b}` | {c.scope} | {diff} | **{v.verdict}** | {c.paper} |")
    task_sizes = ", ".join(f"{t.name} ({t.domain}, {len(evidence.clips[t.name])} test clips)" for t in tasks)
    lines += ["", "## Full table", "",
              f"Tasks: {task_sizes}. Accuracy: test accuracy, mean over seeds. Score: 1000 (acc − chance) / "
              f"(reference − chance), reference = `{SPEECH_REF}` on speech tasks and `{MUSIC_REF}` on music tasks; "
              "group scores are the means over their tasks, the average the mean of the groups; [95% bootstrap "
              "interval]. Frozen rows: cached-feature probes trained to convergence "
              f"({profile.probe}), seeds {list(profile.seeds)}. Fine-tuned rows (-f): stock runs of "
              f"{profile.finetune_steps} steps (dev every {profile.finetune_eval_step}), same seeds.", "",
              "| row | ID | what | " + " | ".join(f"{t.name} acc" for t in tasks) + " | "
              + " | ".join(groups) + " | average |", "|---" * (3 + len(tasks) + len(groups) + 1) + "|"]
    for row in present:
        scores, ivals = evidence.scores(row.label), intervals[row.label]
        accs = []
        for t in tasks:
            per_seed = evidence.seed_accuracies(row.label, t.name)
            accs.append("–" if not per_seed else f"{sum(per_seed) / len(per_seed):.3f}"
                        + (f" ({min(per_seed):.3f}–{max(per_seed):.3f})" if len(per_seed) > 1 else ""))
        cols = [f"{_num(scores[g])} {_interval(*ivals[g])}" for g in [*groups, "average"]]
        lines.append(f"| `{row.label}` | {row.paper_id or ''} | {row.title} | " + " | ".join(accs) + " | "
                     + " | ".join(cols) + " |")
    best_encoder = {t.name: max((evidence.accuracy(r.label, t.name) or 0.0) for r in present
                                if r.kind in ("encoder", "merge", "sweep")) for t in tasks}
    notes = []
    for t in tasks:
        hand = max(((evidence.accuracy(r.label, t.name) or 0.0), r.label) for r in present if r.kind == "hand") \
            if any(r.kind == "hand" for r in present) else None
        if hand and hand[0] >= best_encoder[t.name]:
            notes.append(f"- **{t.name}: the hand-feature row `{hand[1]}` ({hand[0]:.3f}) matches or beats every "
                         f"pretrained row (best {best_encoder[t.name]:.3f})**: this task does not separate learned "
                         "representations from hand features.")
        ref = evidence.accuracy(SPEECH_REF if t.domain == "speech" else MUSIC_REF, t.name)
        chance = evidence.accuracy(CHANCE, t.name)
        if ref is not None and chance is not None and ref - chance < 0.02:
            notes.append(f"- {t.name}: the reference is at chance ({ref:.3f} vs {chance:.3f}); its scores are undefined.")
    missing = [f"{r.label} on {t.name}" for r in rows for t in tasks if (r.label, t.name) not in cells]
    if missing:
        notes.append(f"- **Incomplete: {len(missing)} of {len(rows) * len(tasks)} cells have no result yet** (the same "
                     f"command adds them; claims on a row without all its tasks are *not run*): {', '.join(missing)}.")
    if notes:
        lines += ["", *notes]
    sweep = alpha_sweep_lines(evidence, present)
    if sweep:
        lines += ["", "## α sweep: aligned vs unaligned (α = weight of HuBERT)", "", *sweep]
    peaks = finetune_peak_lines(rows, tasks, cells)
    if peaks:
        lines += ["", "## Fine-tuned rows: where dev accuracy peaked", "", *peaks]
    lines += ["", "## Where the time goes", "", *timing_lines(rows, tasks, cells, meta.get("workers", 2)), "",
              "Per-clip predictions of every row: `predictions.json` beside this file.", "",
              "Reproduce:", "", "```bash", meta["command"], "```", ""]
    return "\n".join(lines), data


def alpha_sweep_lines(evidence, rows: Sequence[Row]) -> List[str]:
    """Average score of aligned vs linear merges at each alpha present (rows with alpha set)."""
    cells: Dict[float, Dict[bool, str]] = {}
    for row in rows:
        if row.alpha is not None and row.aligned is not None:
            cells.setdefault(row.alpha, {})[row.aligned] = row.label
    if not cells:
        return []
    out = ["| α | aligned (row) | linear (row) | aligned − linear (average) |", "|---|---|---|---|"]
    for alpha in sorted(cells):
        aligned, linear = cells[alpha].get(True), cells[alpha].get(False)
        a = evidence.scores(aligned)["average"] if aligned else float("nan")
        b = evidence.scores(linear)["average"] if linear else float("nan")
        out.append(f"| {alpha:g} | {_num(a)} (`{aligned or '–'}`) | {_num(b)} (`{linear or '–'}`) | "
                   f"{_num(a - b, 1, sign=True)} |")
    return out


PLATEAU_GAIN = 0.01  # a run whose dev-best rose less than this over its budget's second half has plateaued


def finetune_peak_lines(rows: Sequence[Row], tasks: Sequence, cells: Dict[Tuple[str, str], dict]) -> List[str]:
    """Per -f cell: each seed's dev-best step against its budget, and how much its dev-best rose in the second half."""
    from upstream_merged.evaluation.validate import dev_best

    out = ["| row | task | dev-best step per seed / budget | dev accuracy best / last, per seed | still rising "
           "| dev-best gain over the second half, per seed |", "|---|---|---|---|---|---|"]
    rising = climbing = total = 0
    for row in (r for r in rows if r.finetune):
        for task in tasks:
            seeds = [s for s in cells.get((row.label, task.name), {}).get("seeds", []) if s.get("dev_curve")]
            if not seeds:
                continue
            best = [dev_best(s["dev_curve"]) for s in seeds]
            last = [s["dev_curve"][-1] for s in seeds]
            gains = [second_half_gain(s["dev_curve"], s["steps"]) for s in seeds]
            up = sum(b[0] == l[0] for b, l in zip(best, last))
            rising, total = rising + up, total + len(seeds)
            climbing += sum(g >= PLATEAU_GAIN for g in gains)
            out.append(f"| `{row.label}` | {task.name} | {', '.join(str(b[0]) for b in best)} / {seeds[0]['steps']} | "
                       + "; ".join(f"{b[1]:.3f} / {l[1]:.3f}" for b, l in zip(best, last)) + f" | {up} of {len(seeds)} | "
                       + ", ".join(f"{g:+.3f}" for g in gains) + " |")
    if not total:
        return []
    return out + ["", f"{rising} of {total} fine-tuned runs had their best dev accuracy at their last evaluation: "
                      "a run still improving at its budget's end is not converged.",
                  f"{climbing} of {total} raised their dev-best by {PLATEAU_GAIN:.2f} or more over the second half of "
                  f"the budget (the others had plateaued by its middle)."]


def second_half_gain(curve: Sequence[Sequence[float]], steps: int) -> float:
    """Best dev accuracy over the whole curve minus the best up to half the budget (0 when nothing is that early)."""
    early = [value for step, value in curve if step <= steps / 2]
    return max(value for _, value in curve) - max(early) if early else 0.0


def timing_lines(rows: Sequence[Row], tasks: Sequence, cells: Dict[Tuple[str, str], dict], workers: int = 2) -> List[str]:
    """Seconds per row: feature extraction (includes a merge's build on first use), probes / stock runs."""
    out = ["| row | extraction + build s | probes / stock runs s | total s |", "|---|---|---|---|"]
    totals = [0.0, 0.0]
    for row in rows:
        found = [cells[(row.label, t.name)] for t in tasks if (row.label, t.name) in cells]
        if not found:
            continue
        extract = sum(c.get("extract_seconds", 0.0) for c in found)
        total = sum(c.get("seconds", 0.0) for c in found)
        totals[0] += extract
        totals[1] += total
        out.append(f"| `{row.label}` | {extract:.0f} | {total - extract:.0f} | {total:.0f} |")
    out.append(f"| all (CPU seconds, summed over workers) | {totals[0]:.0f} | {totals[1] - totals[0]:.0f} | "
               f"{totals[1]:.0f} |")
    per_task = {t.name: sum(cells[(r.label, t.name)].get("seconds", 0.0) for r in rows if (r.label, t.name) in cells)
                for t in tasks}
    finetune = sum(c.get("seconds", 0.0) for (label, _), c in cells.items() if label in {r.label for r in rows if r.finetune})
    out += ["", "Per task (seconds, all rows): " + ", ".join(f"{name} {sec:.0f}" for name, sec in per_task.items())
            + f"; fine-tuned (-f) cells {finetune:.0f} of {totals[1]:.0f}.",
            f"Summed cell seconds ÷ {workers} workers = {totals[1] / workers / 3600:.2f} h: the wall of one uninterrupted "
            "run with the cores to itself, stragglers aside (each cell runs one torch thread)."]
    return out


def predictions_json(rows: Sequence[Row], tasks: Sequence, cells: Dict[Tuple[str, str], dict]) -> dict:
    """Every row's per-clip correctness as '0'/'1' strings per seed, clips in sorted id order per task."""
    out = {}
    for task in tasks:
        chance = cells.get((CHANCE, task.name))
        if not chance:
            continue
        clips = sorted(chance["seeds"][0]["correct"])
        out[task.name] = {"clips": clips, "rows": {}}
        for row in rows:
            cell = cells.get((row.label, task.name))
            if cell:
                out[task.name]["rows"][row.label] = ["".join("1" if s["correct"][c] else "0" for c in clips)
                                                     for s in cell["seeds"]]
    return out


def chart(data: dict, path: Path) -> None:
    """Average chance-corrected score per row with its 95% interval (horizontal bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(label, r) for label, r in data["rows"].items() if r["scores"].get("average") is not None]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    colors = {"chance": "grey", "hand": "tab:olive", "random": "tab:gray", "encoder": "tab:blue", "merge": "tab:orange",
              "sweep": "tab:red", "finetune": "tab:green"}
    for k, (label, r) in enumerate(rows):
        score, (low, high) = r["scores"]["average"], r["intervals"]["average"]
        err = None if low is None else [[score - low], [high - score]]
        ax.barh(k, score, xerr=err, color=colors.get(r["kind"], "tab:purple"), capsize=2)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.invert_yaxis()
    ax.axvline(1000, color="k", lw=0.5, ls="--")
    ax.set_xlabel("average chance-corrected score (reference encoders = 1000, chance = 0), 95% CI")
    fig.tight_layout()
    write_atomically(path, lambda temp: fig.savefig(temp, dpi=110))
    plt.close(fig)


def write_outputs(out: Path, text: str, data: dict, predictions: dict) -> List[Path]:
    """table_i.md / .json / .png and predictions.json, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in (("table_i.md", text), ("table_i.json", json.dumps(data, indent=1) + "\n"),
                          ("predictions.json", json.dumps(predictions) + "\n")):
        paths.append(write_text_atomically(out / name, content))
    chart(data, out / "table_i.png")
    return paths + [out / "table_i.png"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evalsets", type=Path, default=None, help="root of the evaluation sets (docs/evalsets.md)")
    parser.add_argument("--quick", action="store_true", help="demo: small sets drawn like the evaluation sets (ks, NSynth pitch), core rows, 2 seeds")
    parser.add_argument("--rows", nargs="+", default=None, help="only these rows (chance and both encoders always)")
    parser.add_argument("--tasks", nargs="+", default=None, help="only these tasks (ks sid pitch instrument)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="probe seeds (full 0 1 2, quick 0 1)")
    parser.add_argument("--probe-max-steps", type=int, default=None, help="cap of the converging probe")
    parser.add_argument("--probe-min-steps", type=int, default=None)
    parser.add_argument("--finetune-steps", type=int, default=None, help="stock -f budget (full 4000, quick 200)")
    parser.add_argument("--finetune-eval-step", type=int, default=None, help="-f dev evaluation interval (full 250, quick 50)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "upstream_merged" / "evidence")
    parser.add_argument("--out", type=Path, default=None, help="default results/ (full) or WORK/quick")
    parser.add_argument("--label", default=None, help="what this configuration is, in the title")
    parser.add_argument("--collect-only", action="store_true", help="write the table from finished cells only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if not args.quick and args.evalsets is None:
        parser.error("give --evalsets DIR (the written evaluation sets, docs/evalsets.md) or --quick")
    os.environ.update(RUN_ENV)
    profile = PROFILES["quick" if args.quick else "full"]
    probe = dict(profile.probe)
    if args.probe_max_steps is not None:
        probe["max_steps"] = args.probe_max_steps
        probe["min_steps"] = min(probe["min_steps"], args.probe_max_steps)
    if args.probe_min_steps is not None:
        probe["min_steps"] = args.probe_min_steps
    probe["eval_step"] = max(1, min(probe["eval_step"], probe["max_steps"] // 2))
    profile = replace(profile, probe=probe, seeds=tuple(args.seeds or profile.seeds),
                      finetune_steps=args.finetune_steps or profile.finetune_steps,
                      finetune_eval_step=args.finetune_eval_step or profile.finetune_eval_step)
    if profile.finetune_steps < 2 * profile.finetune_eval_step:
        profile = replace(profile, finetune_eval_step=max(1, profile.finetune_steps // 2))
    work = args.work_dir.resolve()
    start = time.monotonic()
    from upstream_merged.evaluation.evalsets import demo_tasks, power_tasks

    if args.quick:
        tasks = demo_tasks(work / "data")
        if args.tasks:
            tasks = [t for t in tasks if t.name in args.tasks]
    else:
        tasks = power_tasks(args.evalsets, args.tasks)
    rows = sweep_recipes(select_rows(args.rows, args.quick), work / "recipes")
    jobs = [Job(row, task, profile, str(work)) for row in rows for task in tasks]
    reused = len(read_done(jobs))
    cells = read_done(jobs) if args.collect_only else run_jobs(jobs, args.jobs)
    wall = time.monotonic() - start
    out = (args.out or (REPO / "results" if not args.quick else work / "quick")).resolve()
    meta = {"label": args.label or f"{profile.name} profile", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "host": f"{os.cpu_count()} CPU cores, {args.jobs} workers", "workers": args.jobs,
            "wall": f"{wall / 60:.1f} min for this invocation, which reused {reused} of {len(jobs)} cells from earlier ones",
            "wall_seconds": round(wall, 1), "profile": asdict(profile), "weights": shipped_weights_digest(),
            "command": shlex.join(["python", "tools/evidence_table.py",  # the command that computes it: --collect-only only rereads
                                    *(a for a in (sys.argv[1:] if argv is None else argv) if a != "--collect-only")])}
    text, data = report(rows, tasks, cells, profile, meta, args.resamples)
    paths = write_outputs(out, text, data, predictions_json(rows, tasks, cells))
    print(text.split("## Full table")[0].rstrip())
    print(f"\nwrote {', '.join(str(p) for p in paths)} ({wall / 60:.1f} min)")
    missing = len(jobs) - len(cells)
    if missing:
        print(f"incomplete: {missing} of {len(jobs)} row x task cells have no result; rerun the same command")
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
