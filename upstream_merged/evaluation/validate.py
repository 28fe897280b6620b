"""Does the cached probe score what the stock run scores? One (upstream, task) trained both ways and compared.

The stock path is ``run_downstream.py -m train`` then ``-m evaluate -e dev-best.ckpt -t test``, executed by
the SUPERB sweep runner (``upstream_merged.superb.runner.execute_run``: finished runs are skipped on a rerun);
its per-clip predictions come from the ``test_predict.txt`` / ``test_truth.txt`` the stock expert writes.
The cached path is :func:`upstream_merged.evaluation.probe.train_probe` with the same config, overrides
(step budget, dev interval), optimizer, batch size and seed. The verdict: the stock accuracy lies inside
the cached accuracy's 95% Wilson interval; the paired difference over the same test clips (bootstrap
interval, McNemar) and the cached accuracies of further seeds are reported beside it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from upstream_merged.cache import content_key
from upstream_merged.evaluation.features import Upstream, cached_splits
from upstream_merged.evaluation.probe import Schedule, train_probe
from upstream_merged.evaluation.stats import accuracy, compare_predictions
from upstream_merged.evaluation.tasks import TaskSetup

log = logging.getLogger(__name__)

STOCK_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def package_root() -> Path:
    """The directory holding the upstream_merged package this process imported."""
    import upstream_merged

    return Path(upstream_merged.__file__).resolve().parents[1]


def stock_env() -> Dict[str, str]:
    """Environment of the stock subprocesses: one thread, offline, and this process's upstream_merged first on the path.

    The venv's editable install may point at another checkout (a CI clone); PYTHONPATH makes the stock
    run import the same plugin code as the cached path it is compared with.
    """
    paths = [str(package_root())] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**STOCK_ENV, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


@dataclass(frozen=True)
class TaskRun:
    """A task as a stock run gets it: name, ``-d``, ``-c`` and the ``-o`` keys (data paths and step budget)."""

    name: str
    downstream: str
    config: str
    overrides: Mapping[str, object]

    def with_budget(self, steps: int, eval_step: int) -> "TaskRun":
        """The same task with ``steps`` training steps and dev (only) evaluated every ``eval_step`` steps."""
        budget = {"config.runner.total_steps": steps, "config.runner.eval_step": eval_step,
                  "config.runner.save_step": eval_step, "config.runner.log_step": eval_step,
                  "config.runner.eval_dataloaders": "['dev']"}
        return TaskRun(self.name, self.downstream, self.config, {**self.overrides, **budget})


@dataclass
class StockRun:
    """A finished stock run: test accuracy (as printed and from its prediction files), per-clip correctness, time."""

    printed_accuracy: float
    correct: Dict[str, bool]
    seconds: float
    log: str
    expdir: str
    dev_curve: List[Tuple[int, float]] = field(default_factory=list)


DEV_LINE = re.compile(r"^dev(?: acc)? at step (\d+): ([-+0-9.eE]+)$", re.MULTILINE)


def read_dev_curve(expdir: Path) -> List[Tuple[int, float]]:
    """[(step, dev accuracy)] from the log.log a stock run appends at each dev evaluation (after a resume: last wins)."""
    path = Path(expdir) / "log.log"
    if not path.is_file():
        return []
    return sorted({int(step): float(value) for step, value in DEV_LINE.findall(path.read_text())}.items())


def dev_best(curve: Sequence[Sequence[float]]) -> Optional[Tuple[int, float]]:
    """(step, accuracy) of a dev curve's first maximum, the checkpoint a stock run keeps as dev-best; None if empty."""
    if not curve:
        return None
    step, value = max(curve, key=lambda point: point[1])
    return int(step), float(value)


def read_predictions(expdir: Path, split: str = "test") -> Dict[str, bool]:
    """{clip id: predicted == truth} from the ``<split>_predict.txt`` / ``<split>_truth.txt`` a stock expert writes."""
    def read(name: str) -> Dict[str, str]:
        path = Path(expdir) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the stock evaluate did not write per-clip predictions")
        pairs = [line.rsplit(maxsplit=1) for line in path.read_text().splitlines() if line.strip()]
        return {uid: value for uid, value in pairs}

    predicted, truth = read(f"{split}_predict.txt"), read(f"{split}_truth.txt")
    if set(predicted) != set(truth):
        raise ValueError(f"{expdir}: {split}_predict.txt and {split}_truth.txt name different clips")
    return {uid: predicted[uid] == truth[uid] for uid in truth}


