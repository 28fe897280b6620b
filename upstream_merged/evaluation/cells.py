"""Cells of an evidence table: one row (an upstream) on one task, every seed, run once and saved for reuse.

A frozen row is probed on cached features (``features`` + ``probe``: extraction once, one converged
probe per seed); a fine-tuned row (``-f``) is a stock ``run_downstream.py`` train + evaluate per seed;
the chance row predicts the training set's majority class. Each cell's per-seed, per-clip correctness
is written to ``WORK/results/<row>-<task>-<key>.json`` (the key covers the row, the task's -d/-c/-o, the
budget and the weights it reads), so a rerun skips finished cells and an interrupted table continues. The
key names the -c and -g files and the data by content, not location: cells unpacked into another clone, home or
sets root are reused.
Cells run in spawned worker processes, one torch thread each.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from upstream_merged.core.atomic import write_text_atomically

log = logging.getLogger(__name__)

RESULT_FORMAT = 1
# 2: the -c file by name and content, data paths by their set's clips.jsonl (evalsets.set_identity)
KEY_FORMAT = 2
RUN_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
UNWEIGHTED_KINDS = ("chance", "hand")  # rows that read no shipped weights
# -f cells share one memo of the frozen backbones' hidden states (fusion/memo.py). 2: a memo read replays the
# forward's RNG draws (a run no longer depends on how warm the memo is) and clips are stored from their 2nd read.
FROZEN_MEMO_FORMAT = 2
# Clips are written from their second read, counted across runs (a 500-step run reads a training clip at most
# once): stock datasets crop some clips anew on every read (voxceleb1's training utterances, speech_commands'
# _silence_ from background noise, a twelfth of its batches); such crops never recur, and storing them filled
# gigabytes. How many reads it took does not change a result: a memo read equals the forward it replaces.
MEMO_STORE_AFTER = 2


@dataclass(frozen=True)
class Row:
    """One upstream of a table: label, ``-u`` entry, ``-k`` (ckpt) and ``-g`` (model_config), what it is, how it runs."""

    label: str
    entry: str
    kind: str  # chance | hand | random | encoder | merge | sweep | finetune | snapshot
    title: str
    paper_id: Optional[int] = None
    ckpt: Optional[str] = None
    finetune: bool = False
    alpha: Optional[float] = None
    aligned: Optional[bool] = None
    model_config: Optional[str] = None  # -g (s3prl's baseline_local reads its feature config from it)


@dataclass(frozen=True)
class Profile:
    """Seeds and budgets: the converging probe's arguments (Schedule.converge) and the stock -f step budget."""

    name: str
    seeds: Tuple[int, ...]
    probe: dict
    finetune_steps: int
    finetune_eval_step: int

    def budget_of(self, row: "Row") -> dict:
        """The part of the profile a row's cells read: the -f step budget, or the probe's schedule."""
        if row.finetune:
            return {"name": self.name, "seeds": list(self.seeds), "finetune_steps": self.finetune_steps,
                    "finetune_eval_step": self.finetune_eval_step, "frozen_memo": FROZEN_MEMO_FORMAT}
        return {"name": self.name, "seeds": list(self.seeds), "probe": dict(self.probe)}


@dataclass(frozen=True)
class Job:
    """One row on one task (an evalsets.DomainTask) under a profile; results live under ``work``."""

    row: Row
    task: object
    profile: Profile
    work: str

    @property
    def key(self) -> Tuple[str, str]:
        """(row label, task name)."""
        return self.row.label, self.task.name

    @property
    def result_path(self) -> Path:
        """Where the cell's per-seed results are saved (reused on a rerun)."""
        from upstream_merged.cache import content_key

        row = asdict(self.row)
        if self.row.ckpt and Path(self.row.ckpt).is_relative_to(self.work):
            # an α-sweep recipe the tool wrote under its work dir: its content is in "weights", and naming it
            # relative to the work dir lets unpacked cells be reused under another home or --work-dir
            row["ckpt"] = str(Path("WORK") / Path(self.row.ckpt).relative_to(self.work))
        if self.row.model_config and Path(self.row.model_config).is_file():
            row["model_config"] = portable_file(Path(self.row.model_config))  # the mfcc row's -g, from any checkout
        material = {"format": RESULT_FORMAT, "key_format": KEY_FORMAT, "row": row, "task": portable_task(self.task.run),
                    "profile": self.profile.budget_of(self.row), "weights": weights_read(self.row)}
        return Path(self.work) / "results" / f"{self.row.label}-{self.task.name}-{content_key(material)}.json"


