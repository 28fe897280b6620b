"""One call from (upstream entry, task) to trained probes: extract once into the cache, then train per seed."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable, List, Mapping, Optional, Sequence, Union

from upstream_merged.core.atomic import write_text_atomically
from upstream_merged.evaluation.features import Upstream, cached_splits
from upstream_merged.evaluation.probe import ProbeResult, Schedule, train_probe
from upstream_merged.evaluation.tasks import TaskSetup

log = logging.getLogger(__name__)

ScheduleArg = Union[str, Schedule]


def resolve_schedule(schedule: ScheduleArg, setup: TaskSetup) -> Schedule:
    """'stock' (the config's budget), 'converge' (early stopping defaults) or a Schedule as given."""
    if isinstance(schedule, Schedule):
        return schedule
    if schedule == "stock":
        return Schedule.stock(setup.config)
    if schedule == "converge":
        return Schedule.converge()
    raise ValueError(f"schedule {schedule!r} is not 'stock', 'converge' or a Schedule")


def probe_upstream(upstream: Union[str, Upstream], setup: TaskSetup, seeds: Iterable[int] = (0,),
                   schedule: ScheduleArg = "converge", dtype: str = "float16", variants: int = 8,
                   cache: Optional[Path] = None, pool_first: Optional[bool] = None, normalize: bool = False,
                   layer_selection: Optional[int] = None, progress: bool = False) -> List[ProbeResult]:
    """Cached features of ``upstream`` on every split of ``setup`` (extracted on first use), one probe per seed."""
    if isinstance(upstream, str):
        upstream = Upstream(upstream)
    features = cached_splits(upstream, setup, dtype=dtype, variants=variants, root=cache, progress=progress)
    plan = resolve_schedule(schedule, setup)
    return [train_probe(setup, features, seed, plan, entry=upstream.entry, pool_first=pool_first, normalize=normalize,
                        layer_selection=layer_selection, progress=progress) for seed in seeds]


def save_results(results: Sequence[ProbeResult], path: Path) -> Path:
    """Write probe results (with per-clip predictions) as JSON, atomically."""
    return write_text_atomically(path, json.dumps([r.as_dict() for r in results], indent=1) + "\n")


def load_results(path: Path) -> List[ProbeResult]:
    """Probe results written by :func:`save_results`."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of probe results (written by save_results)")
    return [ProbeResult.from_dict(item) for item in data]


def setup_from(downstream: str, config: str | Path, overrides: Optional[Mapping[str, object]] = None,
               expdir: Optional[Path] = None) -> TaskSetup:
    """TaskSetup of ``-d downstream -c config -o overrides`` (expdir: scratch for the expert; a temp dir by default)."""
    if expdir is None:
        import tempfile

        expdir = Path(tempfile.mkdtemp(prefix=f"cached_probe_{downstream}_"))
    return TaskSetup.from_files(downstream, config, overrides, expdir=expdir)
