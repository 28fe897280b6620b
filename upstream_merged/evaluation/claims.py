"""Table I scores with chance correction, their paired bootstrap, and verdicts on the paper's claims.

Every row of the table is a set of per-clip correctness maps: ``results[row][task]`` holds one
``{clip id: correct}`` map per probe seed, all rows of a task on the same test clips. A row's accuracy on
a task is its mean over seeds and clips; its Table I score is chance-corrected,

    score = 1000 * (acc - chance) / (reference - chance),

where ``chance`` is the chance row's accuracy (the training set's majority class predicted for every
test clip) and ``reference`` the accuracy of the encoder of the task's domain (the speech encoder on
speech tasks, the music encoder on music tasks), so the reference scores 1000 and chance 0. The speech
and music scores are the means over their tasks, the average the mean of the two.

:meth:`Evidence.draws` resamples all of this jointly: per task the same test clips for every row, and per
row its own probe seeds (with replacement), the chance row and the references included, so a
difference of two rows' scores is paired over clips and covers probe-training noise. A
:class:`Claim` turns the resampled difference into a verdict: *supported* when the 95% interval lies on
the claimed side of its margin, *contradicted* when it lies entirely on the other side, *undecided*
otherwise.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

GROUPS = ("speech", "music")
SCALE = 1000.0
MIN_REFERENCE_MARGIN = 0.02  # reference - chance below this: the task cannot score rows (the reference is at chance)

Results = Mapping[str, Mapping[str, Sequence[Mapping[str, bool]]]]  # row -> task -> per-seed {clip id: correct}


@dataclass(frozen=True)
class TaskGroup:
    """A task of the table and the domain it scores in (speech | music)."""

    name: str
    group: str

    def __post_init__(self):
        if self.group not in GROUPS:
            raise ValueError(f"task {self.name}: group {self.group!r} is not one of {GROUPS}")


def chance_correctness(train_labels: Sequence[int], test: Mapping[str, int]) -> Dict[str, bool]:
    """{clip id: correct} of the chance row: the training set's most frequent class predicted for every test clip."""
    if not train_labels:
        raise ValueError("the chance row needs the training labels (got none)")
    values, counts = np.unique(np.asarray(train_labels), return_counts=True)
    majority = int(values[np.argmax(counts)])
    return {uid: int(label) == majority for uid, label in test.items()}


def chance_corrected(acc: float, chance: float, reference: float) -> float:
    """1000 (acc - chance) / (reference - chance); NaN when the reference is within 0.02 of chance."""
    if reference - chance < MIN_REFERENCE_MARGIN:
        return float("nan")
    return SCALE * (acc - chance) / (reference - chance)


