"""The sweep spec: upstream entries x SUPERB tasks x seeds, validated strictly (pydantic, unknown keys refused)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LABEL = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"  # labels become directory names
OverrideValue = Union[str, int, float, bool]

# leaderboard task keys (s3prl/submit/submit.py) that a -d name maps to when the mapping is unambiguous
SUPERB_TASK_OF_DOWNSTREAM: Dict[str, str] = {
    "speech_commands": "ks",
    "fluent_commands": "ic",
    "voxceleb1": "sid",
    "asr": "asr",
    "quesst14_dtw": "qbe",
    "sv_voxceleb1": "sv",
    "diarization": "sd",
}
SuperbTask = Literal["pr", "ks", "ic", "sid", "er_fold1", "er_fold2", "er_fold3", "er_fold4", "er_fold5",
                     "asr", "asr_lm", "qbe", "sf", "sv", "sd", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_overrides(overrides: Dict[str, OverrideValue], where: str) -> None:
    """Refuse -o keys/values that s3prl's ``override()`` would misread (it splits on ',,' and '=')."""
    for key, value in overrides.items():
        if not key.startswith(("config.", "args.")):
            raise ValueError(f"{where}: override key {key!r} must start with 'config.' or 'args.' (s3prl's -o syntax)")
        if "=" in str(value) or ",," in str(value):
            raise ValueError(f"{where}: override {key!r} value {value!r} contains '=' or ',,', which s3prl's -o cannot carry")


class Entry(_Strict):
    """One upstream: ``-u name`` plus its optional ``-k`` / ``-g`` / ``-f`` and extra ``-o`` keys."""

    name: str = Field(description="the -u hub entry")
    label: Optional[str] = Field(None, pattern=LABEL, description="row name in the results (default: name)")
    ckpt: Optional[str] = Field(None, description="-k")
    model_config_path: Optional[str] = Field(None, alias="model_config", description="-g")
    finetune: bool = Field(False, description="-f: fine-tune the upstream")
    overrides: Dict[str, OverrideValue] = Field(default_factory=dict, description="extra -o keys (win over the task's)")
    tasks: Optional[List[str]] = Field(None, description="run only these task names (default: every task)")

    @model_validator(mode="after")
    def _valid_overrides(self) -> "Entry":
        check_overrides(self.overrides, f"entry {self.name!r}")
        return self

    @property
    def key(self) -> str:
        """The label used for directories and table rows."""
        return self.label or self.name


class Reference(_Strict):
    """Per-task anchors of the SUPERB-leaderboard score: baseline scores 0, SOTA scores 1000."""

    baseline: float
    sota: float


class Task(_Strict):
    """One downstream task: ``-d``, ``-c``, data ``-o`` keys and the metric to parse from evaluate's output."""

    name: str = Field(pattern=LABEL, description="column name in the results")
    downstream: str = Field(description="the -d name")
    config: str = Field(description="-c downstream config YAML (relative to the spec file)")
    overrides: Dict[str, OverrideValue] = Field(default_factory=dict, description="-o keys, e.g. data paths")
    metric: Optional[str] = Field(description="printed metric name: evaluate prints '<split> <metric>: <value>'; "
                                              "null: nothing to parse (scored elsewhere, e.g. QbE's MTWV)")
    metric_regex: Optional[str] = Field(None, description="regex with one group, when the line has another form")
    split: str = Field("test", description="-t split evaluated after training")
    train: bool = Field(True, description="false: evaluate the frozen upstream directly (QbE's quesst14_dtw)")
    higher_is_better: bool
    checkpoint: Optional[str] = Field(None, description="checkpoint evaluated (default: <first eval split>-best.ckpt)")
    group: str = Field("all", description="task group averaged separately (e.g. speech / music), as in Table I")
    reference: Optional[Reference] = None
    superb_task: Optional[SuperbTask] = Field(None, description="leaderboard key for submission (default from -d; 'none': not submitted)")

    @model_validator(mode="after")
    def _direction_matches_reference(self) -> "Task":
        check_overrides(self.overrides, f"task {self.name!r}")
        ref = self.reference
        if ref is not None and ref.sota != ref.baseline and (ref.sota > ref.baseline) != self.higher_is_better:
            raise ValueError(f"task {self.name!r}: reference sota={ref.sota} vs baseline={ref.baseline} contradicts "
                             f"higher_is_better={self.higher_is_better}; fix one of them")
        if ref is not None and ref.sota == ref.baseline:
            raise ValueError(f"task {self.name!r}: reference sota and baseline are equal ({ref.sota})")
        return self

    @property
    def leaderboard_task(self) -> Optional[str]:
        """The submission key (``ks``, ``er_fold1`` ...), or None (``superb_task: none``, or not inferable from ``-d``)."""
        if self.superb_task == "none":
            return None
        return self.superb_task or SUPERB_TASK_OF_DOWNSTREAM.get(self.downstream)


