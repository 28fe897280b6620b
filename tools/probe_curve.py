#!/usr/bin/env python
"""Probe accuracy vs pretraining steps: every snapshot of tools/pretrain_small.py runs, probed on a speech and a music task.

    python tools/probe_curve.py                                   # the committed runs of results/pretrain_v2
    python tools/probe_curve.py --runs mert=results/pretrain_v2/mert --every 2000 --seeds 0 1

Each run contributes its snapshots (RUN/snapshots/step_*), its finished encoder (RUN/encoder) and, at
step 0, the random initialisation it started from (small_random_init1 for HuBERT runs, init2 for MERT).
Every point is the cached-feature probe of upstream_merged.evaluation (features extracted once per
snapshot, s3prl's Featurizer + the task's stock head trained until dev accuracy plateaus), on keyword
spotting (speech) and NSynth pitch class (music), by default the small generated sets of the demo
(``--evalsets DIR`` for the evaluation sets). Writes probe_curve.png / .json / .md into --out; cells are
saved under --work-dir and reused, so adding snapshots later only probes the new ones.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from upstream_merged.core.atomic import write_atomically, write_text_atomically  # noqa: E402
from upstream_merged.evaluation.cells import Job, Profile, Row, read_done, run_jobs  # noqa: E402

logger = logging.getLogger("probe_curve")
DEFAULT_RUNS = ("hubert_iter1=results/pretrain_v2/hubert_iter1", "hubert_iter2=results/pretrain_v2/hubert",
                "mert=results/pretrain_v2/mert")
PROBE = {"max_steps": 3000, "eval_step": 100, "patience": 5, "min_steps": 500}


def parse_runs(specs: Sequence[str]) -> List[Tuple[str, Path]]:
    """NAME=DIR pairs (a relative DIR missing here is read from the repository); a bad spec is refused by name."""
    out = []
    for spec in specs:
        name, sep, directory = spec.partition("=")
        if not sep or not name or not directory:
            raise SystemExit(f"--runs {spec!r}: expected NAME=DIR")
        path = Path(directory)
        if not path.is_absolute() and not path.exists():
            path = REPO / path
        if not path.is_dir():
            raise SystemExit(f"--runs {spec!r}: {directory} is not a directory")
        out.append((name, path))
    return out


def run_points(name: str, run: Path, every: int = 0) -> List[Tuple[int, Row]]:
    """(step, Row) of a run: step 0 = its random init, then its snapshots and its finished encoder.

    A run whose name contains "mert" is a MERT run (entry mert_small, init seed 2); any other is HuBERT's.
    """
    music = "mert" in name
    entry = "mert_small" if music else "hubert_small"
    points = [(0, Row(f"{name}@0", "small_random_init2" if music else "small_random_init1", "random",
                      f"{name} at step 0 (random init)"))]
    for snapshot in sorted((run / "snapshots").glob("step_*")):
        match = re.fullmatch(r"step_(\d+)", snapshot.name)
        if match and (snapshot / "model.safetensors").is_file():
            step = int(match.group(1))
            if not every or step % every == 0:
                points.append((step, Row(f"{name}@{step}", entry, "snapshot", f"{name} at step {step}",
                                         ckpt=str(snapshot.resolve()))))
    summary = run / "summary.json"
    if (run / "encoder" / "model.safetensors").is_file() and summary.is_file():
        step = int(json.loads(summary.read_text()).get("steps", 0))
        if step and step not in {s for s, _ in points}:
            points.append((step, Row(f"{name}@{step}", entry, "snapshot", f"{name} finished ({step} steps)",
                                     ckpt=str((run / "encoder").resolve()))))
    return points


def curve_data(runs: Dict[str, List[Tuple[int, Row]]], tasks, cells) -> dict:
    """{run: {task: [{step, accuracy (mean over seeds), seeds: [...]}]}} of the finished cells, and chance per task."""
    out: dict = {"runs": {}, "chance": {}}
    for name, points in runs.items():
        out["runs"][name] = {}
        for task in tasks:
            series = []
            for step, row in points:
                cell = cells.get((row.label, task.name))
                if cell:
                    accs = [s["accuracy"] for s in cell["seeds"]]
                    series.append({"step": step, "accuracy": sum(accs) / len(accs), "seeds": accs})
            out["runs"][name][task.name] = series
    for task in tasks:
        cell = cells.get(("chance", task.name))
        if cell:
            out["chance"][task.name] = cell["seeds"][0]["accuracy"]
    return out


def plot(data: dict, tasks, path: Path) -> None:
    """One panel per task: probe accuracy vs pretraining step for every run, chance dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for name, per_task in data["runs"].items():
            series = per_task.get(task.name, [])
            if series:
                ax.plot([p["step"] for p in series], [p["accuracy"] for p in series], marker="o", label=name)
        if task.name in data["chance"]:
            ax.axhline(data["chance"][task.name], color="grey", ls="--", lw=1, label="chance")
        ax.set_title(f"{task.name} ({task.domain}): cached probe, test accuracy")
        ax.set_xlabel("pretraining step")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomically(path, lambda temp: fig.savefig(temp, dpi=110))
    plt.close(fig)