class Evidence:
    """Per-clip correctness of every row on every task, aligned on the test clips, and the scores built from it."""

    def __init__(self, results: Results, tasks: Sequence[TaskGroup], references: Mapping[str, str],
                 chance: str = "chance"):
        self.tasks = list(tasks)
        self.references = dict(references)
        self.chance = chance
        missing_groups = [g for g in {t.group for t in self.tasks} if g not in self.references]
        if missing_groups:
            raise ValueError(f"no reference row for group(s) {missing_groups} (references: {self.references})")
        self.clips: Dict[str, List[str]] = {}
        self.flags: Dict[str, Dict[str, np.ndarray]] = {}  # row -> task -> (seeds, clips) bool
        for task in self.tasks:
            if task.name not in results.get(chance, {}):
                raise ValueError(f"the chance row {chance!r} has no result on task {task.name}")
            ids = sorted(results[chance][task.name][0])
            self.clips[task.name] = ids
            for row, per_task in results.items():
                runs = per_task.get(task.name)
                if not runs:
                    continue
                matrix = []
                for run in runs:
                    if set(run) != set(ids):
                        only_row, only_chance = sorted(set(run) - set(ids)), sorted(set(ids) - set(run))
                        raise ValueError(f"row {row} on {task.name} covers other clips than the chance row: "
                                         f"{len(only_row)} extra ({only_row[:3]}), {len(only_chance)} missing "
                                         f"({only_chance[:3]}); every row must be tested on the same clips")
                    matrix.append([bool(run[uid]) for uid in ids])
                self.flags.setdefault(row, {})[task.name] = np.asarray(matrix, dtype=bool)
        for group in {t.group for t in self.tasks}:
            reference = self.references[group]
            lacking = [t.name for t in self.tasks if t.group == group and t.name not in self.flags.get(reference, {})]
            if lacking:
                raise ValueError(f"reference row {reference!r} ({group}) has no result on {lacking}")

    @property
    def rows(self) -> List[str]:
        """Rows with at least one task, in the order given."""
        return list(self.flags)

    def covers(self, row: str, scope: str) -> bool:
        """Whether ``row`` has a result on every task of ``scope`` (a group, ``average`` or one task's name)."""
        names = [t.name for t in self.tasks if scope in ("average", t.group, t.name)]
        return bool(names) and all(name in self.flags.get(row, {}) for name in names)

    def seeds(self, row: str, task: str) -> int:
        """Probe seeds of a row on a task (0 when it was not run)."""
        flags = self.flags.get(row, {}).get(task)
        return 0 if flags is None else int(flags.shape[0])

    def accuracy(self, row: str, task: str) -> Optional[float]:
        """Mean test accuracy over seeds (None when the row did not run the task)."""
        flags = self.flags.get(row, {}).get(task)
        return None if flags is None else float(flags.mean())

    def seed_accuracies(self, row: str, task: str) -> List[float]:
        """Test accuracy of each seed."""
        flags = self.flags.get(row, {}).get(task)
        return [] if flags is None else [float(f.mean()) for f in flags]

    def scores(self, row: str) -> Dict[str, float]:
        """Chance-corrected score per task, per group and on average (NaN where a task or group is missing)."""
        accs = {t.name: self.accuracy(row, t.name) for t in self.tasks}
        chance = {t.name: self.accuracy(self.chance, t.name) for t in self.tasks}
        refs = {t.name: self.accuracy(self.references[t.group], t.name) for t in self.tasks}
        per_task = {t.name: (float("nan") if accs[t.name] is None
                             else chance_corrected(accs[t.name], chance[t.name], refs[t.name])) for t in self.tasks}
        return _aggregate(per_task, self.tasks)

    def draws(self, rows: Sequence[str], resamples: int = 2000, seed: int = 0) -> Dict[str, Dict[str, np.ndarray]]:
        """Bootstrap draws (``resamples`` each) of every score of ``rows``, clips shared across rows, seeds per row."""
        rng = np.random.default_rng(seed)
        needed = list(dict.fromkeys([*rows, self.chance, *self.references.values()]))
        unknown = [r for r in needed if r not in self.flags]
        if unknown:
            raise ValueError(f"no results for row(s) {unknown}")
        accs: Dict[str, Dict[str, np.ndarray]] = {r: {} for r in needed}
        for task in self.tasks:
            n = len(self.clips[task.name])
            clip_draws = rng.integers(0, n, size=(resamples, n))
            for row in needed:
                flags = self.flags[row].get(task.name)
                if flags is None:
                    accs[row][task.name] = np.full(resamples, np.nan)
                    continue
                accs[row][task.name] = _resampled_accuracy(flags.astype(np.float32), clip_draws, rng)
        out = {}
        for row in rows:
            per_task = {}
            for task in self.tasks:
                chance = accs[self.chance][task.name]
                reference = accs[self.references[task.group]][task.name]
                denominator = reference - chance
                with np.errstate(invalid="ignore", divide="ignore"):
                    score = SCALE * (accs[row][task.name] - chance) / denominator
                per_task[task.name] = np.where(denominator < MIN_REFERENCE_MARGIN, np.nan, score)
            out[row] = _aggregate(per_task, self.tasks)
        return out


