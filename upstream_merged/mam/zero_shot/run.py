"""Zero-shot MAM (as the paper evaluates it): merge attention into a task-fine-tuned target, evaluate, no training.

A grid crosses λ values, sources, layer subsets (all / lower / upper half / each third, or explicit
layer lists) and components (q, k, v alone, together, optionally o = the output projection). Each
cell merges in memory (``W = (1-λ)·W_target + λ·W_source`` on the chosen projections of the chosen
layers; heads untouched) and evaluates the task model on every dataset of its kind: WER / CER with
greedy CTC decoding for a HubertForCTC target (LJ Speech, VCTK), top-1 accuracy / error for a
fine-tuned BEATs classifier (ESC-50). λ = 0 is the unmerged model (the reference row), evaluated once
per dataset. Finished cells are appended to ``cells.jsonl`` in the output directory; a rerun skips
them. :mod:`upstream_merged.mam.zero_shot.report` writes the tables and the λ-curve.

Grid YAML (paths relative to the file; a plain ``method: mam`` recipe works too: its target and
source, default grid, datasets from the command line)::

    target: facebook/hubert-large-ls960-ft        # or tiny:hubert_ctc, or a fine-tuned BEATs .pt
    sources: [bert-large-uncased, google/vit-large-patch16-224-in21k]
    lambdas: [0, 0.01, 0.025, 0.05, 0.1, 0.2]
    layer_subsets: [all, lower, upper, third1, third2, third3]   # or "0,1,2" / "0-5"
    components: [q, k, v, qkv]
    datasets:
      - {name: ljspeech, kind: ljspeech, root: /data/LJSpeech-1.1}
      - {name: vctk_mic2, kind: vctk, root: /data/VCTK-Corpus-0.92, mic: mic2, limit: 2000}
      - {name: esc50, kind: esc50, root: /data/ESC-50-master, folds: [1, 2, 3, 4, 5]}
    output_dir: zero_shot_out
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from upstream_merged.mam.core import MergePlan, check_dims, merge_states, resolve_plan
from upstream_merged.mam.zero_shot.data import Item, read_esc50_items, read_ljspeech, read_vctk
from upstream_merged.mam.loading import AttentionModel, load_attention_model
from upstream_merged.mam.zero_shot.evaluators import make_evaluator

logger = logging.getLogger(__name__)

DEFAULT_LAMBDAS = (0.0, 0.01, 0.025, 0.05, 0.1, 0.2)
DEFAULT_SUBSETS = ("all", "lower", "upper", "third1", "third2", "third3")
DEFAULT_COMPONENTS = ("q", "k", "v", "qkv")
COMPONENT_ROLES = {"q": "q", "k": "k", "v": "v", "o": "out"}
CELLS_FILE = "cells.jsonl"
RUN_FILE = "zero_shot_run.json"
REFERENCE = "(unmerged)"


class DatasetSpec(BaseModel):
    """One evaluation set in a published layout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    kind: Literal["ljspeech", "vctk", "esc50"]
    root: str
    mic: Literal["mic1", "mic2"] = "mic1"  # VCTK only
    speakers: Optional[List[str]] = None  # VCTK only (default: every speaker)
    folds: Optional[List[int]] = None  # ESC-50 only (default: all five)
    limit: Optional[int] = Field(None, ge=1, description="first N items only")

    def items(self) -> List[Item]:
        """The dataset's items, read from ``root``."""
        if self.kind == "ljspeech":
            return read_ljspeech(Path(self.root), self.limit)
        if self.kind == "vctk":
            return read_vctk(Path(self.root), self.mic, self.speakers, self.limit)
        return read_esc50_items(Path(self.root), self.folds, self.limit)


