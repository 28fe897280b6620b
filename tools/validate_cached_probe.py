#!/usr/bin/env python
"""Validate the cached probe against stock run_downstream.py: same task, budget, optimizer, batch and seed.

    nice -n 10 python tools/validate_cached_probe.py                       # ks + nsynth_pitch x 3 small upstreams
    python tools/validate_cached_probe.py --tasks ks --entries hubert_tiny --steps 40 --eval-step 20 --out /tmp/v

For every (task, upstream): the stock run (``run_downstream.py -m train`` + ``-m evaluate`` on its
dev-best checkpoint, through the SUPERB sweep runner) and the cached probe
(``upstream_merged.evaluation``: hidden states extracted once, s3prl's Featurizer + the task's head
trained on them) at the same step budget and seed. Verdict per row: the stock test accuracy lies inside
the cached accuracy's 95% Wilson interval. Also reported: the paired difference on the same test clips
(bootstrap interval, McNemar p), the cached accuracy over further seeds, the cached probe trained to
convergence (early stopping), and the cached probe on float32 instead of float16 features. Writes
``validation.json`` and ``validation.md`` into ``--out`` (default results/cached_probe_validation/).
The data sets are written by tools/make_speech_commands.py / make_nsynth.py (seeded) into --work-dir.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

logger = logging.getLogger("validate_cached_probe")
CONFIGS = REPO / "downstream_configs"


def dataset_dir(work: Path, script: str, args: Sequence[str]) -> Path:
    """Generate ``tools/<script> OUT ARGS`` once into work/data/<script>-<key> (key: the tool's source + args).

    As in tools/reproduce_table.py, the key covers the generator script and its arguments, not the
    synthesis library it imports (upstream_merged/synth), so work on that library does not regenerate
    a validation set half-way through; delete work/data to regenerate.
    """
    # the generator is the layout module tools/<script> runs (upstream_merged/data/<layout>.py), not its shim
    material = (REPO / "upstream_merged" / "data" / script.removeprefix("make_")).read_bytes()
    material += repr(list(args)).encode()
    final = work / "data" / f"{Path(script).stem}-{hashlib.sha256(material).hexdigest()[:10]}"
    if final.is_dir():
        logger.info("data: cached %s", final)
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    logger.info("data: generating %s %s", script, " ".join(args))
    proc = subprocess.run([sys.executable, str(REPO / "tools" / script), str(tmp), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"tools/{script} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    os.replace(tmp, final)
    return final


def task_runs(names: Sequence[str], work: Path, ks_speakers: Tuple[int, int, int], nsynth_instruments: Tuple[int, int, int],
              nsynth_notes: int, nsynth_seconds: float, ks_root: Optional[Path] = None, nsynth_root: Optional[Path] = None):
    """TaskRun of each named task (ks, nsynth_pitch, nsynth_instrument), data generated on first use (or the given roots)."""
    from upstream_merged.evaluation.validate import TaskRun

    out = []
    for name in names:
        if name == "ks":
            root = ks_root or dataset_dir(work, "make_speech_commands.py",
                                          ["--train-speakers", str(ks_speakers[0]), "--dev-speakers", str(ks_speakers[1]),
                                           "--test-speakers", str(ks_speakers[2])])
            out.append(TaskRun("ks", "speech_commands", str(CONFIGS / "speech_commands_cpu_small.yaml"), {
                "config.downstream_expert.datarc.speech_commands_root": str(root / "speech_commands_v0.01"),
                "config.downstream_expert.datarc.speech_commands_test_root": str(root / "speech_commands_test_set_v0.01")}))
        elif name in ("nsynth_pitch", "nsynth_instrument"):
            root = nsynth_root or dataset_dir(work, "make_nsynth.py", ["--instruments", *map(str, nsynth_instruments),
                                                                       "--notes-per-instrument", str(nsynth_notes)])
            out.append(TaskRun(name, name, str(CONFIGS / f"{name}_cpu_small.yaml"), {
                "config.downstream_expert.datarc.nsynth_root": str(root),
                "config.downstream_expert.datarc.max_seconds": nsynth_seconds}))
        else:
            raise ValueError(f"task {name!r}: choose from ks, nsynth_pitch, nsynth_instrument")
    return out


def markdown(results, meta: dict) -> str:
    """validation.md: what was compared, the table, the verdict and the exact command."""
    from upstream_merged.evaluation.validate import TABLE_HEAD, summary_rows

    agree = sum(r.agree for r in results)
    lines = [
        "# Cached probe vs stock `run_downstream.py`", "",
        f"Generated by `{meta['command']}` on {meta['date']} ({meta['host']}, under `nice -n 10` beside other jobs); "
        f"wall time {meta['wall_minutes']:.1f} min.", "",
        f"**{agree} of {len(results)} rows agree**: the stock test accuracy lies inside the 95% Wilson interval of the "
        "cached probe's test accuracy (same task config, step budget, dev interval, optimizer, batch size and seed).", "",
        "- stock: `run_downstream.py -m train` (frozen upstream, s3prl's Featurizer + the task's head) then "
        "`-m evaluate -e dev-best.ckpt -t test`, run by the SUPERB sweep runner; per-clip predictions from the "
        "`test_predict.txt` / `test_truth.txt` the stock expert writes",
        "- cached: `upstream_merged.evaluation` — hidden states (all layers) extracted once per (upstream, split), "
        "float16, memory-mapped; the same Featurizer, head, loss, optimizer, batch order rules, gradient clipping, "
        "dev-best selection, trained on them",
        f"- budget: {meta['steps']} steps, dev every {meta['eval_step']} steps, seed {meta['seed']}; "
        f"further cached seeds {meta['cached_seeds']}",
        "- same random stream: both paths are seeded alike, the cached probe draws its batches through the "
        "expert's own samplers and replays the draws each upstream forward takes from the torch RNG (transformers' "
        "HuBERT draws one number per layer for LayerDrop even in eval mode), so the head starts from the same "
        "weights and sees the same batches. What still differs: float16 storage, and the crops of randomly cropped "
        "clips (KS `_silence_`: a fixed set of 8 crops per noise file instead of a fresh 1 s crop per read)",
        "- cached − stock: paired over the same test clips (bootstrap of clips, 10,000 resamples; McNemar exact test "
        "on the discordant clips). The cached seeds column shows how much a different probe seed moves the "
        "accuracy at this budget: the agreement above is far tighter than seed-to-seed variation",
        f"- converged: the cached probe trained until dev accuracy plateaued ({meta['converge']})",
        "- float32: the same cached probe (seed, budget) on float32 instead of float16 features; "
        "'same' = share of test clips given the same class by both", "",
        "Data (clips per split, as the stock datasets list them): "
        + "; ".join(f"{name}: {sizes}" for name, sizes in meta["sizes"].items())
        + ". Data sets: " + "; ".join(f"{name}: " + ", ".join(f"{k}=`{v}`" for k, v in d.items())
                                        for name, d in meta["data"].items()), "",
        "| " + " | ".join(TABLE_HEAD) + " |", "|" + "---|" * len(TABLE_HEAD)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(results)]
    stock_s = sum(r.stock["seconds"] for r in results)
    cached_s = sum(r.cached["seconds"] + r.cached["extract_seconds"] for r in results)
    lines += ["", f"Time: stock runs {stock_s:.0f} s in total ({meta['jobs']} at a time; train + evaluate, incl. ~10 s of "
              "imports per command); "
              f"cached path {cached_s:.0f} s (extraction of train/dev/test once per upstream and task + one probe at this "
              "budget). Seconds are wall time on a shared 2-core machine, one torch thread.", "",
              "Reproduce:", "", "```bash", meta["command"], "```", ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Generate data, run both paths per (task, upstream), write validation.json / validation.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["ks", "nsynth_pitch"])
    parser.add_argument("--entries", nargs="+", default=["hubert_small", "mert_small", "merged_hubert_mert_small"])
    parser.add_argument("--steps", type=int, default=300, help="training steps of both paths (default 300)")
    parser.add_argument("--eval-step", type=int, default=100, help="dev evaluated every N steps (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cached-seeds", type=int, nargs="*", default=[1, 2, 3, 4],
                        help="further seeds of the cached probe at the same budget (default 1 2 3 4)")
    parser.add_argument("--no-converge", action="store_true", help="skip the converged cached probe")
    parser.add_argument("--converge-max-steps", type=int, default=20000)
    parser.add_argument("--converge-min-steps", type=int, default=3000)
    parser.add_argument("--converge-eval-step", type=int, default=200)
    parser.add_argument("--converge-patience", type=int, default=10)
    parser.add_argument("--no-float32", action="store_true", help="skip the float32-feature comparison")
    parser.add_argument("--ks-speakers", type=int, nargs=3, default=(16, 4, 40), metavar=("TRAIN", "DEV", "TEST"))
    parser.add_argument("--nsynth-instruments", type=int, nargs=3, default=(3, 1, 2), metavar=("TRAIN", "VALID", "TEST"))
    parser.add_argument("--nsynth-notes", type=int, default=20)
    parser.add_argument("--nsynth-seconds", type=float, default=2.0)
    parser.add_argument("--ks-root", type=Path, default=None,
                        help="an existing make_speech_commands.py output to use instead of generating one")
    parser.add_argument("--nsynth-root", type=Path, default=None, help="an existing make_nsynth.py output to use")
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "upstream_merged" / "cached_probe_validation")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "cached_probe_validation")
    parser.add_argument("--jobs", type=int, default=3, help="stock runs at a time (one torch thread each; default 3)")
    parser.add_argument("--force", action="store_true", help="overwrite validation.json / .md in --out")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%H:%M:%S")
    out = args.out.resolve()
    if (out / "validation.json").exists() and not args.force:
        parser.error(f"{out}/validation.json exists; pass --force to overwrite it")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from upstream_merged.evaluation.features import Upstream
    from upstream_merged.evaluation.probe import Schedule
    from upstream_merged.evaluation.tasks import TaskSetup, describe
    from upstream_merged.evaluation.validate import package_root, run_stock, stock_sweep_dir, validate

    if package_root() != REPO:
        parser.error(f"upstream_merged is imported from {package_root()}, not this checkout {REPO} (the venv's editable "
                     f"install points elsewhere): run tools/setup_env.sh, or set PYTHONPATH={REPO}")

    start = time.monotonic()
    work = args.work_dir.resolve()
    tasks = task_runs(args.tasks, work, tuple(args.ks_speakers), tuple(args.nsynth_instruments), args.nsynth_notes,
                      args.nsynth_seconds, args.ks_root, args.nsynth_root)
    converge = None if args.no_converge else Schedule.converge(args.converge_max_steps, args.converge_eval_step,
                                                               args.converge_patience, args.converge_min_steps)
    upstreams = {entry: Upstream(entry) for entry in args.entries}
    for upstream in upstreams.values():
        logger.info("upstream %s: fingerprint %s", upstream.entry, upstream.fingerprint)  # builds a merge once
    pairs = [(task, upstream) for task in tasks for upstream in upstreams.values()]
    logger.info("%d stock runs, %d at a time", len(pairs), args.jobs)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:  # subprocesses: threads only wait
        budgeted = [task.with_budget(args.steps, args.eval_step) for task, _ in pairs]
        futures = [pool.submit(run_stock, up.entry, b, args.seed, stock_sweep_dir(up, b, work))
                   for (_, up), b in zip(pairs, budgeted)]
        for future in futures:
            future.result()
    sizes: Dict[str, Dict[str, int]] = {}
    results = []
    for task in tasks:
        sizes[task.name] = describe(TaskSetup.from_files(task.downstream, task.config, task.overrides,
                                                         expdir=work / "cached_expdir" / task.name))
        for entry in args.entries:
            logger.info("== %s / %s", task.name, entry)
            results.append(validate(upstreams[entry], task, args.steps, args.eval_step, args.seed, work,
                                    cached_seeds=args.cached_seeds, converge=converge,
                                    check_float32=not args.no_float32, progress=not args.quiet))
            r = results[-1]
            logger.info("%s / %s: stock %.3f, cached %.3f [%.3f, %.3f] -> %s", task.name, entry, r.stock["value"],
                        r.cached["value"], r.cached["low"], r.cached["high"], "agree" if r.agree else "DISAGREE")
    meta = {"command": shlex.join(["nice", "-n", "10", "python", "tools/validate_cached_probe.py",
                                   *(sys.argv[1:] if argv is None else argv)]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host": f"{os.cpu_count()} CPU cores, {platform.machine()}",
            "wall_minutes": (time.monotonic() - start) / 60, "steps": args.steps, "eval_step": args.eval_step,
            "seed": args.seed, "cached_seeds": args.cached_seeds, "sizes": sizes, "jobs": args.jobs,
            "data": {t.name: {k.rsplit(".", 1)[-1]: v for k, v in t.overrides.items()} for t in tasks},
            "converge": "skipped" if converge is None else
            f"dev every {converge.eval_step} steps, stop after {converge.patience} evaluations without a new best, "
            f"at least {converge.min_steps} and at most {converge.total_steps} steps"}
    out.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "results": [r.as_dict() for r in results]}
    for name, text in (("validation.json", json.dumps(data, indent=1) + "\n"), ("validation.md", markdown(results, meta))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
    print((out / "validation.md").read_text())
    return 0 if all(r.agree for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
