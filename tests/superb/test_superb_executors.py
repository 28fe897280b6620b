"""A run killed after its first checkpoint resumes (-e states-N.ckpt) and finishes, through submitit's local executor."""
import dataclasses
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest
import yaml

from upstream_merged.superb import SlurmExecutor, run_sweep
from upstream_merged.superb.commands import plan_sweep
from upstream_merged.superb.executors import LocalExecutor
from upstream_merged.superb.runner import last_states_checkpoint, run_state
from upstream_merged.superb.spec import load_spec, parse_spec


def _wait_for_checkpoint(expdir, proc, limit_s=600.0):
    """Poll until the first complete states-*.ckpt exists (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = [p for p in expdir.glob("states-*.ckpt") if zipfile.is_zipfile(p)] if expdir.is_dir() else []
        if found:
            return found
        assert proc.poll() is None, f"the sweep ended before its first checkpoint (exit {proc.returncode})"
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint in {expdir} after {limit_s} s")


def test_killed_run_resumes_and_finishes_through_submitit(tmp_path, speech_commands_root, plugin_cache_env, make_ks_task):
    # 400 steps with a checkpoint every 20 (all kept): long enough to be killed half-way
    task = make_ks_task(speech_commands_root, **{"config.runner.total_steps": 400, "config.runner.save_step": 20,
                                            "config.runner.eval_step": 200, "config.runner.max_keep": 100})
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({"output_dir": "sweep", "device": "cpu", "seeds": [7], "env": plugin_cache_env,
                                         "entries": [{"name": "hubert_tiny"}], "tasks": [task]}))
    spec = load_spec(spec_file)
    plan = plan_sweep(spec)[0]
    proc = subprocess.Popen([sys.executable, "-m", "upstream_merged", "--quiet", "sweep", str(spec_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_checkpoint(plan.expdir, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its stock run_downstream.py child
        proc.wait()
    assert run_state(plan) == "interrupted" and not (plan.run_dir / "DONE.json").exists()
    resume_from = last_states_checkpoint(plan.expdir)
    assert resume_from is not None and resume_from.name != "states-400.ckpt"

    executor = SlurmExecutor(folder=tmp_path / "submitit", cluster="local", gpus_per_node=0, poll_seconds=0.5)
    table = run_sweep(spec, executor)
    assert [r["status"] for r in table.runs] == ["done"]
    train_log = (plan.run_dir / "train.log").read_text()
    assert f"[Runner] - Resume from {resume_from}" in train_log
    assert f"-m train -e {resume_from} --device cpu" in (plan.run_dir / "cmd.txt").read_text()
    assert (plan.expdir / "states-400.ckpt").is_file()
    assert 0.0 <= table.value("hubert_tiny", "ks") <= 1.0
    assert list((tmp_path / "submitit").glob("*/*_result.pkl"))  # it really went through submitit


def test_slurm_parameters_reach_submitit(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit only checks that srun exists
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    executor = SlurmExecutor(folder=tmp_path, cluster="slurm", partition="gpu", gpus_per_node=2, timeout_min=90,
                             cpus_per_task=6, mem_gb=40, extra={"account": "lab"}).executor()
    params = executor._executor.parameters  # submitit's SlurmExecutor keeps what sbatch will receive
    assert (params["partition"], params["gpus_per_node"], params["time"], params["cpus_per_task"]) == ("gpu", 2, 90, 6)
    assert params["mem"] == "40GB" and params["account"] == "lab"


def test_local_executor_refuses_zero_jobs():
    with pytest.raises(ValueError, match="--jobs"):
        LocalExecutor(jobs=0).run([], lambda outcome: None)


def test_failed_runs_and_dead_jobs_are_outcomes_not_exceptions(tmp_path, make_ks_task):
    spec = parse_spec({"output_dir": str(tmp_path / "sweep"), "device": "cpu", "seeds": [0, 1],
                       "entries": [{"name": "hubert_tiny"}], "tasks": [make_ks_task(tmp_path)]})
    plans = plan_sweep(spec)
    spec.sweep_dir.mkdir()
    no_python = dataclasses.replace(plans[0], python=str(tmp_path / "no-python"))  # the run fails to start
    (tmp_path / "file").write_text("")
    dead = dataclasses.replace(plans[1], run_dir=tmp_path / "file" / "run")  # the job itself raises
    outcomes = SlurmExecutor(folder=tmp_path / "submitit", cluster="local", gpus_per_node=0,
                             poll_seconds=0.2).run([no_python, dead], lambda o: None)
    by_seed = {o.seed: o for o in outcomes}
    assert by_seed[0].status == "failed" and "cannot start" in by_seed[0].message
    assert by_seed[0].log == str(no_python.run_dir / "train.log")
    assert by_seed[1].status == "failed" and by_seed[1].message.startswith("job ")
    assert by_seed[1].log.endswith("_log.err") and "NotADirectoryError" in open(by_seed[1].log).read()