class ZeroShotGrid(BaseModel):
    """Target, sources, λ values, layer subsets, components and datasets of a zero-shot sweep."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str
    sources: List[str] = Field(min_length=1)
    lambdas: List[float] = Field(default_factory=lambda: list(DEFAULT_LAMBDAS), min_length=1)
    layer_subsets: List[str] = Field(default_factory=lambda: list(DEFAULT_SUBSETS), min_length=1)
    components: List[str] = Field(default_factory=lambda: list(DEFAULT_COMPONENTS), min_length=1)
    layer_map: Optional[Dict[int, int]] = None
    allow_pickle: bool = False
    datasets: List[DatasetSpec] = Field(default_factory=list)
    output_dir: Optional[str] = None

    @field_validator("lambdas")
    @classmethod
    def _lambdas(cls, values: List[float]) -> List[float]:
        bad = [v for v in values if not 0.0 <= v <= 1.0]
        if bad:
            raise ValueError(f"lambdas {bad} are outside [0, 1]")
        return sorted(set(float(v) for v in values))

    @field_validator("components")
    @classmethod
    def _components(cls, values: List[str]) -> List[str]:
        for value in values:
            component_roles(value)
        return values

    @model_validator(mode="after")
    def _unique_names(self) -> "ZeroShotGrid":
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names repeat: {names}; give each dataset a distinct 'name'")
        return self


def component_roles(component: str) -> Tuple[str, ...]:
    """'qkv' -> ('q', 'k', 'v'); letters q, k, v, o (output projection), each at most once."""
    letters = list(component)
    if not letters or len(set(letters)) != len(letters) or not set(letters) <= set(COMPONENT_ROLES):
        raise ValueError(f"component {component!r} must combine the letters q, k, v, o (each once), e.g. 'q' or 'qkv'")
    return tuple(COMPONENT_ROLES[c] for c in "qkvo" if c in letters)


def subset_layers(name: str, num_layers: int) -> List[int]:
    """Layer ids of a subset name (all, lower, upper, third1..3) or an explicit list ('0,2,4' / '0-5')."""
    layers = list(range(num_layers))
    half = num_layers // 2
    named = {"all": layers, "lower": layers[:half], "upper": layers[half:]}
    for i, chunk in enumerate(np.array_split(np.array(layers, dtype=int), 3), 1):
        named[f"third{i}"] = [int(x) for x in chunk]
    if name in named:
        return named[name]
    try:
        ids: List[int] = []
        for part in name.split(","):
            low, _, high = part.partition("-")
            ids.extend(range(int(low), int(high) + 1) if high else [int(low)])
    except ValueError:
        raise ValueError(f"layer subset {name!r} is not one of {sorted(named)} nor a list like '0,2,4' or '0-5'") from None
    bad = [i for i in ids if not 0 <= i < num_layers]
    if bad or len(set(ids)) != len(ids):
        raise ValueError(f"layer subset {name!r}: layers must be distinct and in 0..{num_layers - 1}")
    return ids


# ---------------------------------------------------------------------------------------------------
# Loading a grid
# ---------------------------------------------------------------------------------------------------

def _relative(path: str, base: Path) -> str:
    """A path relative to the grid file when it exists there; anything else (tiny:, HF ids) as given."""
    expanded = os.path.expandvars(os.path.expanduser(path))
    if expanded.startswith(("tiny:", "small:")) or Path(expanded).is_absolute():
        return expanded
    return str(base / expanded) if (base / expanded).exists() else expanded


def load_grid(path: Path, **overrides) -> ZeroShotGrid:
    """A grid from a grid YAML or a ``method: mam`` recipe; non-None ``overrides`` replace its keys."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read zero-shot grid {path}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a zero-shot grid must be a mapping")
    if data.get("method") == "mam":
        from upstream_merged.recipe import load_recipe

        recipe = load_recipe(path)
        data = {"target": recipe.sources["target"], "sources": [recipe.sources["source"]],
                "layer_map": recipe.layer_map, "allow_pickle": recipe.allow_pickle}
    base = path.resolve().parent
    if isinstance(data.get("target"), str):
        data["target"] = _relative(data["target"], base)
    if isinstance(data.get("output_dir"), str):
        data["output_dir"] = str(base / os.path.expandvars(data["output_dir"]))
    if isinstance(data.get("sources"), list):
        data["sources"] = [_relative(s, base) if isinstance(s, str) else s for s in data["sources"]]
    for dataset in data.get("datasets") or []:
        if isinstance(dataset, dict) and isinstance(dataset.get("root"), str):
            dataset["root"] = str(base / os.path.expandvars(dataset["root"]))
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ZeroShotGrid.model_validate(data)
    except ValidationError as err:
        raise ValueError(f"{path}: invalid zero-shot grid:\n{err}") from None


