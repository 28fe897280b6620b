"""A whole sweep: plan every run, skip finished ones, execute the rest, collect the results."""
from __future__ import annotations

import logging
from typing import List, Optional

from upstream_merged.superb.commands import RunPlan, evaluate_command, plan_sweep, shell_line, train_command
from upstream_merged.superb.executors import Executor, LocalExecutor
from upstream_merged.superb.results import SPEC_COPY, SweepTable, collect, write_results
from upstream_merged.superb.runner import RunOutcome, last_states_checkpoint, run_state
from upstream_merged.superb.spec import SweepSpec, dump_spec

logger = logging.getLogger(__name__)


def dry_run_lines(plans: List[RunPlan]) -> List[str]:
    """The commands each run would execute now (resume / evaluate-only / skip), as shell lines."""
    lines = []
    for plan in plans:
        state = run_state(plan)
        lines.append(f"# {plan.run_id}: {state}")
        if state == "done":
            continue
        if state != "trained" and plan.train:
            resume = last_states_checkpoint(plan.expdir) if state == "interrupted" else None
            lines.append(shell_line(plan, train_command(plan, resume)))
        lines.append(shell_line(plan, evaluate_command(plan)))
    return lines


def _progress(total: int, done_before: int):
    count = [done_before]

    def report(outcome: RunOutcome) -> None:
        count[0] += 1
        head = f"[{count[0]}/{total}] {outcome.status:7s} {outcome.run_id}"
        if outcome.status == "failed":
            logger.error("%s: %s; log: %s", head, outcome.message, outcome.log)
        else:
            extra = f" ({outcome.message})" if outcome.message else ""
            value = "no metric" if outcome.value is None else f"{outcome.value:.6g}"
            logger.info("%s: %s = %s, %.0f s%s", head, outcome.task, value, outcome.seconds, extra)

    return report


def run_sweep(spec: SweepSpec, executor: Optional[Executor] = None) -> SweepTable:
    """Run every unfinished (entry, task, seed) with ``executor`` (default: local, sequential) and write the results.

    Returns the collected table; its ``runs`` say which runs failed and where their logs are.
    """
    executor = executor or LocalExecutor()
    plans = plan_sweep(spec)
    sweep_dir = spec.sweep_dir
    sweep_dir.mkdir(parents=True, exist_ok=True)
    tmp = sweep_dir / f".{SPEC_COPY}.tmp"
    tmp.write_text(dump_spec(spec.model_copy(update={"output_dir": str(sweep_dir)})))
    tmp.replace(sweep_dir / SPEC_COPY)  # collect() reads this copy
    todo = [p for p in plans if run_state(p) != "done"]
    for i, plan in enumerate(p for p in plans if p not in todo):
        logger.info("[%d/%d] skipped %s (finished before)", i + 1, len(plans), plan.run_id)
    logger.info("sweep %s: %d runs, %d to run", sweep_dir, len(plans), len(todo))
    executor.run(todo, _progress(len(plans), len(plans) - len(todo)))
    table = collect(sweep_dir)
    for path in write_results(table):
        logger.info("wrote %s", path)
    return table

