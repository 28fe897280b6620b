"""The L-MAM protocol: regular fine-tuning vs fixed-λ MAM + fine-tuning vs L-MAM, same budget and seeds.

All three arms run through the stock ``run_downstream.py -f`` with the SUPERB sweep runner
(:mod:`upstream_merged.superb.sweep`: resumable, one directory per run, results.md/csv):

* ``finetune``      — the target itself (``hubert_base_hf -k DIR`` / ``beats -k FILE``), upstream trained;
* ``mam_finetune``  — ``mam_<target>_<source> -k mam_fixed.yaml`` (merge at ``lambda``), then trained;
* ``lmam``          — ``lmam_<target>_<source> -k lmam.yaml`` (λ per layer learned from ``lambda``,
  with its own learning rate ``lambda_lr_scale`` x the upstream's — see mam/learnable.py).

One task (its config and ``-o`` keys: the budget) and one seed list serve every arm. After the
sweep, the learned λ of every L-MAM run is read from the checkpoint its evaluation used, and
``lmam_protocol.md`` / ``.json`` / ``lambdas.csv`` report the metric per arm (per seed, mean ± std)
and λ per layer per seed with mean, standard deviation and range over seeds (stability).

Protocol YAML (paths relative to the file)::

    output_dir: lmam_protocol_out
    target: facebook/hubert-base-ls960      # HF HuBERT dir/id or a BEATs .pt
    source: bert-base-uncased
    lambda: 0.05                            # fixed-λ arm, and the L-MAM init
    lambda_lr_scale: 10                     # λ's lr = 10 x the upstream's
    seeds: [0, 1, 2]
    device: cuda
    task:                                   # a SUPERB sweep task (upstream_merged/superb/spec.py)
      name: asr
      downstream: asr
      config: ../downstream_configs/asr.yaml
      overrides: {config.downstream_expert.datarc.libri_root: /data/LibriSpeech}
      metric: wer
      split: test-clean
      higher_is_better: false
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import statistics
from pathlib import Path
from typing import Dict, List, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from upstream_merged.superb.spec import SweepSpec, Task, parse_spec

logger = logging.getLogger(__name__)

ARMS = ("finetune", "mam_finetune", "lmam")
REPORT_MD = "lmam_protocol.md"
REPORT_JSON = "lmam_protocol.json"
LAMBDAS_CSV = "lambdas.csv"
PLAIN_ENTRIES = {"hubert": "hubert_base_hf", "beats": "beats"}


class Protocol(BaseModel):
    """What the three arms share: target, source, λ (fixed / init), λ lr multiplier, task budget, seeds."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    output_dir: str
    target: str
    source: str
    lambda_: float = Field(0.05, alias="lambda", gt=0.0, lt=1.0)
    lambda_lr_scale: float = Field(1.0, gt=0.0)
    trainable: Literal["all", "lambdas"] = "all"
    layers: Optional[List[int]] = None
    seeds: List[int] = Field(default_factory=lambda: [0, 1], min_length=1)
    device: str = "cuda"
    env: Dict[str, str] = Field(default_factory=dict)
    task: Task
    arms: List[Literal["finetune", "mam_finetune", "lmam"]] = Field(default_factory=lambda: list(ARMS), min_length=1)
    base_dir: Optional[str] = None


