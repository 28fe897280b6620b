"""``python -m upstream_merged sweep`` / ``submit``: argument parsing only; the work is in sweep.py and submit.py."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def add_parsers(sub, add_command: Callable) -> None:
    """Add the ``sweep`` and ``submit`` subcommands through ``__main__.add_command``."""
    sweep = add_command(sub, "sweep", cmd_sweep, "run a SUPERB sweep (entries x tasks x seeds) with the stock s3prl runner")
    sweep.add_argument("spec", type=Path, help="sweep spec YAML (see upstream_merged/superb/examples/)")
    sweep.add_argument("--executor", choices=["local", "slurm"], default="local")
    sweep.add_argument("--jobs", type=int, default=1, help="local: runs at a time (default 1)")
    sweep.add_argument("--dry-run", action="store_true", help="print the commands each run would execute, write nothing")
    sweep.add_argument("--collect-only", action="store_true", help="only rewrite results.* from the finished runs")
    sweep.add_argument("--device", default=None, help="override the spec's --device (cpu, cuda)")
    sweep.add_argument("--output-dir", default=None, help="override the spec's output_dir")
    slurm = sweep.add_argument_group("slurm (submitit; defaults from the spec's 'slurm' section)")
    slurm.add_argument("--partition", default=None)
    slurm.add_argument("--gpus-per-node", type=int, default=None)
    slurm.add_argument("--time", type=int, default=None, dest="timeout_min", help="minutes per job")
    slurm.add_argument("--cpus", type=int, default=None, dest="cpus_per_task")
    slurm.add_argument("--mem", type=int, default=None, dest="mem_gb", help="GB per job")
    slurm.add_argument("--cluster", default=None, help="submitit cluster: auto (default), slurm, local, debug")

    submit = add_command(sub, "submit", cmd_submit, "package finished evaluations as the SUPERB leaderboard's predict.zip")
    add_submit_arguments(submit)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run (or dry-run, or collect) a sweep; exit 1 when a run failed."""
    from upstream_merged.superb.executors import LocalExecutor, SlurmExecutor
    from upstream_merged.superb.results import collect, write_results
    from upstream_merged.superb.spec import load_spec
    from upstream_merged.superb.sweep import dry_run_lines, run_sweep
    from upstream_merged.superb.commands import plan_sweep

    spec = load_spec(args.spec)
    update = {k: v for k, v in {"device": args.device, "output_dir": args.output_dir}.items() if v is not None}
    if "output_dir" in update:
        update["output_dir"] = str(Path(update["output_dir"]).resolve())
    spec = spec.model_copy(update=update)
    if args.dry_run:
        print("\n".join(dry_run_lines(plan_sweep(spec))))
        return 0
    if args.collect_only:
        table = collect(spec.sweep_dir)
        write_results(table)
    else:
        if args.executor == "slurm":
            s = spec.slurm
            executor = SlurmExecutor(
                folder=spec.sweep_dir / "submitit", cluster=args.cluster, partition=args.partition or s.partition,
                gpus_per_node=s.gpus_per_node if args.gpus_per_node is None else args.gpus_per_node,
                timeout_min=args.timeout_min or s.timeout_min, cpus_per_task=args.cpus_per_task or s.cpus_per_task,
                mem_gb=args.mem_gb or s.mem_gb, extra=dict(s.extra))
        else:
            executor = LocalExecutor(jobs=args.jobs)
        table = run_sweep(spec, executor)
    print((spec.sweep_dir / "results.md").read_text())
    return 1 if table.failed else 0


def add_submit_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the submission packager (shared by tools/superb_submit.py)."""
    parser.add_argument("out", type=Path, help="output directory: OUT/predict/<task>_public/... and OUT/predict.zip")
    parser.add_argument("--sweep", type=Path, default=None, help="a sweep directory to take finished runs from")
    parser.add_argument("--entry", default=None, help="with --sweep: the entry label to submit")
    parser.add_argument("--seed", type=int, default=None, help="with --sweep: which seed (default: the spec's first)")
    parser.add_argument("--task", action="append", default=[], metavar="KEY=EXPDIR",
                        help="an expdir per leaderboard task (ks=..., er_fold1=..., asr=...), as s3prl's submit.py")
    parser.add_argument("--force", action="store_true", help="replace a non-empty OUT")


def cmd_submit(args: argparse.Namespace) -> int:
    """Package the predictions; refuse (exit 2) naming the task and file when one is missing."""
    from upstream_merged.superb.submit import expdirs_from_sweep, package

    expdirs = {}
    if args.sweep is not None:
        if args.entry is None:
            raise ValueError("--sweep needs --entry LABEL (the entry whose runs are submitted)")
        expdirs.update(expdirs_from_sweep(args.sweep, args.entry, args.seed))
    for item in args.task:
        key, sep, path = item.partition("=")
        if not sep:
            raise ValueError(f"--task {item!r}: expected KEY=EXPDIR, e.g. ks=/exp/ks")
        expdirs[key] = Path(path)
    zip_path = package(expdirs, args.out, force=args.force)
    print(f"wrote {zip_path} ({', '.join(sorted(expdirs))})")
    return 0
