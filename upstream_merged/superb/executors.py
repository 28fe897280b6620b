"""Where runs execute: this machine (sequential or N parallel) or a Slurm cluster through submitit."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Union

from upstream_merged.superb.commands import RunPlan
from upstream_merged.superb.runner import RunOutcome, execute_run

logger = logging.getLogger(__name__)
OnOutcome = Callable[[RunOutcome], None]


class Executor(Protocol):
    """Runs plans and reports each outcome as soon as it is known."""

    def run(self, plans: List[RunPlan], on_outcome: OnOutcome) -> List[RunOutcome]:
        """Execute every plan; failed runs are outcomes, never exceptions."""
        ...


@dataclass
class LocalExecutor:
    """Runs on this machine: ``jobs`` runs at a time (each run is its own stock subprocess)."""

    jobs: int = 1

    def run(self, plans: List[RunPlan], on_outcome: OnOutcome) -> List[RunOutcome]:
        """Execute the plans, sequentially when jobs == 1."""
        if self.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {self.jobs}")
        outcomes = []
        if self.jobs == 1:
            for plan in plans:
                outcomes.append(execute_run(plan))
                on_outcome(outcomes[-1])
            return outcomes
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            for future in as_completed([pool.submit(execute_run, plan) for plan in plans]):
                outcomes.append(future.result())
                on_outcome(outcomes[-1])
        return outcomes


@dataclass
class SlurmExecutor:
    """One submitit job per run (``cluster='local'`` runs the same path through submitit's local executor)."""

    folder: Path
    cluster: Optional[str] = None  # None: auto-detect (Slurm when sbatch exists); "local"/"debug" for tests
    partition: Optional[str] = None
    gpus_per_node: int = 1
    timeout_min: int = 24 * 60
    cpus_per_task: int = 8
    mem_gb: int = 64
    extra: Dict[str, Union[str, int, float, bool]] = field(default_factory=dict)
    poll_seconds: float = 5.0

    def executor(self):
        """The configured ``submitit.AutoExecutor``."""
        import submitit

        ex = submitit.AutoExecutor(folder=str(self.folder / "%j"), cluster=self.cluster)
        params = dict(name="superb-sweep", timeout_min=self.timeout_min, gpus_per_node=self.gpus_per_node,
                      cpus_per_task=self.cpus_per_task, mem_gb=self.mem_gb, nodes=1, tasks_per_node=1)
        if self.partition:
            params["slurm_partition"] = self.partition
        params.update({k if k.startswith("slurm_") else f"slurm_{k}": v for k, v in self.extra.items()})
        if ex.cluster == "local":  # the local executor only knows the generic keys it can honour
            params = {k: v for k, v in params.items() if k in {"name", "timeout_min", "gpus_per_node", "nodes", "tasks_per_node"}}
        ex.update_parameters(**params)
        return ex

    def run(self, plans: List[RunPlan], on_outcome: OnOutcome) -> List[RunOutcome]:
        """Submit one job per plan, then wait and report outcomes as jobs finish."""
        from upstream_merged.superb.slurm_job import RunJob

        if not plans:
            return []
        ex = self.executor()
        pending = []
        for plan in plans:
            job = ex.submit(RunJob(), plan)
            logger.info("submitted %s as job %s (logs %s)", plan.run_id, job.job_id, job.paths.stdout.parent)
            pending.append((plan, job))
        outcomes = []
        while pending:
            still = []
            for plan, job in pending:
                if not job.done():
                    still.append((plan, job))
                    continue
                try:
                    outcome = job.result()
                except Exception as err:  # the job itself died (timeout without requeue, node failure, OOM kill)
                    outcome = RunOutcome(run_id=plan.run_id, entry=plan.entry, task=plan.task, seed=plan.seed,
                                         status="failed", log=str(job.paths.stderr),
                                         message=f"job {job.job_id} failed: {str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__}")
                outcomes.append(outcome)
                on_outcome(outcome)
            pending = still
            if pending:
                time.sleep(self.poll_seconds)
        return outcomes
