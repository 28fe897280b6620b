"""Benchmark: the cached probe's lean step against the stock loop, on one task's cached features, in one run.

    python tools/bench_probe.py --evalsets /work/evalsets --task ks --entry hubert_small --steps 6000 --repeat 3

Extracts (or reads) the entry's features of the task, then trains the same probe ``--repeat`` times with
``lean=True`` (one-frame pooling, foreach optimizer and clipping: upstream_merged.evaluation.probe) and
``lean=False`` (s3prl's per-clip MeanPooling loop, single-tensor optimizer: what the stock runner runs on a
CPU), alternating, on a fixed step budget (dev every ``--eval-step``, no early stop), one torch thread.
Prints each pair's seconds and ratio, the median and range of the ratios, and whether every lean probe
equals its stock twin (dev curve, test predictions, layer weights): the speed-up must change no number.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from upstream_merged.evaluation.evalsets import power_tasks  # noqa: E402
from upstream_merged.evaluation.features import Upstream, cached_splits  # noqa: E402
from upstream_merged.evaluation.probe import Schedule, train_probe  # noqa: E402
from upstream_merged.evaluation.run import setup_from  # noqa: E402


def same_probe(a, b) -> bool:
    """Two ProbeResults agree on every number the table reads."""
    return a.dev_curve == b.dev_curve and a.predictions == b.predictions and a.layer_weights == b.layer_weights


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evalsets", type=Path, required=True, help="root of the evaluation sets (docs/evalsets.md)")
    parser.add_argument("--task", default="ks", help="ks | sid | pitch | instrument (default ks)")
    parser.add_argument("--entry", default="hubert_small", help="the upstream whose features are probed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=6000, help="fixed step budget of every probe (default 6000)")
    parser.add_argument("--eval-step", type=int, default=200, help="dev evaluated every N steps (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="lean/stock pairs (default 3)")
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch for the experts (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.steps < 1 or args.eval_step < 1:
        parser.error("--repeat, --steps and --eval-step must be at least 1")
    torch.set_num_threads(1)
    (task,) = power_tasks(args.evalsets, [args.task])  # refuses an unknown task or a missing set
    setup = setup_from(task.run.downstream, task.run.config, dict(task.run.overrides),
                       expdir=None if args.work_dir is None else args.work_dir / f"{args.entry}-{args.task}")
    began = time.monotonic()
    features = cached_splits(Upstream(args.entry), setup, progress=False)
    print(f"features of {args.entry} on {args.task}: {time.monotonic() - began:.1f} s (extracted or read from the cache)")
    schedule = Schedule(args.steps, args.eval_step, name="bench")
    ratios, identical = [], True
    for number in range(1, args.repeat + 1):
        lean = train_probe(setup, features, args.seed, schedule, entry=args.entry, lean=True)
        stock = train_probe(setup, features, args.seed, schedule, entry=args.entry, lean=False)
        same = same_probe(lean, stock)
        identical &= same
        ratios.append(lean.seconds / stock.seconds)
        print(f"pair {number}: lean {lean.seconds:.1f} s ({1000 * lean.seconds / lean.steps:.2f} ms/step), stock "
              f"{stock.seconds:.1f} s ({1000 * stock.seconds / stock.steps:.2f} ms/step); ratio {ratios[-1]:.3f}; "
              f"identical: {'yes' if same else 'NO'}")
    print(f"lean / stock probe time, median of {args.repeat} pair(s): {float(np.median(ratios)):.3f} "
          f"(range {min(ratios):.3f}-{max(ratios):.3f}); every pair identical: {'yes' if identical else 'NO'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
