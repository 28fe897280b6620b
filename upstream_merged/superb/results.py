"""Metrics parsed from the stock runs' evaluate output, tabulated: raw, normalised (reference = 1000), SUPERB score.

Normalised score (the correlation-permutation paper's Table I): per task the reference upstream scores 1000;
higher-is-better metrics score ``1000 * s / ref``, lower-is-better ones (WER, EER, DER) ``1000 * ref / s``
(a ratio, so halving the error doubles the score). A group's score is the mean over its tasks; the
``average`` is the mean of the group scores (Table I: mean of the speech and music scores).

SUPERB-leaderboard score: ``1000 * mean_t (s_t - baseline_t) / (sota_t - baseline_t)`` over the tasks that
give a ``reference``; the sign of ``sota - baseline`` carries the direction, so it holds for error rates too.
Both use the mean over seeds.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"
SPEC_COPY = "spec.yaml"


class MetricNotFound(ValueError):
    """The evaluate output has no line with the task's metric."""


def parse_metric(text: str, split: str, metric: str, regex: Optional[str] = None) -> float:
    """The last ``<split> <metric>: <value>`` printed (s3prl's experts print e.g. ``test acc: 0.93``), or ``regex``'s group."""
    pattern = regex or rf"(?<![\w/.-]){re.escape(split)} {re.escape(metric)}: {NUMBER}"
    found = re.findall(pattern, text, flags=re.MULTILINE)
    if not found:
        what = f"regex {regex!r}" if regex else f"'{split} {metric}: <value>'"
        raise MetricNotFound(f"no {what} line (set the task's metric / metric_regex to what the expert prints)")
    last = found[-1]
    return float(last[0] if isinstance(last, tuple) else last)


@dataclass(frozen=True)
class Cell:
    """One (entry, task): the metric over seeds."""

    values: Tuple[float, ...]

    @property
    def mean(self) -> float:
        """Mean over seeds."""
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 for one seed)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


@dataclass
class SweepTable:
    """Everything results.md / results.csv show, as plain data."""

    sweep_dir: Path
    entries: List[str]
    tasks: List[str]
    metric: Dict[str, str]
    higher_is_better: Dict[str, bool]
    group: Dict[str, str]
    runs: List[dict]
    cells: Dict[Tuple[str, str], Cell]
    reference_entry: Optional[str] = None
    normalised: Dict[Tuple[str, str], Optional[float]] = field(default_factory=dict)
    group_scores: Dict[str, Dict[str, Optional[float]]] = field(default_factory=dict)
    superb_tasks: List[str] = field(default_factory=list)
    superb: Dict[str, Optional[float]] = field(default_factory=dict)
    planned: set = field(default_factory=set)  # (entry, task) pairs the spec runs (an entry may restrict its tasks)

    def value(self, entry: str, task: str) -> Optional[float]:
        """Mean metric of (entry, task) over finished seeds, or None."""
        cell = self.cells.get((entry, task))
        return cell.mean if cell else None

    @property
    def failed(self) -> List[dict]:
        """Runs whose last attempt failed."""
        return [r for r in self.runs if r["status"] == "failed"]


def normalise(score: float, reference: float, higher_is_better: bool) -> Optional[float]:
    """Score relative to the reference = 1000 (ratio; inverted for lower-is-better metrics); None if undefined."""
    num, den = (score, reference) if higher_is_better else (reference, score)
    return None if den == 0 else 1000.0 * num / den


def superb_score(scores: Dict[str, float], references: Dict[str, Tuple[float, float]]) -> float:
    """1000 x mean over tasks of (score - baseline) / (sota - baseline)."""
    return 1000.0 * statistics.fmean((scores[t] - b) / (s - b) for t, (b, s) in references.items())


def _mean(values: List[Optional[float]]) -> Optional[float]:
    return None if not values or any(v is None for v in values) else statistics.fmean(values)


def load_sweep_spec(sweep_dir: Path):
    """The spec a sweep directory was run with, pointed at that directory (so a moved sweep still collects)."""
    from upstream_merged.superb.spec import load_spec

    spec = load_spec(Path(sweep_dir) / SPEC_COPY)
    return spec.model_copy(update={"output_dir": str(Path(sweep_dir).resolve())})