def portable_task(run) -> dict:
    """A task's -d/-c/-o as a cell key reads it: the -c file by name and sha256, data paths by their set's content."""
    from upstream_merged.evaluation.evalsets import DATA_KEY_SUFFIXES, set_identity

    task = asdict(run)
    config = Path(run.config)
    task["config"] = portable_file(config) if config.is_file() else str(config)
    task["overrides"] = {k: set_identity(v) if k.endswith(DATA_KEY_SUFFIXES) else v for k, v in run.overrides.items()}
    return task


def portable_file(path: Path) -> str:
    """A config file as a cell key names it: its name and sha256, not where the checkout is."""
    from upstream_merged.pretrained import file_sha256

    return f"{path.name}:{file_sha256(path)}"


def weights_read(row: Row) -> str:
    """Digest of the weights a row reads: its -k directory's files, else the shipped small encoders (or none).

    A -k recipe file (the α-sweep rows) adds its content's sha256: its mtime would not survive a tarball
    (tar keeps whole seconds), and its content is all the merge reads besides the shipped encoders.
    """
    if row.kind in UNWEIGHTED_KINDS:
        return ""
    if row.ckpt and Path(row.ckpt).is_dir():
        return directory_digest(Path(row.ckpt))
    if row.ckpt:
        from upstream_merged.pretrained import file_sha256

        return shipped_weights_digest() + file_sha256(Path(row.ckpt))
    return shipped_weights_digest()