def run_stock(entry: str, task: TaskRun, seed: int, sweep_dir: Path, env: Optional[Mapping[str, str]] = None,
              ckpt: Optional[str] = None, model_config: Optional[str] = None, finetune: bool = False) -> StockRun:
    """Train + evaluate one stock run through the sweep runner (reused when it finished before); ``finetune``: -f."""
    from upstream_merged.superb.commands import plan_sweep
    from upstream_merged.superb.runner import execute_run
    from upstream_merged.superb.spec import parse_spec

    spec = parse_spec({
        "output_dir": str(sweep_dir), "device": "cpu", "seeds": [seed], "env": {**stock_env(), **(env or {})},
        "entries": [{"name": entry, "finetune": finetune, **({"ckpt": ckpt} if ckpt else {}),
                     **({"model_config": model_config} if model_config else {})}],
        "tasks": [{"name": task.name, "downstream": task.downstream, "config": str(task.config),
                   "overrides": {k: v if isinstance(v, (int, float, bool)) else str(v) for k, v in task.overrides.items()},
                   "metric": "acc", "split": "test", "higher_is_better": True}],
    }, source=f"validate_cached_probe {entry}/{task.name}")
    (plan,) = plan_sweep(spec)
    outcome = execute_run(plan)
    if outcome.status == "failed":
        raise RuntimeError(f"stock run {plan.run_id} failed: {outcome.message} (log: {outcome.log})")
    done = json.loads((plan.run_dir / "DONE.json").read_text())
    return StockRun(float(outcome.value), read_predictions(plan.expdir), float(done.get("seconds", outcome.seconds)),
                    str(outcome.log), str(plan.expdir), read_dev_curve(plan.expdir))


def stock_sweep_dir(upstream: Upstream, budgeted: TaskRun, work: Path) -> Path:
    """work/stock/<entry>-<task>-<key>: the key covers the upstream's fingerprint, the config file and every -o key."""
    key = content_key({"task": asdict(budgeted), "config": Path(budgeted.config).read_text(),
                       "upstream": upstream.fingerprint})
    return Path(work) / "stock" / f"{upstream.entry}-{budgeted.name}-{key}"


@dataclass
class Validation:
    """Cached vs stock on one (upstream, task) at one step budget and seed, plus the cached extras."""

    task: str
    entry: str
    steps: int
    eval_step: int
    seed: int
    stock: dict  # Accuracy + seconds + printed accuracy
    cached: dict  # Accuracy + seconds (probe) + extraction seconds
    paired: dict  # PairedDifference (cached - stock)
    agree: bool  # stock accuracy inside the cached accuracy's 95% interval
    cached_seeds: Dict[int, float] = field(default_factory=dict)  # test accuracy of further cached seeds
    converged: Optional[dict] = None  # converged cached probe: accuracy, steps, best step, seconds
    float32: Optional[dict] = None  # the same cached probe on float32 features: accuracy, prediction agreement

    def as_dict(self) -> dict:
        """Plain data (JSON)."""
        return asdict(self)


def _extraction_seconds(features) -> float:
    return round(sum(float(f.meta.get("extract_seconds", 0.0)) for f in features.values()), 1)


