#!/usr/bin/env python
"""Check the shipping gates of a pair of small encoders (speech, music) pretrained by tools/pretrain_small.py.

    python tools/check_pretrain_gates.py --speech-run results/pretrain_v2/hubert --music-run results/pretrain_v2/mert \
        --evalsets /work/evalsets --out results/pretrain_v2/gates [--seeds 0 1 2] [--only speech|music]

Gate (a): every codebook's held-out masked-unit accuracy (the run's last evaluation) is >= 2x its
majority-unit baseline. Gate (b): on every evaluation task the encoder of the task's domain beats the
other one -- the speech encoder on speech tasks, the music encoder on music tasks -- by more than the 95%
confidence interval: the paired bootstrap interval of the accuracy difference (test clips and probe seeds
resampled) lies above 0. Probes are the cached-feature probes of upstream_merged.evaluation (s3prl's
Featurizer + the task's stock head, trained to convergence on features extracted once), run as the
evidence table's cells (saved under --work-dir; ``--only speech|music`` probes one encoder ahead). Writes gates.json and gates.md; exits 0
when every gate passes, 1 otherwise. A failing gate is reported with its figures, never relaxed.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from upstream_merged.core.atomic import write_text_atomically  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from upstream_merged.evaluation.evalsets import DomainTask

logger = logging.getLogger("check_pretrain_gates")
UNIT_GATE = 2.0  # held-out masked accuracy / majority-unit accuracy
PROBE = {"max_steps": 30000, "eval_step": 200, "patience": 15, "min_steps": 3000}  # the evidence table's full probe


def last_evaluation(run: Path) -> dict:
    """The run's last held-out evaluation row (train_log.jsonl of a finished run, else its checkpoint's log)."""
    run = Path(run)
    if (run / "train_log.jsonl").is_file() and (run / "summary.json").is_file():
        rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines() if line.strip()]
    elif (run / "checkpoint.pt").is_file():
        import torch

        rows = torch.load(run / "checkpoint.pt", weights_only=False, map_location="cpu")["log"]
    else:
        raise SystemExit(f"{run} holds neither a finished run (summary.json + train_log.jsonl) nor checkpoint.pt")
    evals = [r for r in rows if r.get("kind") == "eval"]
    if not evals:
        raise SystemExit(f"{run}: no held-out evaluation logged yet")
    return evals[-1]


def unit_gate(run: Path) -> dict:
    """Gate (a) for one run: per codebook, held-out masked accuracy / majority-unit accuracy >= 2."""
    row = last_evaluation(run)
    codebooks = {}
    for key, value in row.items():
        if key.startswith("acc_") and f"chance_{key[4:]}" in row:
            chance = float(row[f"chance_{key[4:]}"])
            ratio = float(value) / chance if chance > 0 else float("inf")
            codebooks[key[4:]] = {"accuracy": round(float(value), 4), "majority": round(chance, 4),
                                  "ratio": round(ratio, 3), "pass": ratio >= UNIT_GATE}
    if not codebooks:
        raise SystemExit(f"{run}: the last evaluation (step {row.get('step')}) records no accuracy with a chance level")
    return {"run": str(run), "step": row["step"], "codebooks": codebooks, "pass": all(c["pass"] for c in codebooks.values())}


def domain_gate(task: "DomainTask", speech: Sequence[dict], music: Sequence[dict]) -> dict:
    """Gate (b) for one task from the two encoders' per-seed {clip id: correct} maps (same test clips)."""
    import numpy as np

    from upstream_merged.evaluation.stats import align_by_id, paired_bootstrap

    own, other = (speech, music) if task.domain == "speech" else (music, speech)
    own_flags = np.stack([align_by_id(r, other[0])[0] for r in own])  # (seeds, clips)
    other_flags = np.stack([align_by_id(own[0], r)[1] for r in other])
    paired = paired_bootstrap(own_flags, other_flags)
    mean = lambda runs: float(np.mean([np.mean(list(r.values())) for r in runs]))  # noqa: E731
    return {"task": task.name, "domain": task.domain, "speech_accuracy": round(mean(speech), 4),
            "music_accuracy": round(mean(music), 4), "seeds": len(own), "clips": int(own_flags.shape[1]),
            "own_minus_other": paired.as_dict(), "interval": paired.text(), "pass": paired.low > 0.0}