def collect(sweep_dir: Path) -> SweepTable:
    """Read the sweep's spec copy and every run's DONE / FAILED record into a table."""
    from upstream_merged.superb.commands import plan_sweep
    from upstream_merged.superb.runner import DONE, FAILED
    sweep_dir = Path(sweep_dir)
    spec = load_sweep_spec(sweep_dir)
    runs: List[dict] = []
    values: Dict[Tuple[str, str], List[float]] = {}
    for plan in plan_sweep(spec):
        row = {"entry": plan.entry, "task": plan.task, "seed": plan.seed, "status": "pending", "value": None,
               "log": "", "message": ""}
        if (plan.run_dir / DONE).is_file():
            done = json.loads((plan.run_dir / DONE).read_text())
            row.update(status="done", value=done["value"], log=done["log"])
            if done["value"] is not None:  # tasks scored elsewhere (metric: null) have no value
                values.setdefault((plan.entry, plan.task), []).append(float(done["value"]))
        elif (plan.run_dir / FAILED).is_file():
            failed = json.loads((plan.run_dir / FAILED).read_text())
            row.update(status="failed", log=failed["log"], message=failed["message"])
        runs.append(row)
    table = SweepTable(
        sweep_dir=sweep_dir, entries=[e.key for e in spec.entries], tasks=[t.name for t in spec.tasks],
        metric={t.name: f"{t.split} {t.metric or 'metric'}" for t in spec.tasks},
        higher_is_better={t.name: t.higher_is_better for t in spec.tasks}, group={t.name: t.group for t in spec.tasks},
        runs=runs, cells={k: Cell(tuple(v)) for k, v in values.items()}, reference_entry=spec.reference_entry,
        planned={(r["entry"], r["task"]) for r in runs})
    _score(table, {t.name: (t.reference.baseline, t.reference.sota) for t in spec.tasks if t.reference})
    return table