def load_protocol(path: Path, **overrides) -> Protocol:
    """Read and validate a protocol YAML; relative paths start from its directory."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read protocol {path}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a protocol is a mapping (see upstream_merged/mam/protocol.py)")
    data.setdefault("base_dir", str(path.resolve().parent))
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Protocol.model_validate(data)
    except ValidationError as err:
        raise ValueError(f"{path}: invalid L-MAM protocol:\n{err}") from None


def _path(value: str, base: Path) -> str:
    expanded = os.path.expandvars(os.path.expanduser(value))
    if expanded.startswith(("tiny:", "small:")) or Path(expanded).is_absolute():
        return expanded
    return str(base / expanded) if (base / expanded).exists() else expanded


def write_recipes(protocol: Protocol, out_dir: Path) -> Dict[str, Path]:
    """The fixed-λ and the L-MAM recipe files (validated) the MAM arms load with -k."""
    from upstream_merged.recipe import parse_recipe

    base = Path(protocol.base_dir or ".")
    sources = {"target": _path(protocol.target, base), "source": _path(protocol.source, base)}
    shared = {"method": "mam", "sources": sources, **({"layers": protocol.layers} if protocol.layers else {})}
    recipes = {
        "mam_finetune": {**shared, "lambda": protocol.lambda_},
        "lmam": {**shared, "learnable": True, "lambda_init": protocol.lambda_,
                 "lambda_lr_scale": protocol.lambda_lr_scale, "trainable": protocol.trainable},
    }
    paths = {}
    directory = out_dir / "recipes"
    directory.mkdir(parents=True, exist_ok=True)
    for arm, data in recipes.items():
        parse_recipe(data)  # errors name the key before any run starts
        paths[arm] = directory / f"{arm}.yaml"
        paths[arm].write_text(yaml.safe_dump(data, sort_keys=False))
    return paths


def sweep_spec(protocol: Protocol, out_dir: Path) -> SweepSpec:
    """The SUPERB sweep spec of the protocol: one entry per arm, the protocol's task and seeds."""
    from upstream_merged.mam.loading import detect_arch
    from upstream_merged.sources import resolve_source

    base = Path(protocol.base_dir or ".")
    target_path = resolve_source(_path(protocol.target, base), what="protocol target")
    target_arch = detect_arch(target_path)
    source_arch = detect_arch(resolve_source(_path(protocol.source, base), what="protocol source"))
    if target_arch not in PLAIN_ENTRIES:
        raise ValueError(f"protocol target {target_path} is a {target_arch} model; targets are HuBERT or BEATs")
    recipes = write_recipes(protocol, out_dir)
    entries = {
        "finetune": {"name": PLAIN_ENTRIES[target_arch], "label": "finetune", "ckpt": str(target_path), "finetune": True},
        "mam_finetune": {"name": f"mam_{target_arch}_{source_arch}", "label": "mam_finetune",
                         "ckpt": str(recipes["mam_finetune"]), "finetune": True},
        "lmam": {"name": f"lmam_{target_arch}_{source_arch}", "label": "lmam", "ckpt": str(recipes["lmam"]),
                 "finetune": True},
    }
    task = protocol.task.model_dump(by_alias=True, exclude_none=True)
    task["config"] = _path(task["config"], base)
    return parse_spec({
        "output_dir": str(out_dir / "sweep"), "entries": [entries[arm] for arm in protocol.arms], "tasks": [task],
        "seeds": protocol.seeds, "device": protocol.device, "env": protocol.env, "base_dir": str(out_dir),
    }, source="L-MAM protocol")


def read_run_lambdas(checkpoint: Path) -> Dict[int, float]:
    """{target layer: λ} learned in one L-MAM run, from its s3prl checkpoint's 'Upstream' state."""
    import torch

    from upstream_merged.mam.learnable import find_lambda_states
    from upstream_merged.registry import allow_runner_checkpoints

    allow_runner_checkpoints()
    states = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    banks = find_lambda_states(states.get("Upstream") or {})
    if len(banks) != 1:
        raise KeyError(f"{checkpoint}: expected one L-MAM λ bank in 'Upstream', found {sorted(banks)} "
                       f"(was the lmam arm trained with -f?)")
    return next(iter(banks.values()))


def _spread(values: List[float]) -> Dict[str, Optional[float]]:
    if not values:
        return {"mean": None, "std": None, "range": None}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "range": max(values) - min(values)}


