"""One run = train then evaluate with the stock s3prl script; finished runs are skipped, interrupted ones resumed."""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import subprocess
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, List, Literal, Optional

from upstream_merged.core.atomic import write_text_atomically
from upstream_merged.superb.commands import RunPlan, evaluate_command, shell_line, train_command
from upstream_merged.superb.results import MetricNotFound, parse_metric

logger = logging.getLogger(__name__)

DONE = "DONE.json"  # written only after evaluate succeeded and its metric was parsed
TRAINED = "TRAINED"  # training returned 0 and left the checkpoint to evaluate
FAILED = "FAILED.json"
LOCK = ".lock"  # held (flock) by the process running the run and by its stock subprocess
TRAIN_LOG = "train.log"
EVALUATE_LOG = "evaluate.log"
COMMANDS = "commands.sh"
_record_lock = threading.Lock()

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its metric, or the log to read when it failed."""

    run_id: str
    entry: str
    task: str
    seed: int
    status: Status
    value: Optional[float] = None
    log: Optional[str] = None
    message: str = ""
    seconds: float = 0.0


class RunFailed(RuntimeError):
    """A step of a run failed; ``log`` is the file to read."""

    def __init__(self, message: str, log: Path):
        super().__init__(message)
        self.log = log


def run_state(plan: RunPlan) -> str:
    """``done`` | ``trained`` | ``interrupted`` (a states-*.ckpt to resume) | ``new``."""
    if (plan.run_dir / DONE).is_file():
        return "done"
    if not plan.train:
        return "new"
    if (plan.run_dir / TRAINED).is_file():
        return "trained"
    return "interrupted" if last_states_checkpoint(plan.expdir) is not None else "new"


def last_states_checkpoint(expdir: Path) -> Optional[Path]:
    """The newest complete ``states-<step>.ckpt`` (a torch zip whose central directory was written), if any."""
    found = []
    for path in expdir.glob("states-*.ckpt"):
        match = re.fullmatch(r"states-(\d+)\.ckpt", path.name)
        if match:
            found.append((int(match.group(1)), path))
    for _, path in sorted(found, reverse=True):
        if zipfile.is_zipfile(path):  # a save killed half-way has no end-of-central-directory record
            return path
        logger.warning("ignoring incomplete checkpoint %s (the run was killed while saving it)", path)
    return None


def record_command(plan: RunPlan, argv: List[str]) -> None:
    """Append the exact command to the run's cmd.txt and the sweep's commands.sh."""
    line = shell_line(plan, argv) + "\n"
    with _record_lock:
        with open(plan.run_dir / "cmd.txt", "a") as f:
            f.write(line)
        commands = plan.sweep_dir / COMMANDS
        with open(commands, "a") as f:  # O_APPEND: whole lines even from parallel processes
            f.write(f"# {plan.run_id}\n{line}")


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[Optional[int]]:
    """An exclusive flock on ``run_dir/.lock``: yields its fd, or None when another process holds it.

    The fd is passed to the stock subprocess, so the lock lives as long as the training does, even when
    the sweep driver that started it was killed.
    """
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield fd
    finally:
        os.close(fd)


def _launch(plan: RunPlan, argv: List[str], log: Path, lock_fd: int) -> None:
    """Run one stock command, output appended to ``log``; raise RunFailed on a non-zero exit."""
    record_command(plan, argv)
    with open(log, "a") as f:
        f.write(f"## {shell_line(plan, argv)}\n")
        f.flush()
        try:
            proc = subprocess.Popen(argv, cwd=str(plan.run_dir), stdout=f, stderr=subprocess.STDOUT,
                                    env={**os.environ, **plan.env}, pass_fds=(lock_fd,))
        except OSError as err:
            raise RunFailed(f"cannot start {argv[0]}: {err}", log) from err
        code = proc.wait()
    if code != 0:
        mode = argv[argv.index("-m") + 1] if "-m" in argv else "run"
        reason = last_error_line(log)
        from upstream_merged.registry import hook_problem, unseen_plugin_name

        if unseen_plugin_name(reason):
            problem = hook_problem(argv[0], cwd=str(plan.run_dir), env={**os.environ, **plan.env})
            reason += f" ({problem})" if problem else ""
        raise RunFailed(f"run_downstream.py -m {mode} exited with {code}: {reason}", log)


def last_error_line(log: Path) -> str:
    """The last non-progress-bar line of a log (usually the exception), for the one-line failure report."""
    lines = [ln.rsplit("\r", 1)[-1].strip() for ln in log.read_text(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("## ") and "it/s]" not in ln and "s/it]" not in ln]
    return lines[-1][:300] if lines else "(empty log)"


def _write_json(path: Path, data: dict) -> None:
    write_text_atomically(path, json.dumps(data, indent=1))


def read_done(plan_dir: Path) -> Optional[dict]:
    """The DONE record of a run directory, or None."""
    path = plan_dir / DONE
    return json.loads(path.read_text()) if path.is_file() else None


def execute_run(plan: RunPlan) -> RunOutcome:
    """Train (or resume) then evaluate one run; never raises for a failed run, returns its outcome."""
    start = time.monotonic()
    base = dict(run_id=plan.run_id, entry=plan.entry, task=plan.task, seed=plan.seed)
    done = read_done(plan.run_dir)
    if done is not None:
        return RunOutcome(**base, status="skipped", value=done["value"], log=done["log"], message="finished before")
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(plan.run_dir) as lock_fd:
        if lock_fd is None:
            return RunOutcome(**base, status="failed", log=str(plan.run_dir / TRAIN_LOG),
                              message=f"already running in another process (it holds {plan.run_dir / LOCK})")
        return _execute_locked(plan, lock_fd, base, start)


def _execute_locked(plan: RunPlan, lock_fd: int, base: dict, start: float) -> RunOutcome:
    if (plan.run_dir / DONE).is_file():  # finished while we waited for the lock
        done = read_done(plan.run_dir)
        return RunOutcome(**base, status="skipped", value=done["value"], log=done["log"], message="finished before")
    (plan.run_dir / FAILED).unlink(missing_ok=True)
    note = ""
    try:
        if plan.train and not (plan.run_dir / TRAINED).is_file():
            resume = last_states_checkpoint(plan.expdir)
            if resume is not None:
                logger.info("%s: resuming from %s", plan.run_id, resume)
                note = f"resumed from {resume.name}"
            _launch(plan, train_command(plan, resume), plan.run_dir / TRAIN_LOG, lock_fd)
            if not (plan.expdir / plan.checkpoint).is_file():
                raise RunFailed(f"training finished without {plan.expdir / plan.checkpoint}; "
                                "set the task's 'checkpoint' to a file the config saves", plan.run_dir / TRAIN_LOG)
            (plan.run_dir / TRAINED).write_text(str(plan.expdir / plan.checkpoint) + "\n")
        log = plan.run_dir / EVALUATE_LOG
        log.unlink(missing_ok=True)  # the metric is parsed from this evaluation only
        _launch(plan, evaluate_command(plan), log, lock_fd)
        value = None
        if plan.metric is not None or plan.metric_regex is not None:
            try:
                value = parse_metric(log.read_text(errors="replace"), plan.split, plan.metric or "", plan.metric_regex)
            except MetricNotFound as err:
                raise RunFailed(f"{err} in {log}", log) from None
    except RunFailed as err:
        seconds = time.monotonic() - start
        _write_json(plan.run_dir / FAILED, {"message": str(err), "log": str(err.log)})
        return RunOutcome(**base, status="failed", log=str(err.log), message=str(err), seconds=seconds)
    seconds = time.monotonic() - start
    _write_json(plan.run_dir / DONE, {**base, "value": value, "metric": plan.metric, "split": plan.split,
                                      "checkpoint": str(plan.expdir / plan.checkpoint) if plan.train else None,
                                      "log": str(log),
                                      "seconds": round(seconds, 1)})
    return RunOutcome(**base, status="done", value=value, log=str(log), message=note, seconds=seconds)


def outcome_dict(outcome: RunOutcome) -> dict:
    """A RunOutcome as plain data."""
    return asdict(outcome)
