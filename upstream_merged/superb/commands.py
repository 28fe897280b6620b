"""Exact stock ``run_downstream.py`` command lines of a run, and the plan of every run of a sweep."""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from upstream_merged.superb.spec import Entry, SweepSpec, Task
from upstream_merged.testing.s3prl_run import stock_script


@dataclass(frozen=True)
class RunPlan:
    """Everything one run (entry, task, seed) needs: plain data, picklable for submitit."""

    entry: str
    task: str
    seed: int
    sweep_dir: Path
    run_dir: Path
    train_argv: Tuple[str, ...]  # run_downstream.py arguments of a fresh training
    overrides: str  # the -o string (repeated when resuming)
    device: str
    split: str
    checkpoint: str  # file name inside the expdir evaluated after training
    metric: Optional[str]
    metric_regex: Optional[str]
    env: Dict[str, str] = field(default_factory=dict)
    python: str = sys.executable
    train: bool = True  # False: evaluate_argv runs directly (no training, no checkpoint)
    evaluate_argv: Tuple[str, ...] = ()

    @property
    def run_id(self) -> str:
        """``<entry>/<task>/seed<seed>``, also the run's path under ``runs/``."""
        return f"{self.entry}/{self.task}/seed{self.seed}"

    @property
    def expdir(self) -> Path:
        """The absolute ``-p`` directory (inside the sweep dir, never site-packages)."""
        return self.run_dir / "exp"


def override_string(overrides: Dict[str, object]) -> str:
    """s3prl's ``-o`` syntax: ``key=value`` joined by ``,,``."""
    return ",,".join(f"{k}={v}" for k, v in overrides.items())


def default_checkpoint(config_path: str, overrides: Dict[str, object]) -> str:
    """``<first eval split>-best.ckpt`` as s3prl saves it, or the last ``states-<total_steps>.ckpt`` without dev evals."""
    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"downstream config {path} (task 'config') does not exist")
    runner = (yaml.safe_load(path.read_text()) or {}).get("runner", {})
    splits = overrides.get("config.runner.eval_dataloaders", runner.get("eval_dataloaders"))
    if isinstance(splits, str):
        splits = yaml.safe_load(splits)
    if splits:
        return f"{splits[0]}-best.ckpt"
    steps = overrides.get("config.runner.total_steps", runner.get("total_steps"))
    if steps is None:
        raise ValueError(f"{path}: runner.total_steps is missing; set the task's 'checkpoint'")
    return f"states-{int(steps)}.ckpt"


def _entry_args(spec: SweepSpec, entry: Entry) -> List[str]:
    argv = ["-u", entry.name]
    if entry.ckpt:
        argv += ["-k", spec.resolve(entry.ckpt)]
    if entry.model_config_path:
        argv += ["-g", spec.resolve(entry.model_config_path)]
    if entry.finetune:
        argv += ["-f"]
    return argv


def plan_run(spec: SweepSpec, entry: Entry, task: Task, seed: int) -> RunPlan:
    """The plan of one run; its directory is ``<sweep>/runs/<entry>/<task>/seed<seed>``."""
    run_dir = spec.sweep_dir / "runs" / entry.key / task.name / f"seed{seed}"
    overrides = {k: spec.resolve(v) if isinstance(v, str) else v for k, v in task.overrides.items()}
    overrides.update({k: spec.resolve(v) if isinstance(v, str) else v for k, v in entry.overrides.items()})
    config = spec.resolve(task.config)
    o = override_string(overrides)
    argv = ["-m", "train", *_entry_args(spec, entry), "-d", task.downstream, "-c", config,
            "-p", str(run_dir / "exp"), "--seed", str(seed), "--device", spec.device]
    if o:
        argv += ["-o", o]
    direct = ["-m", "evaluate", *argv[2:argv.index("--seed")], "-t", task.split, *argv[argv.index("--seed"):]]
    return RunPlan(entry=entry.key, task=task.name, seed=seed, sweep_dir=spec.sweep_dir, run_dir=run_dir,
                   train_argv=tuple(argv), overrides=o, device=spec.device, split=task.split,
                   checkpoint=(task.checkpoint or default_checkpoint(config, overrides)) if task.train else "",
                   metric=task.metric, metric_regex=task.metric_regex, env=dict(spec.env), train=task.train,
                   evaluate_argv=() if task.train else tuple(direct))


def plan_sweep(spec: SweepSpec) -> List[RunPlan]:
    """Every run of the sweep, entry-major then task then seed."""
    return [plan_run(spec, entry, task, seed)
            for entry in spec.entries for task in spec.tasks if entry.tasks is None or task.name in entry.tasks
            for seed in spec.seeds]


def base_command(plan: RunPlan) -> List[str]:
    """``python <site-packages>/s3prl/run_downstream.py`` (the stock script, never a copy)."""
    return [plan.python, str(stock_script())]


def train_command(plan: RunPlan, resume_from: Optional[Path] = None) -> List[str]:
    """A fresh training, or ``-e states-N.ckpt`` (s3prl restores args and config from it) when resuming."""
    if resume_from is None:
        return [*base_command(plan), *plan.train_argv]
    argv = [*base_command(plan), "-m", "train", "-e", str(resume_from), "--device", plan.device]
    return argv + (["-o", plan.overrides] if plan.overrides else [])


def evaluate_command(plan: RunPlan) -> List[str]:
    """Evaluate the chosen checkpoint on the task's split (expdir and seed come from the checkpoint).

    For a task without training: ``-m evaluate -u ... -d ... -c ... -p ... -t SPLIT`` on the frozen upstream.
    """
    if not plan.train:
        return [*base_command(plan), *plan.evaluate_argv]
    return [*base_command(plan), "-m", "evaluate", "-e", str(plan.expdir / plan.checkpoint), "-t", plan.split,
            "--device", plan.device]


def shell_line(plan: RunPlan, argv: List[str]) -> str:
    """A copy-pasteable shell line: ``cd RUN_DIR && [env K=V] python run_downstream.py ...``."""
    env = ["env", *(f"{k}={v}" for k, v in sorted(plan.env.items()))] if plan.env else []
    return f"cd {shlex.quote(str(plan.run_dir))} && {shlex.join([*env, *argv])}"