def summarise(protocol: Protocol, spec: SweepSpec, table) -> dict:
    """Per arm: metric per seed and its spread; L-MAM: λ per layer per seed and its spread."""
    from upstream_merged.superb.commands import plan_sweep

    runs = {(r["entry"], r["seed"]): r for r in table.runs}
    arms = {}
    for arm in protocol.arms:
        per_seed = {str(seed): runs.get((arm, seed), {}).get("value") for seed in protocol.seeds}
        done = [v for v in per_seed.values() if v is not None]
        arms[arm] = {"per_seed": per_seed, **_spread(done),
                     "status": {str(seed): runs.get((arm, seed), {}).get("status") for seed in protocol.seeds}}
    lambdas: Dict[str, Dict[str, float]] = {}
    for plan in plan_sweep(spec):
        if plan.entry != "lmam":
            continue
        checkpoint = plan.expdir / plan.checkpoint
        if checkpoint.is_file():
            lambdas[str(plan.seed)] = {str(k): v for k, v in read_run_lambdas(checkpoint).items()}
        else:
            logger.warning("L-MAM seed %s: no checkpoint %s (run not finished)", plan.seed, checkpoint)
    layers = sorted({int(layer) for values in lambdas.values() for layer in values})
    per_layer = {str(layer): {"per_seed": {seed: values.get(str(layer)) for seed, values in lambdas.items()},
                              **_spread([values[str(layer)] for values in lambdas.values() if str(layer) in values])}
                 for layer in layers}
    return {"task": protocol.task.name, "metric": protocol.task.metric, "higher_is_better": protocol.task.higher_is_better,
            "seeds": protocol.seeds, "lambda": protocol.lambda_, "lambda_lr_scale": protocol.lambda_lr_scale,
            "trainable": protocol.trainable, "target": protocol.target, "source": protocol.source,
            "arms": arms, "lambdas": per_layer}


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report_markdown(summary: dict) -> str:
    """The protocol report: metric per arm and learned λ per layer with their spread over seeds."""
    seeds = [str(s) for s in summary["seeds"]]
    better = "higher" if summary["higher_is_better"] else "lower"
    lines = ["# L-MAM protocol", "",
             f"Target {summary['target']}, source {summary['source']}; task {summary['task']} "
             f"({summary['metric']}, {better} is better); same budget and seeds {summary['seeds']} for every arm. "
             f"Fixed λ = L-MAM init = {summary['lambda']:g}; λ learning rate = {summary['lambda_lr_scale']:g} x the "
             f"upstream's (trainable: {summary['trainable']}).", "",
             "| arm | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std |",
             "|---|" + "---|" * (len(seeds) + 2)]
    for arm, row in summary["arms"].items():
        lines.append(f"| {arm} | " + " | ".join(_fmt(row["per_seed"][s]) for s in seeds)
                     + f" | {_fmt(row['mean'])} | {_fmt(row['std'])} |")
    lines += ["", "## Learned λ per layer (L-MAM)", ""]
    if not summary["lambdas"]:
        lines.append("No finished L-MAM run.")
        return "\n".join(lines) + "\n"
    lam_seeds = sorted({s for row in summary["lambdas"].values() for s in row["per_seed"]}, key=int)
    lines += ["| layer | init | " + " | ".join(f"seed {s}" for s in lam_seeds) + " | mean | std | range |",
              "|---|---|" + "---|" * (len(lam_seeds) + 3)]
    for layer, row in summary["lambdas"].items():
        lines.append(f"| {layer} | {summary['lambda']:g} | " + " | ".join(_fmt(row["per_seed"].get(s), 5) for s in lam_seeds)
                     + f" | {_fmt(row['mean'], 5)} | {_fmt(row['std'], 5)} | {_fmt(row['range'], 5)} |")
    return "\n".join(lines) + "\n"


def lambdas_csv(summary: dict) -> str:
    """layer, seed, lambda rows (one per learned value)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["layer", "seed", "lambda_init", "lambda"])
    for layer, row in summary["lambdas"].items():
        for seed, value in row["per_seed"].items():
            writer.writerow([layer, seed, summary["lambda"], value])
    return text.getvalue()


def run_protocol(protocol: Protocol, jobs: int = 1, collect_only: bool = False) -> dict:
    """Run (or resume) the three arms through the sweep runner, then write the protocol report."""
    from upstream_merged.superb.executors import LocalExecutor
    from upstream_merged.superb.results import collect, write_results
    from upstream_merged.superb.sweep import run_sweep

    out_dir = Path(os.path.expandvars(protocol.output_dir))
    if not out_dir.is_absolute():
        out_dir = Path(protocol.base_dir or ".") / out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = sweep_spec(protocol, out_dir)
    if collect_only:
        table = collect(spec.sweep_dir)
        write_results(table)
    else:
        table = run_sweep(spec, LocalExecutor(jobs=jobs))
    summary = summarise(protocol, spec, table)
    (out_dir / REPORT_JSON).write_text(json.dumps(summary, indent=2))
    (out_dir / REPORT_MD).write_text(report_markdown(summary))
    (out_dir / LAMBDAS_CSV).write_text(lambdas_csv(summary))
    failed = [r for r in table.runs if r["status"] == "failed"]
    for row in failed:
        logger.error("run %s seed %s failed: %s (log %s)", row["entry"], row["seed"], row["message"], row["log"])
    summary["failed"] = len(failed)
    summary["report"] = str(out_dir / REPORT_MD)
    return summary


__all__ = ["Protocol", "load_protocol", "run_protocol", "sweep_spec", "summarise", "report_markdown"]
