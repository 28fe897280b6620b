#!/usr/bin/env python3
"""Print the λ an L-MAM run learned, from a stock s3prl experiment checkpoint.

    python tools/show_lambdas.py EXPDIR            # dev-best / *-best.ckpt, else the newest states-*.ckpt
    python tools/show_lambdas.py EXPDIR/states-40.ckpt [--json]

s3prl saves upstream weights (and so λ) only for runs trained with -f; the checkpoint's 'Upstream'
state dict holds ``...mam_lambda.logits`` (λ = sigmoid(logit)) and ``...mam_lambda.layers``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from upstream_merged.mam.learnable import find_lambda_states  # noqa: E402
from upstream_merged.registry import allow_runner_checkpoints  # noqa: E402


def pick_checkpoint(path: Path) -> Path:
    """``path`` itself, or in an expdir: dev-best.ckpt / any *-best.ckpt, else the newest states-*.ckpt."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"no such checkpoint or experiment dir: {path}")
    best = sorted(path.glob("*best*.ckpt"))
    preferred = [p for p in best if p.name == "dev-best.ckpt"] or best
    if preferred:
        return preferred[0]
    states = sorted(path.glob("states-*.ckpt"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not states:
        raise FileNotFoundError(f"{path} holds no dev-best.ckpt, *-best.ckpt or states-*.ckpt")
    return states[-1]


def read_lambdas(checkpoint: Path) -> dict:
    """{bank: {layer: λ}} from the checkpoint's 'Upstream' state dict; explains a run without -f."""
    allow_runner_checkpoints()
    states = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    upstream = states.get("Upstream")
    if upstream is None:
        raise KeyError(f"{checkpoint} has no 'Upstream' weights: s3prl saves them only for runs trained with -f")
    banks = find_lambda_states(upstream)
    if not banks:
        raise KeyError(f"{checkpoint}: the upstream has no L-MAM λ (mam_lambda.logits); was it an lmam_* entry?")
    return {"checkpoint": str(checkpoint), "step": states.get("Step"), "banks": banks}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="experiment dir (-p of run_downstream.py) or a .ckpt file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        result = read_lambdas(pick_checkpoint(args.path))
    except (FileNotFoundError, KeyError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['checkpoint']} (step {result['step']})")
    for bank, values in result["banks"].items():
        print(f"{bank}:")
        for layer, value in values.items():
            print(f"  layer {layer:3d}  lambda {value:.6f}")
        # ready to paste into a fixed-λ recipe (with `layers:` listing the same layers)
        print(f"  recipe: layers: {list(values)}  lambda: {[round(v, 6) for v in values.values()]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