def markdown(data: dict, tasks, meta: dict) -> str:
    """The curve's numbers as a table per run."""
    lines = ["# Probe accuracy vs pretraining steps", "",
             f"Generated by `{meta['command']}` on {meta['date']}; wall {meta['wall']}. Cached-feature probe "
             f"({meta['probe']}), seeds {meta['seeds']}; test accuracy, mean over seeds. Step 0 is the random "
             "initialisation the run started from.", "",
             "Chance (training majority class): " + ", ".join(f"{k} {v:.3f}" for k, v in data["chance"].items()), ""]
    for name, per_task in data["runs"].items():
        steps = sorted({p["step"] for series in per_task.values() for p in series})
        lines += [f"## {name}", "", "| step | " + " | ".join(t.name for t in tasks) + " |",
                  "|---" * (len(tasks) + 1) + "|"]
        for step in steps:
            values = []
            for task in tasks:
                point = next((p for p in per_task.get(task.name, []) if p["step"] == step), None)
                values.append("–" if point is None else f"{point['accuracy']:.3f}")
            lines.append(f"| {step} | " + " | ".join(values) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", default=list(DEFAULT_RUNS), help="NAME=DIR of pretrain_small.py runs")
    parser.add_argument("--evalsets", type=Path, default=None, help="evaluation sets root (default: small generated sets)")
    parser.add_argument("--tasks", nargs="+", default=["ks", "pitch"])
    parser.add_argument("--every", type=int, default=0, help="only snapshots whose step is a multiple of this")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--probe-max-steps", type=int, default=PROBE["max_steps"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "upstream_merged" / "probe_curve")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "pretrain_v2")
    parser.add_argument("--collect-only", action="store_true", help="plot the finished cells only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from upstream_merged.evaluation.evalsets import power_tasks, small_tasks

    start = time.monotonic()
    work = args.work_dir.resolve()
    runs = {name: run_points(name, directory, args.every) for name, directory in parse_runs(args.runs)}
    if args.evalsets:
        tasks = power_tasks(args.evalsets, args.tasks)
    else:
        tasks = [t for t in small_tasks(work / "data") if t.name in args.tasks]
    if not tasks:
        raise SystemExit(f"--tasks {args.tasks}: none of them is available (ks, pitch; sid, instrument with --evalsets)")
    probe = {**PROBE, "max_steps": args.probe_max_steps, "min_steps": min(PROBE["min_steps"], args.probe_max_steps),
             "eval_step": max(1, min(PROBE["eval_step"], args.probe_max_steps // 2))}
    profile = Profile("curve", tuple(args.seeds), probe, 0, 1)
    rows = [Row("chance", "", "chance", "chance")] + [row for points in runs.values() for _, row in points]
    jobs = [Job(row, task, profile, str(work)) for row in rows for task in tasks]
    cells = read_done(jobs) if args.collect_only else run_jobs(jobs, args.jobs)
    data = curve_data(runs, tasks, cells)
    wall = time.monotonic() - start
    meta = {"command": shlex.join(["python", "tools/probe_curve.py", *(sys.argv[1:] if argv is None else argv)]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "wall": f"{wall / 60:.1f} min",
            "probe": probe, "seeds": list(args.seeds), "tasks": [t.name for t in tasks]}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (("probe_curve.json", json.dumps({"meta": meta, **data}, indent=1) + "\n"),
                       ("probe_curve.md", markdown(data, tasks, meta))):
        write_text_atomically(args.out / name, text)
    plot(data, tasks, args.out / "probe_curve.png")
    print(markdown(data, tasks, meta))
    print(f"wrote {args.out}/probe_curve.png/.json/.md ({wall / 60:.1f} min)")
    missing = len(jobs) - len(cells)
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