def encoder_dir(run: Path, given: Optional[Path]) -> Path:
    """The encoder to probe: --*-encoder, else RUN/encoder (finished), else the newest RUN/snapshots/step_*."""
    if given is not None:
        return given
    if (run / "encoder" / "model.safetensors").is_file():
        return run / "encoder"
    snapshots = sorted((run / "snapshots").glob("step_*"))
    if not snapshots:
        raise SystemExit(f"{run} has no encoder/ and no snapshots/: pass the encoder dir explicitly")
    return snapshots[-1]


def markdown(report: dict) -> str:
    """The gates as a small markdown report."""
    lines = ["# Pretraining gates", "", "## (a) held-out masked-unit accuracy >= 2x the majority unit", "",
             "| encoder | step | codebook | accuracy | majority | ratio | pass |", "|---|---|---|---|---|---|---|"]
    for name, gate in report["units"].items():
        for book, c in gate["codebooks"].items():
            lines.append(f"| {name} | {gate['step']} | {book} | {c['accuracy']:.3f} | {c['majority']:.3f} | "
                         f"{c['ratio']:.2f} | {'yes' if c['pass'] else '**no**'} |")
    if report.get("tasks"):
        lines += ["", "## (b) each encoder wins its own domain by more than the 95% interval", "",
                  f"Encoders: speech `{report['encoders']['speech']}`, music `{report['encoders']['music']}`.", "",
                  "| task | domain | speech enc. | music enc. | own - other [95% paired bootstrap] | pass |",
                  "|---|---|---|---|---|---|"]
        for t in report["tasks"]:
            lines.append(f"| {t['task']} | {t['domain']} | {t['speech_accuracy']:.3f} | {t['music_accuracy']:.3f} | "
                         f"{t['interval']} | {'yes' if t['pass'] else '**no**'} |")
    lines += ["", f"**All gates pass: {'yes' if report['pass'] else 'no'}**", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speech-run", type=Path, required=True)
    parser.add_argument("--music-run", type=Path, required=True)
    parser.add_argument("--speech-encoder", type=Path, default=None, help="default: RUN/encoder or its newest snapshot")
    parser.add_argument("--music-encoder", type=Path, default=None)
    parser.add_argument("--evalsets", type=Path, default=None, help="root of the evaluation sets; omit: gate (a) only")
    parser.add_argument("--tasks", nargs="+", default=None, help="subset of ks sid pitch instrument")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=("speech", "music"), default=None,
                        help="probe one encoder only (its cells are saved; a later full call reuses them)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "upstream_merged" / "gates")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    report: dict = {"units": {"speech": unit_gate(args.speech_run), "music": unit_gate(args.music_run)}, "tasks": []}
    if args.evalsets is not None:
        from upstream_merged.evaluation.cells import Job, Profile, Row, run_jobs
        from upstream_merged.evaluation.evalsets import power_tasks

        tasks = power_tasks(args.evalsets, args.tasks)
        encoders = {"speech": encoder_dir(args.speech_run, args.speech_encoder),
                    "music": encoder_dir(args.music_run, args.music_encoder)}
        report["encoders"] = {k: str(v) for k, v in encoders.items()}
        # hubert_small / mert_small -k DIR load any HF HubertModel dir with its own preprocessor_config
        rows = {"speech": Row("speech_encoder", "hubert_small", "snapshot", "speech encoder", ckpt=str(encoders["speech"])),
                "music": Row("music_encoder", "mert_small", "snapshot", "music encoder", ckpt=str(encoders["music"]))}
        profile = Profile("gates", tuple(args.seeds), dict(PROBE), 0, 1)
        domains = [args.only] if args.only else ["speech", "music"]
        cells = run_jobs([Job(rows[d], task, profile, str(args.work_dir.resolve())) for d in domains for task in tasks],
                         args.jobs)
        if args.only:
            logger.info("%s encoder probed on %s; run again without --only for the gates", args.only,
                        [t.name for t in tasks])
            return 0
        for task in tasks:
            per_domain = {d: [s["correct"] for s in cells[(rows[d].label, task.name)]["seeds"]] for d in domains}
            report["tasks"].append(domain_gate(task, per_domain["speech"], per_domain["music"]))
            logger.info("%s: %s", task.name, report["tasks"][-1]["interval"])
    report["pass"] = all(g["pass"] for g in report["units"].values()) and all(t["pass"] for t in report["tasks"])
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (("gates.json", json.dumps(report, indent=2) + "\n"), ("gates.md", markdown(report))):
        write_text_atomically(args.out / name, text)
    print(markdown(report))
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