def validate(entry: Union[str, Upstream], task: TaskRun, steps: int, eval_step: int, seed: int, work: Path,
             cached_seeds: Sequence[int] = (), converge: Optional[Schedule] = None, check_float32: bool = False,
             cache: Optional[Path] = None, progress: bool = False) -> Validation:
    """Run both paths on (entry, task) and compare; ``work`` holds the stock sweep and the experts' scratch dirs."""
    budgeted = task.with_budget(steps, eval_step)
    setup = TaskSetup.from_files(task.downstream, task.config, budgeted.overrides,
                                 expdir=work / "cached_expdir" / task.name)
    upstream = entry if isinstance(entry, Upstream) else Upstream(entry)
    entry = upstream.entry
    features = cached_splits(upstream, setup, dtype="float16", root=cache, progress=progress)
    schedule = Schedule.stock(setup.config)
    cached = train_probe(setup, features, seed, schedule, entry=entry)
    log.info("%s/%s cached: test %s in %.1f s", entry, task.name, cached.test_accuracy.text(), cached.seconds)
    start = time.monotonic()
    stock = run_stock(entry, budgeted, seed, stock_sweep_dir(upstream, budgeted, work))
    stock_acc = accuracy(list(stock.correct.values()))
    log.info("%s/%s stock: test %s in %.0f s (%.0f s now)", entry, task.name, stock_acc.text(), stock.seconds,
             time.monotonic() - start)
    if abs(stock_acc.value - stock.printed_accuracy) > 1e-6:
        raise ValueError(f"{stock.expdir}: prediction files give {stock_acc.value} but evaluate printed "
                         f"{stock.printed_accuracy}")
    paired = compare_predictions(cached.correct(), stock.correct)
    test = cached.test_accuracy
    result = Validation(task.name, entry, steps, eval_step, seed,
                        stock={**stock_acc.as_dict(), "seconds": round(stock.seconds, 1), "log": stock.log},
                        cached={**test.as_dict(), "seconds": cached.seconds, "extract_seconds": _extraction_seconds(features),
                                "best_step": cached.best_step, "pool_first": cached.pool_first},
                        paired=paired.as_dict(), agree=test.low <= stock_acc.value <= test.high)
    for other in cached_seeds:
        if other != seed:
            result.cached_seeds[other] = train_probe(setup, features, other, schedule, entry=entry).test_accuracy.value
    if converge is not None:
        conv = train_probe(setup, features, seed, converge, entry=entry)
        result.converged = {**conv.test, "steps": conv.steps, "best_step": conv.best_step, "seconds": conv.seconds,
                            "dev_accuracy": conv.dev_accuracy, "schedule": conv.schedule}
    if check_float32:
        full = cached_splits(upstream, setup, dtype="float32", root=cache, progress=progress)
        wide = train_probe(setup, full, seed, schedule, entry=entry)
        same = sum(wide.predictions[u]["predicted"] == p["predicted"] for u, p in cached.predictions.items())
        result.float32 = {**wide.test, "prediction_agreement": same / len(cached.predictions),
                          "extract_seconds": _extraction_seconds(full), "float16_minus_float32": test.value - wide.test["value"]}
    return result


def summary_rows(results: Sequence[Validation]) -> List[List[str]]:
    """Rows of the markdown table (one per validation)."""
    rows = []
    for r in results:
        stock, cached, paired = r.stock, r.cached, r.paired
        seeds = [cached["value"], *r.cached_seeds.values()]
        spread = (f"{statistics.fmean(seeds):.3f} ({min(seeds):.3f}–{max(seeds):.3f}, {len(seeds)} seeds)"
                  if len(seeds) > 1 else "–")
        conv = r.converged
        rows.append([
            r.task, f"`{r.entry}`", str(r.steps),
            f"{stock['value']:.3f} [{stock['low']:.3f}, {stock['high']:.3f}]",
            f"{cached['value']:.3f} [{cached['low']:.3f}, {cached['high']:.3f}]",
            f"{paired['difference']:+.3f} [{paired['low']:+.3f}, {paired['high']:+.3f}]",
            f"{paired['mcnemar']['p_value']:.2f}",
            "yes" if r.agree else "**no**",
            spread,
            f"{stock['seconds']:.0f}",
            f"{cached['extract_seconds']:.0f} + {cached['seconds']:.1f}",
            "–" if conv is None else f"{conv['value']:.3f} [{conv['low']:.3f}, {conv['high']:.3f}] @ {conv['best_step']}/{conv['steps']} ({conv['seconds']:.0f} s)",
            "–" if r.float32 is None else f"{r.float32['value']:.3f} ({r.float32['prediction_agreement']:.1%} same)",
        ])
    return rows


TABLE_HEAD = ["task", "upstream", "steps", "stock acc [95% CI]", "cached acc [95% CI]", "cached − stock [95% CI]",
              "McNemar p", "stock in cached CI", "cached over seeds: mean (range)", "stock s", "cached s (extract + probe)",
              "converged cached acc @ best/steps", "cached on float32"]