class Slurm(_Strict):
    """Defaults of the Slurm executor (the command line overrides them)."""

    partition: Optional[str] = None
    gpus_per_node: int = 1
    timeout_min: int = 24 * 60
    cpus_per_task: int = 8
    mem_gb: int = 64
    extra: Dict[str, OverrideValue] = Field(default_factory=dict, description="further slurm_* parameters of submitit")


class SweepSpec(_Strict):
    """A sweep: every entry on every task (or the entry's ``tasks``) with every seed."""

    output_dir: str = Field(description="sweep directory (relative to the spec file)")
    entries: List[Entry] = Field(min_length=1)
    tasks: List[Task] = Field(min_length=1)
    seeds: List[int] = Field(default_factory=lambda: [1337], min_length=1)
    device: str = Field("cuda", description="--device of run_downstream.py")
    reference_entry: Optional[str] = Field(None, description="entry label scored 1000 per task in the normalised table")
    env: Dict[str, str] = Field(default_factory=dict, description="extra environment of every run")
    slurm: Slurm = Field(default_factory=Slurm)
    base_dir: Optional[str] = Field(None, description="set by load_spec: directory relative paths start from")

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: List[int]) -> List[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds repeat: {seeds}")
        return seeds

    @model_validator(mode="after")
    def _consistent(self) -> "SweepSpec":
        labels = [e.key for e in self.entries]
        unsafe = [x for x in labels if not re.match(LABEL, x)]
        if unsafe:
            raise ValueError(f"entry labels {unsafe} are not directory-safe; give those entries a 'label' matching {LABEL}")
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"entry labels repeat: {dup}; give each entry a distinct 'label'")
        names = [t.name for t in self.tasks]
        dup = sorted({x for x in names if names.count(x) > 1})
        if dup:
            raise ValueError(f"task names repeat: {dup}")
        for entry in self.entries:
            unknown = sorted(set(entry.tasks or []) - set(names))
            if unknown:
                raise ValueError(f"entry {entry.key!r}: tasks {unknown} are not in the spec's tasks {names}")
        if self.reference_entry is not None and self.reference_entry not in labels:
            raise ValueError(f"reference_entry {self.reference_entry!r} is not an entry label {labels}")
        return self

    def resolve(self, value: str) -> str:
        """A path relative to the spec file made absolute (``$VARS`` and ``~`` expanded); other strings unchanged."""
        expanded = os.path.expanduser(os.path.expandvars(value))
        path = Path(expanded)
        if path.is_absolute() or self.base_dir is None:
            return expanded
        candidate = Path(self.base_dir) / path
        return str(candidate.resolve()) if candidate.exists() or value.startswith((".", "/")) else expanded

    @property
    def sweep_dir(self) -> Path:
        """The absolute sweep directory."""
        out = Path(os.path.expanduser(os.path.expandvars(self.output_dir)))
        return out if out.is_absolute() else (Path(self.base_dir or ".") / out).resolve()

    def task(self, name: str) -> Task:
        """The task called ``name``."""
        return next(t for t in self.tasks if t.name == name)


def load_spec(path: Union[str, Path]) -> SweepSpec:
    """Read and validate a sweep spec YAML; errors name the file and the offending key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep spec {path} does not exist")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a sweep spec is a mapping with output_dir, entries, tasks (see upstream_merged/superb/examples/)")
    data.setdefault("base_dir", str(path.resolve().parent))
    return parse_spec(data, source=str(path))


def parse_spec(data: dict, source: str = "<spec>") -> SweepSpec:
    """Validate a spec given as a dict (``base_dir`` defaults to the current directory)."""
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as err:
        lines = [f"{source}: invalid sweep spec"]
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"]) or "<top>"
            lines.append(f"  {where}: {e['msg']}")
        raise ValueError("\n".join(lines)) from None


def dump_spec(spec: SweepSpec) -> str:
    """The spec as YAML (aliases kept, so it loads back)."""
    return yaml.safe_dump(spec.model_dump(by_alias=True, exclude_none=True, mode="json"), sort_keys=False)