def directory_digest(directory: Path) -> str:
    """sha256 over the names, sizes and mtimes of a directory's files (cheap; weights files are rewritten, not edited)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def shipped_weights_digest() -> str:
    """sha256 over the shipped small encoders' files (new shipped weights make new results)."""
    from upstream_merged.pretrained import SHIPPED, file_sha256, shipped_dir

    digest = hashlib.sha256()
    for name in sorted(SHIPPED):
        for path in sorted(p for p in shipped_dir(name).iterdir() if p.is_file()):
            digest.update(f"{name}/{path.name}:{file_sha256(path)}\n".encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- one cell
def run_job(job: Job) -> dict:
    """Run (or reuse) one cell: {"row", "task", "seeds": [{seed, correct, accuracy, ...}], "seconds", ...}."""
    path = job.result_path
    if path.is_file():
        return json.loads(path.read_text())
    import torch

    from upstream_merged.evaluation.run import setup_from

    torch.set_num_threads(1)
    os.environ.update(RUN_ENV)
    start = time.monotonic()
    setup = setup_from(job.task.run.downstream, job.task.run.config, dict(job.task.run.overrides),
                       expdir=Path(job.work) / "expdirs" / f"{job.row.label}-{job.task.name}")
    extract = 0.0
    if job.row.kind == "chance":
        seeds = [chance_result(setup)]
    elif job.row.finetune:
        seeds = finetune_results(job)
    else:
        seeds, extract = probe_results(job, setup)
    out = {"row": job.row.label, "task": job.task.name, "seeds": seeds, "extract_seconds": round(extract, 1),
           "seconds": round(time.monotonic() - start, 1)}
    write_text_atomically(path, json.dumps(out))
    return out


def chance_result(setup) -> dict:
    """The chance row: the training set's majority class for every test clip."""
    from upstream_merged.evaluation.claims import chance_correctness

    correct = chance_correctness([c.label for c in setup.clips("train")], {c.uid: c.label for c in setup.clips("test")})
    return {"seed": 0, "correct": correct, "accuracy": sum(correct.values()) / len(correct)}


def probe_results(job: Job, setup) -> Tuple[List[dict], float]:
    """Cached features of the row's upstream (extracted on first use), then one converged probe per seed."""
    from upstream_merged.evaluation.features import Upstream, cached_splits
    from upstream_merged.evaluation.probe import Schedule, train_probe

    upstream = Upstream(job.row.entry, ckpt=job.row.ckpt, model_config=job.row.model_config)
    start = time.monotonic()
    features = cached_splits(upstream, setup, progress=False)
    extract = time.monotonic() - start
    schedule = Schedule.converge(**job.profile.probe)
    out = []
    for seed in job.profile.seeds:
        result = train_probe(setup, features, seed, schedule, entry=job.row.entry)
        out.append({"seed": seed, "correct": result.correct(), "accuracy": result.test_accuracy.value,
                    "steps": result.steps, "best_step": result.best_step, "dev_accuracy": result.dev_accuracy,
                    "seconds": result.seconds, "layer_weights": result.layer_weights})
    return out, extract


def finetune_results(job: Job) -> List[dict]:
    """Stock ``run_downstream.py -f`` train + evaluate per seed, on the profile's step budget."""
    from upstream_merged.evaluation.validate import dev_best, run_stock
    from upstream_merged.fusion.memo import MEMO_ENV, STORE_AFTER_ENV

    budgeted = job.task.run.with_budget(job.profile.finetune_steps, job.profile.finetune_eval_step)
    sweep = Path(job.work) / "stock" / job.result_path.stem
    # every -f row, seed and task forwards a clip through a frozen encoder once: later runs read the memo
    env = {**RUN_ENV, MEMO_ENV: str(Path(job.work) / "frozen_memo"), STORE_AFTER_ENV: str(MEMO_STORE_AFTER)}
    out = []
    for seed in job.profile.seeds:
        run = run_stock(job.row.entry, budgeted, seed, sweep, env=env, ckpt=job.row.ckpt,
                        model_config=job.row.model_config, finetune=True)
        out.append({"seed": seed, "correct": run.correct, "accuracy": sum(run.correct.values()) / len(run.correct),
                    "printed_accuracy": run.printed_accuracy, "seconds": run.seconds,
                    "steps": job.profile.finetune_steps, "dev_curve": run.dev_curve,
                    "best_step": (dev_best(run.dev_curve) or (None,))[0]})
    return out


# ----------------------------------------------------------------------------- many cells
def _run_in_worker(job: Job) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    return run_job(job)


def _conflicts(job: Job, built: set) -> set:
    """What a cell must not share with a running cell: its upstream's first build, and its feature extraction.

    A cell waiting on another's file lock (the same merge being built, the same audio being extracted)
    would hold a worker idle, so such cells are kept apart instead.
    """
    upstream = (job.row.entry, job.row.ckpt, job.row.model_config)
    keys = set() if upstream in built else {("build",) + upstream}
    if not job.row.finetune and job.row.kind != "chance":
        from upstream_merged.evaluation.evalsets import data_paths

        keys |= {("extract",) + upstream + (path,) for path in data_paths(job.task)}
    return keys


def run_jobs(jobs: Sequence[Job], workers: int = 2) -> Dict[Tuple[str, str], dict]:
    """Every cell, ``workers`` at a time; finished cells are read back, not rerun.

    Fine-tuned (longest) cells start first, then the rest in the given order. A cell starts only when no
    running cell builds its upstream for the first time or extracts the same upstream's features from the
    same data (NSynth pitch and instrument share one extraction), so no worker waits on another's lock.
    A failing cell is logged and left without a result (a rerun retries it); the others still run.
    """
    done: Dict[Tuple[str, str], dict] = {}
    pending: List[Job] = []
    for job in jobs:
        if job.result_path.is_file():
            done[job.key] = json.loads(job.result_path.read_text())
        else:
            pending.append(job)
    log.info("%d of %d cells already done; running %d, %d at a time", len(done), len(jobs), len(pending), workers)
    pending.sort(key=lambda job: not job.row.finetune)  # stable: the given order within each kind
    start, total = time.monotonic(), len(pending)
    built: set = set()
    finished = 0

    def settle(job: Job, outcome) -> None:
        nonlocal finished
        built.add((job.row.entry, job.row.ckpt, job.row.model_config))
        if isinstance(outcome, BaseException):
            log.error("%s on %s failed: %s: %s", job.row.label, job.task.name, type(outcome).__name__, outcome)
            return
        finished += 1
        done[job.key] = outcome
        log.info("[%d/%d] %s on %s: %.0f s (%.0f s elapsed)", finished, total, job.row.label, job.task.name,
                 outcome["seconds"], time.monotonic() - start)

    def next_ready(running: Dict[object, Tuple[Job, set]]) -> Optional[Job]:
        busy = set().union(*(keys for _, keys in running.values())) if running else set()
        for index, job in enumerate(pending):
            if not _conflicts(job, built) & busy:
                return pending.pop(index)
        return None

    if workers <= 1:
        while pending:
            job = pending.pop(0)
            try:
                settle(job, run_job(job))
            except Exception as error:  # noqa: BLE001
                settle(job, error)
        return done
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        running: Dict[object, Tuple[Job, set]] = {}
        while pending or running:
            while len(running) < workers:
                job = next_ready(running)
                if job is None:
                    break
                running[pool.submit(_run_in_worker, job)] = (job, _conflicts(job, built))
            finished_now, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished_now:
                job, _ = running.pop(future)
                try:
                    settle(job, future.result())
                except Exception as error:  # noqa: BLE001
                    settle(job, error)
    return done


def read_done(jobs: Sequence[Job]) -> Dict[Tuple[str, str], dict]:
    """The finished cells among ``jobs`` (for writing a table from what exists)."""
    return {job.key: json.loads(job.result_path.read_text()) for job in jobs if job.result_path.is_file()}
