"""SUPERB leaderboard submission: prediction files of finished evaluations -> ``predict/<task>_public/...`` + predict.zip.

The layout and source file names follow s3prl's own tool (``s3prl/submit/submit.py`` in the s3prl repository,
0.4.18): e.g. a KS expdir's ``test_predict.txt`` becomes ``predict/ks_public/predict.txt``. Emotion counts on
the leaderboard only with all five folds (``er_fold1`` .. ``er_fold5``).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deliverable:
    """One file (or directory) a leaderboard task needs: expdir-relative source -> target under ``<task>_public/``."""

    source: str
    target: str
    optional: bool = False


def _one(source: str, target: str) -> List[Deliverable]:
    return [Deliverable(source, target)]


SUBMISSION: Dict[str, List[Deliverable]] = {
    "pr": _one("test-hyp.ark", "predict.ark"),
    "sid": _one("test_predict.txt", "predict.txt"),
    "ks": _one("test_predict.txt", "predict.txt"),
    "ic": _one("test_predict.csv", "predict.csv"),
    **{f"er_fold{i}": _one(f"test_fold{i}_predict.txt", "predict.txt") for i in range(1, 6)},
    "asr": _one("test-clean-noLM-hyp.ark", "predict.ark"),
    "asr_lm": _one("test-clean-LM-hyp.ark", "predict.ark"),
    "qbe": _one("benchmark.stdlist.xml", "benchmark.stdlist.xml"),
    "sf": _one("test-hyp.ark", "predict.ark"),
    "sv": _one("test_predict.txt", "predict.txt"),
    "sd": [Deliverable("scoring/predictions", "scoring/predictions"), Deliverable("frame_shift", "frame_shift", optional=True)],
}


class SubmissionError(ValueError):
    """Something a submission needs is absent; the message names the task and the file."""


def check(expdirs: Mapping[str, Path]) -> None:
    """Refuse unknown task keys and missing prediction files, naming each (task, file)."""
    unknown = sorted(set(expdirs) - set(SUBMISSION))
    if unknown:
        raise SubmissionError(f"unknown leaderboard task(s) {unknown}; valid: {', '.join(SUBMISSION)}")
    if not expdirs:
        raise SubmissionError("nothing to submit: give at least one task's expdir")
    missing = []
    for task, expdir in expdirs.items():
        for item in SUBMISSION[task]:
            if not item.optional and not (Path(expdir) / item.source).exists():
                missing.append(f"task {task}: {Path(expdir) / item.source} not found")
    if missing:
        raise SubmissionError("cannot package the submission (run the evaluation on the test split first):\n  "
                              + "\n  ".join(missing))


def _zip_dir(root: Path, sub: str, zip_path: Path) -> None:
    """Zip ``root/sub`` with paths starting at ``sub/`` (sorted, so the archive is reproducible)."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((root / sub).rglob("*")):
            zf.write(path, path.relative_to(root).as_posix())


def package(expdirs: Mapping[str, Path], out: Path, force: bool = False) -> Path:
    """Copy each task's predictions into ``out/predict/<task>_public/`` and zip them to ``out/predict.zip``.

    Everything is built in a temporary sibling directory and renamed into place: nothing partial is written.
    """
    out = Path(out)
    check(expdirs)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise SubmissionError(f"output {out} exists and is not empty; pass --force to replace it")
    folds = [t for t in expdirs if t.startswith("er_fold")]
    if 0 < len(folds) < 5:
        logger.warning("%s included but not all five folds: the leaderboard scores emotion only with all five", folds)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for task, expdir in sorted(expdirs.items()):
            target_dir = tmp / "predict" / f"{task}_public"
            target_dir.mkdir(parents=True)
            for item in SUBMISSION[task]:
                src, dst = Path(expdir) / item.source, target_dir / item.target
                if item.optional and not src.exists():
                    continue
                dst.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dst)
            logger.info("%s_public included from %s", task, expdir)
        _zip_dir(tmp, "predict", tmp / "predict.zip")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "predict.zip"


def expdirs_from_sweep(sweep_dir: Path, entry: str, seed: Optional[int] = None) -> Dict[str, Path]:
    """Each leaderboard task's expdir from a sweep's finished runs of ``entry`` (refuses unfinished ones)."""
    from upstream_merged.superb.commands import plan_sweep
    from upstream_merged.superb.results import load_sweep_spec
    from upstream_merged.superb.runner import DONE

    spec = load_sweep_spec(Path(sweep_dir))
    labels = [e.key for e in spec.entries]
    if entry not in labels:
        raise SubmissionError(f"entry {entry!r} is not in the sweep {sweep_dir} (entries: {labels})")
    seed = spec.seeds[0] if seed is None else seed
    if seed not in spec.seeds:
        raise SubmissionError(f"seed {seed} is not in the sweep's seeds {spec.seeds}")
    expdirs: Dict[str, Path] = {}
    for plan in plan_sweep(spec):
        if plan.entry != entry or plan.seed != seed:
            continue
        key = spec.task(plan.task).leaderboard_task
        if key is None:
            logger.warning("task %s has no leaderboard key (superb_task); not submitted", plan.task)
            continue
        if key in expdirs:
            raise SubmissionError(f"two tasks map to leaderboard task {key!r} (one is {plan.task}); "
                                  "set superb_task: none on the one not to submit")
        if not (plan.run_dir / DONE).is_file():
            raise SubmissionError(f"task {key} ({plan.task}): run {plan.run_id} is not finished "
                                  f"({plan.run_dir / DONE} not found); finish the sweep first")
        expdirs[key] = plan.expdir
    return expdirs