# ---------------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One evaluation: a dataset under one merge (source, layer subset, components, λ) or the reference."""

    dataset: str
    source: str
    layers: str
    components: str
    lam: float

    @property
    def is_reference(self) -> bool:
        """True for the unmerged model (λ = 0)."""
        return self.source == REFERENCE

    @property
    def key(self) -> str:
        """Identity of the cell in cells.jsonl."""
        return json.dumps([self.dataset, self.source, self.layers, self.components, round(self.lam, 9)])


def plan_cells(grid: ZeroShotGrid, num_layers: int) -> List[Cell]:
    """Reference cells first, then every (dataset, source, subset, component, λ > 0); empty subsets are skipped."""
    cells = [Cell(d.name, REFERENCE, "-", "-", 0.0) for d in grid.datasets]
    subsets = []
    for name in grid.layer_subsets:
        if subset_layers(name, num_layers):
            subsets.append(name)
        else:
            logger.warning("layer subset %r is empty for a %d-layer target: skipped", name, num_layers)
    for dataset in grid.datasets:
        for source in grid.sources:
            for subset in subsets:
                for component in grid.components:
                    cells.extend(Cell(dataset.name, source, subset, component, lam) for lam in grid.lambdas if lam > 0)
    return cells


def read_cells(path: Path) -> Dict[str, dict]:
    """Finished cells by key; torn lines (an interrupted write) are dropped from the file with a warning."""
    done: Dict[str, dict] = {}
    if not path.is_file():
        return done
    good, torn = [], 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
            key = Cell(**row["cell"]).key
        except (json.JSONDecodeError, KeyError, TypeError):
            logger.warning("%s:%d is not a finished cell (interrupted write?): it will be evaluated again", path, number)
            torn += 1
            continue
        done[key] = row
        good.append(line)
    if torn:  # rewrite without them, so the next append starts on a fresh line
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in good))
        tmp.replace(path)
    return done


def append_cell(path: Path, row: dict) -> None:
    """Append one finished cell durably (a line per cell; flushed and fsynced)."""
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# ---------------------------------------------------------------------------------------------------
# Merging and evaluating
# ---------------------------------------------------------------------------------------------------

def cell_plan(target: AttentionModel, source: AttentionModel, layers: Sequence[int], roles: Sequence[str],
              lam: float, layer_map: Optional[Dict[int, int]] = None) -> MergePlan:
    """The merge plan of one cell: λ on ``layers``, projections ``roles`` only."""
    check_dims(target.dims, source.dims, target.layout, source.layout, layer_map)
    plan = resolve_plan(target.dims.layers, source.dims.layers, float(lam), list(layers), layer_map)
    return MergePlan(plan.layers, tuple(roles))


def merged_encoder_state(original: Dict[str, torch.Tensor], target: AttentionModel, source: AttentionModel,
                         source_state: Dict[str, torch.Tensor], plan: MergePlan) -> Dict[str, torch.Tensor]:
    """The target encoder's state with the plan applied (``original`` is left as it is)."""
    return merge_states(original, source_state, plan, target.layout, source.layout)


# ---------------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------------

def _run_header(grid: ZeroShotGrid, target_path: Path) -> dict:
    return {"target": str(target_path), "layer_map": grid.layer_map,
            "datasets": {d.name: d.model_dump() for d in grid.datasets}}


def _check_header(out_dir: Path, header: dict) -> None:
    path = out_dir / RUN_FILE
    if path.is_file():
        previous = json.loads(path.read_text())
        for name, spec in header["datasets"].items():
            if name in previous["datasets"] and previous["datasets"][name] != spec:
                raise ValueError(f"{out_dir} holds cells of dataset {name!r} with other settings "
                                 f"({previous['datasets'][name]}); use another output directory or dataset name")
        if previous["target"] != header["target"] or previous.get("layer_map") != header["layer_map"]:
            raise ValueError(f"{out_dir} holds cells of target {previous['target']}; use another output directory")
        header = {**header, "datasets": {**previous["datasets"], **header["datasets"]}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(header, indent=2))
    tmp.replace(path)


