"""SUPERB workflow: sweep entries x tasks x seeds with the stock s3prl runner, tabulate, package a submission.

    from upstream_merged.superb import load_spec, run_sweep, collect
    table = run_sweep(load_spec("sweep.yaml"))           # local, sequential
    table = collect("sweeps/tiny")                      # re-read a sweep directory
"""
from upstream_merged.superb.executors import LocalExecutor, SlurmExecutor
from upstream_merged.superb.results import SweepTable, collect, write_results
from upstream_merged.superb.runner import RunOutcome, execute_run
from upstream_merged.superb.spec import SweepSpec, load_spec, parse_spec
from upstream_merged.superb.sweep import run_sweep

__all__ = ["LocalExecutor", "SlurmExecutor", "SweepTable", "collect", "write_results", "RunOutcome", "execute_run",
           "SweepSpec", "load_spec", "parse_spec", "run_sweep"]
