"""The callable submitit runs on a node: one sweep run, requeued on timeout/preemption and then resumed."""
from __future__ import annotations

import submitit

from upstream_merged.superb.commands import RunPlan
from upstream_merged.superb.runner import RunOutcome, execute_run


class RunJob(submitit.helpers.Checkpointable):
    """``execute_run`` as a submitit job; on timeout submitit requeues the same call, which resumes from states-*.ckpt."""

    def __call__(self, plan: RunPlan) -> RunOutcome:
        return execute_run(plan)