def _score(table: SweepTable, references: Dict[str, Tuple[float, float]]) -> None:
    groups = list(dict.fromkeys(table.group[t] for t in table.tasks))
    ref = table.reference_entry
    for entry in table.entries:
        if ref is not None:
            for task in table.tasks:
                s, r = table.value(entry, task), table.value(ref, task)
                table.normalised[(entry, task)] = None if s is None or r is None else normalise(s, r, table.higher_is_better[task])
            per_group = {g: _mean([table.normalised[(entry, t)] for t in table.tasks if table.group[t] == g]) for g in groups}
            per_group["average"] = _mean(list(per_group.values()))
            table.group_scores[entry] = per_group
        if references:
            scores = {t: table.value(entry, t) for t in references}
            table.superb[entry] = None if any(v is None for v in scores.values()) else superb_score(scores, references)
    table.superb_tasks = list(references)


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def results_markdown(table: SweepTable) -> str:
    """results.md: metrics (mean ± std over seeds), normalised scores, SUPERB score, failed runs."""
    out = [f"# SUPERB sweep results\n\nSweep `{table.sweep_dir}`; values parsed from each run's `evaluate.log` "
           "(stock `run_downstream.py -m evaluate`).\n", "## Metrics (mean ± std over seeds; n = finished seeds; n/a = not in the entry's tasks)\n"]
    head = [f"{t} ({table.metric[t]} {'↑' if table.higher_is_better[t] else '↓'})" for t in table.tasks]
    out += ["| entry | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for entry in table.entries:
        cells = []
        for task in table.tasks:
            cell = table.cells.get((entry, task))
            if (entry, task) not in table.planned:
                cells.append("n/a")
            else:
                cells.append("–" if cell is None else f"{cell.mean:.4f} ± {cell.std:.4f} (n={len(cell.values)})")
        out.append(f"| {entry} | " + " | ".join(cells) + " |")
    if table.reference_entry is not None:
        groups = [g for g in next(iter(table.group_scores.values()), {}) if g != "average"]
        groups = groups if len(groups) > 1 else []
        out += ["", f"## Normalised scores ({table.reference_entry} = 1000 per task; ratio, inverted for ↓ metrics)\n",
                "| entry | " + " | ".join([*table.tasks, *groups, "average"]) + " |",
                "|---" * (len(table.tasks) + len(groups) + 2) + "|"]
        for entry in table.entries:
            row = [_fmt(table.normalised.get((entry, t)), 2) for t in table.tasks]
            row += [_fmt(table.group_scores[entry].get(g), 2) for g in [*groups, "average"]]
            out.append(f"| {entry} | " + " | ".join(row) + " |")
    if table.superb_tasks:
        out += ["", f"## SUPERB score (baseline = 0, SOTA = 1000; over {', '.join(table.superb_tasks)})\n",
                "| entry | SUPERB score |", "|---|---|"]
        out += [f"| {entry} | {_fmt(table.superb.get(entry), 2)} |" for entry in table.entries]
    if table.failed:
        out += ["", "## Failed runs\n"] + [f"- `{r['entry']}/{r['task']}/seed{r['seed']}`: {r['message']} — log: `{r['log']}`"
                                           for r in table.failed]
    pending = [r for r in table.runs if r["status"] == "pending"]
    if pending:
        out += ["", "## Not finished\n"] + [f"- `{r['entry']}/{r['task']}/seed{r['seed']}`" for r in pending]
    return "\n".join(out) + "\n"


def results_csv(table: SweepTable) -> str:
    """results.csv: one row per (entry, task) with the per-seed values and the scores."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["entry", "task", "metric", "higher_is_better", "n_seeds", "mean", "std", "values",
                     "normalised", "superb_score", "failed_logs"])
    for entry in table.entries:
        for task in table.tasks:
            if (entry, task) not in table.planned:
                continue
            cell = table.cells.get((entry, task))
            failed = [r["log"] for r in table.failed if r["entry"] == entry and r["task"] == task]
            writer.writerow([entry, task, table.metric[task], table.higher_is_better[task],
                             len(cell.values) if cell else 0, cell.mean if cell else "", cell.std if cell else "",
                             ";".join(repr(v) for v in cell.values) if cell else "",
                             "" if table.normalised.get((entry, task)) is None else table.normalised[(entry, task)],
                             "" if table.superb.get(entry) is None else table.superb[entry], ";".join(failed)])
    return buf.getvalue()


def bar_chart(table: SweepTable, path: Path) -> Path:
    """Grouped bars per task (normalised scores when a reference entry is set, else raw means with std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    normalised = table.reference_entry is not None
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(table.tasks) * max(1, len(table.entries)) / 2), 3.5))
    width = 0.8 / max(1, len(table.entries))
    for i, entry in enumerate(table.entries):
        xs = [t + (i - (len(table.entries) - 1) / 2) * width for t in range(len(table.tasks))]
        if normalised:
            ys = [table.normalised.get((entry, task)) or 0.0 for task in table.tasks]
            errs = None
        else:
            ys = [table.value(entry, task) or 0.0 for task in table.tasks]
            errs = [table.cells[(entry, task)].std if (entry, task) in table.cells else 0.0 for task in table.tasks]
        ax.bar(xs, ys, width, yerr=errs, label=entry, capsize=2)
    ax.set_xticks(range(len(table.tasks)))
    ax.set_xticklabels([f"{t}\n{table.metric[t]}" for t in table.tasks])
    ax.set_ylabel(f"score ({table.reference_entry} = 1000)" if normalised else "metric (mean over seeds)")
    if normalised:
        ax.axhline(1000, color="grey", linewidth=0.8, linestyle="--")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_results(table: SweepTable) -> List[Path]:
    """Write results.md, results.csv, runs.csv and results.png into the sweep dir (each atomically)."""
    out = table.sweep_dir
    runs = io.StringIO()
    writer = csv.DictWriter(runs, fieldnames=["entry", "task", "seed", "status", "value", "log", "message"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(table.runs)
    paths = []
    for name, text in [("results.md", results_markdown(table)), ("results.csv", results_csv(table)),
                       ("runs.csv", runs.getvalue())]:
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)
        paths.append(out / name)
    tmp = bar_chart(table, out / ".results.tmp.png")
    tmp.replace(out / "results.png")
    return paths + [out / "results.png"]