def _resampled_accuracy(flags: np.ndarray, clip_draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Accuracy under each resample: the row's seeds drawn with replacement, then the resample's clips."""
    seeds = flags.shape[0]
    out = np.empty(clip_draws.shape[0])
    for start in range(0, clip_draws.shape[0], 128):  # bounded (chunk, seeds, clips) arrays
        stop = min(start + 128, clip_draws.shape[0])
        seed_draws = rng.integers(0, seeds, size=(stop - start, seeds))
        per_clip = flags[seed_draws].mean(axis=1)  # (chunk, clips)
        out[start:stop] = np.take_along_axis(per_clip, clip_draws[start:stop], axis=1).mean(axis=1)
    return out


def _aggregate(per_task: Mapping[str, object], tasks: Sequence[TaskGroup]):
    """Per-task scores plus group means and their average (floats or arrays alike; NaN propagates)."""
    out = dict(per_task)
    groups = [g for g in GROUPS if any(t.group == g for t in tasks)]
    for group in groups:
        members = [per_task[t.name] for t in tasks if t.group == group]
        out[group] = sum(members) / len(members)
    out["average"] = sum(out[g] for g in groups) / len(groups)
    return out


# ----------------------------------------------------------------------------- claims
SUPPORTED, CONTRADICTED, UNDECIDED, NOT_RUN = "supported", "contradicted", "undecided", "not run"


@dataclass(frozen=True)
class Claim:
    """A claim about two rows' scores on ``scope`` (a group, 'average' or a task).

    ``kind``: ``greater`` (a - b > margin), ``equivalent`` (|a - b| < margin) or ``below`` (a - b < -margin).
    """

    key: str
    text: str
    a: str
    b: str
    scope: str
    kind: str
    margin: float = 0.0
    paper: str = ""

    def __post_init__(self):
        if self.kind not in ("greater", "equivalent", "below"):
            raise ValueError(f"claim {self.key}: kind {self.kind!r} is not greater, equivalent or below")
        if self.kind == "equivalent" and self.margin <= 0:
            raise ValueError(f"claim {self.key}: an equivalence claim needs a margin > 0")


@dataclass(frozen=True)
class Verdict:
    """A claim's measured difference a - b (points on the 1000 scale), its 95% interval and the verdict."""

    claim: Claim
    difference: float
    low: float
    high: float
    verdict: str
    resamples: int

    def as_dict(self) -> dict:
        """Plain data (JSON)."""
        out = asdict(self)
        out["claim"] = asdict(self.claim)
        return out


def judge(kind: str, margin: float, low: float, high: float) -> str:
    """Verdict of an interval [low, high] of a - b for a claim kind and margin."""
    if math.isnan(low) or math.isnan(high):
        return UNDECIDED
    if kind == "greater":
        return SUPPORTED if low > margin else CONTRADICTED if high < margin else UNDECIDED
    if kind == "below":
        return SUPPORTED if high < -margin else CONTRADICTED if low > -margin else UNDECIDED
    inside = -margin < low and high < margin
    outside = low >= margin or high <= -margin
    return SUPPORTED if inside else CONTRADICTED if outside else UNDECIDED


def evaluate_claims(evidence: Evidence, claims: Sequence[Claim], resamples: int = 2000, seed: int = 0,
                    confidence: float = 0.95) -> List[Verdict]:
    """Each claim's difference, its paired bootstrap interval and its verdict.

    'not run' when a row of the claim has no result on some task of the claim's scope (a partial table
    decides no claim on a subset of its tasks).
    """
    present = [c for c in claims if evidence.covers(c.a, c.scope) and evidence.covers(c.b, c.scope)]
    rows = list(dict.fromkeys(r for c in present for r in (c.a, c.b)))
    draws = evidence.draws(rows, resamples=resamples, seed=seed) if rows else {}
    tail = 100 * (1 - confidence) / 2
    out = []
    for claim in claims:
        if claim not in present:
            out.append(Verdict(claim, float("nan"), float("nan"), float("nan"), NOT_RUN, 0))
            continue
        point = evidence.scores(claim.a)[claim.scope] - evidence.scores(claim.b)[claim.scope]
        diff = draws[claim.a][claim.scope] - draws[claim.b][claim.scope]
        diff = diff[~np.isnan(diff)]
        if diff.size < resamples // 2:
            out.append(Verdict(claim, float(point), float("nan"), float("nan"), UNDECIDED, int(diff.size)))
            continue
        low, high = np.percentile(diff, [tail, 100 - tail])
        out.append(Verdict(claim, float(point), float(low), float(high),
                           judge(claim.kind, claim.margin, float(low), float(high)), int(diff.size)))
    return out


def score_intervals(evidence: Evidence, rows: Sequence[str], resamples: int = 2000, seed: int = 0,
                    confidence: float = 0.95) -> Dict[str, Dict[str, Tuple[float, float]]]:
    """95% bootstrap interval of every score of every row (NaN bounds where undefined)."""
    draws = evidence.draws(rows, resamples=resamples, seed=seed)
    tail = 100 * (1 - confidence) / 2
    out: Dict[str, Dict[str, Tuple[float, float]]] = {}
    for row, scores in draws.items():
        out[row] = {}
        for key, values in scores.items():
            finite = values[~np.isnan(values)]
            out[row][key] = ((float("nan"), float("nan")) if finite.size < len(values) // 2
                             else tuple(float(v) for v in np.percentile(finite, [tail, 100 - tail])))
    return out