@dataclass
class ZeroShotResult:
    """Rows of the planned cells (finished ones) and the files written."""

    rows: List[dict]
    files: List[Path]
    evaluated: int
    skipped: int


def run_zero_shot(grid: ZeroShotGrid, out_dir: Optional[Path] = None, progress: bool = True) -> ZeroShotResult:
    """Evaluate every unfinished cell of ``grid`` (cached in OUT/cells.jsonl), then write tables and the λ-curve."""
    from tqdm.auto import tqdm

    from upstream_merged.mam.zero_shot.report import write_reports
    from upstream_merged.sources import resolve_source

    if not grid.datasets:
        raise ValueError("the grid names no dataset: add 'datasets' to the grid or pass --ljspeech / --vctk / --esc50")
    out_dir = Path(out_dir or grid.output_dir or "")
    if not str(out_dir) or str(out_dir) == ".":
        raise ValueError("no output directory: give --out or 'output_dir' in the grid")
    out_dir.mkdir(parents=True, exist_ok=True)
    target_path = resolve_source(grid.target, what="zero-shot target")
    target = load_attention_model(target_path, allow_pickle=grid.allow_pickle)
    evaluators = {d.name: make_evaluator(target, d.kind) for d in grid.datasets}
    _check_header(out_dir, _run_header(grid, target_path))
    cells = plan_cells(grid, target.dims.layers)
    cache_path = out_dir / CELLS_FILE
    done = read_cells(cache_path)
    todo = [c for c in cells if c.key not in done]
    logger.info("zero-shot: %d cells, %d finished before, %d to evaluate", len(cells), len(cells) - len(todo), len(todo))
    items = {d.name: d.items() for d in grid.datasets if any(c.dataset == d.name for c in todo)}
    original = {k: v.detach().clone() for k, v in target.model.state_dict().items()}
    sources: Dict[str, Tuple[AttentionModel, Dict[str, torch.Tensor]]] = {}
    try:
        for cell in tqdm(todo, desc="zero-shot cells", disable=not progress):
            if cell.is_reference:
                state, layer_ids = original, []
            else:
                if cell.source not in sources:
                    model = load_attention_model(resolve_source(cell.source, what="MAM source"))
                    sources[cell.source] = (model, model.model.state_dict())
                source, source_state = sources[cell.source]
                layer_ids = subset_layers(cell.layers, target.dims.layers)
                plan = cell_plan(target, source, layer_ids, component_roles(cell.components), cell.lam, grid.layer_map)
                state = merged_encoder_state(original, target, source, source_state, plan)
            target.model.load_state_dict(state, strict=True)
            with torch.no_grad():
                metrics = evaluators[cell.dataset](items[cell.dataset])
            row = {"cell": asdict(cell), "layer_ids": layer_ids, "metrics": metrics}
            append_cell(cache_path, row)
            done[cell.key] = row
    finally:
        target.model.load_state_dict(original, strict=True)
    rows = [done[c.key] for c in cells if c.key in done]
    kinds = {d.name: d.kind for d in grid.datasets}
    files = write_reports(rows, kinds, out_dir)
    return ZeroShotResult(rows, files, len(todo), len(cells) - len(todo))


def evaluate_merged(target: AttentionModel, source: Optional[AttentionModel], kind: str, items: List[Item],
                    layers: Iterable[int] = (), roles: Sequence[str] = ("q", "k", "v"), lam: float = 0.0) -> Dict[str, float]:
    """One cell outside the sweep (tests, notebooks): merge, evaluate, restore the target; no source = unmerged."""
    original = {k: v.detach().clone() for k, v in target.model.state_dict().items()}
    try:
        if source is not None:
            plan = cell_plan(target, source, list(layers), roles, lam)
            target.model.load_state_dict(merged_encoder_state(original, target, source, source.model.state_dict(), plan))
        with torch.no_grad():
            return make_evaluator(target, kind)(items)
    finally:
        target.model.load_state_dict(original, strict=True)


__all__ = ["ZeroShotGrid", "DatasetSpec", "load_grid", "run_zero_shot", "plan_cells", "subset_layers",
           "component_roles", "evaluate_merged"]
