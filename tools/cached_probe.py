#!/usr/bin/env python
"""Cached-feature probes of frozen upstreams, and paired comparisons of their per-clip predictions.

    # extract hubert_small's hidden states once, train the s3prl probe to convergence for 3 seeds
    python tools/cached_probe.py probe -u hubert_small -d speech_commands \\
        -c downstream_configs/speech_commands_cpu_small.yaml \\
        -o "config.downstream_expert.datarc.speech_commands_root=/data/sc/speech_commands_v0.01,,config.downstream_expert.datarc.speech_commands_test_root=/data/sc/speech_commands_test_set_v0.01" \\
        --seeds 0 1 2 --schedule converge --out hubert_small-ks.json

    # accuracy of each with its 95% interval, and A - B paired over the same test clips (and seeds)
    python tools/cached_probe.py compare hubert_small-ks.json mert_small-ks.json

``-u/-k/-g/-d/-c/-o`` mean what they mean to run_downstream.py. The probe is s3prl's Featurizer
(weighted layer sum) + the task's own head, trained on hidden states cached under
``<plugin cache>/features`` (keyed by the upstream's weights and the data). ``--schedule stock`` trains
the config's step budget (what run_downstream.py would train; tools/validate_cached_probe.py shows the
two agree); ``converge`` trains until dev accuracy plateaus. For frozen upstreams only: ``-f`` rows stay
stock runs.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def parse_override_string(text: Optional[str]) -> Dict[str, str]:
    """run_downstream.py's ``-o`` syntax (``key=value`` joined by ``,,``) as a dict; values parsed later like -o."""
    out: Dict[str, str] = {}
    for option in (text or "").split(",,"):
        if not option.strip():
            continue
        if "=" not in option:
            raise ValueError(f"-o option {option!r} has no '=' (expected config.a.b=value)")
        key, value = option.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def cmd_probe(args: argparse.Namespace) -> int:
    """Extract (once) and train the probe for every seed; write the results JSON."""
    from upstream_merged.evaluation.features import Upstream
    from upstream_merged.evaluation.probe import Schedule
    from upstream_merged.evaluation.run import probe_upstream, save_results, setup_from

    if args.out.exists() and not args.force:
        raise SystemExit(f"{args.out} exists; pass --force to overwrite it")
    setup = setup_from(args.downstream, args.config, parse_override_string(args.override))
    if args.schedule == "converge":
        schedule = Schedule.converge(args.max_steps, args.eval_step, args.patience, args.min_steps)
    else:
        schedule = "stock"
    upstream = Upstream(args.upstream, args.upstream_ckpt, args.upstream_model_config)
    results = probe_upstream(upstream, setup, args.seeds, schedule, dtype=args.dtype, normalize=args.normalize,
                             layer_selection=args.layer, progress=not args.quiet)
    save_results(results, args.out)
    for r in results:
        print(f"{args.upstream} {args.downstream} seed {r.seed}: test {r.test_accuracy.text()} "
              f"(dev {r.dev_accuracy}, best step {r.best_step} of {r.steps}, {r.seconds:.1f} s)")
    print(f"wrote {args.out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Accuracy with Wilson intervals of each run, and the paired bootstrap of A - B."""
    from upstream_merged.evaluation.run import load_results
    from upstream_merged.evaluation.stats import accuracy, compare_seeds

    a, b = load_results(args.a), load_results(args.b)
    if not a or not b:
        raise SystemExit(f"{args.a if not a else args.b} holds no probe results")
    for path, results in ((args.a, a), (args.b, b)):
        for r in results:
            print(f"{path.name} seed {r.seed}: {r.entry} {r.task} test {r.test_accuracy.text()}")
    diff = compare_seeds([r.correct() for r in a], [r.correct() for r in b], resamples=args.resamples,
                         seed=args.bootstrap_seed)
    pooled_a = accuracy([flag for r in a for flag in r.correct().values()])
    pooled_b = accuracy([flag for r in b for flag in r.correct().values()])
    print(f"A {args.a.name}: {pooled_a.value:.4f} over {len(a)} seed(s); B {args.b.name}: {pooled_b.value:.4f} "
          f"over {len(b)} seed(s); {diff.clips} paired test clips")
    print(f"A - B = {diff.text(4)} (95% paired bootstrap over clips{' and seeds' if max(diff.seeds_a, diff.seeds_b) > 1 else ''}, "
          f"{diff.resamples} resamples); McNemar (first seeds): only A right {diff.mcnemar.only_a}, only B right "
          f"{diff.mcnemar.only_b}, p = {diff.mcnemar.p_value:.3g}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe", help="extract once, train the probe per seed, write JSON with per-clip predictions")
    probe.add_argument("-u", "--upstream", required=True)
    probe.add_argument("-k", "--upstream_ckpt", default=None)
    probe.add_argument("-g", "--upstream_model_config", default=None)
    probe.add_argument("-d", "--downstream", required=True)
    probe.add_argument("-c", "--config", required=True)
    probe.add_argument("-o", "--override", default=None, help="run_downstream.py -o string")
    probe.add_argument("--seeds", type=int, nargs="+", default=[0])
    probe.add_argument("--schedule", choices=["stock", "converge"], default="converge")
    probe.add_argument("--max-steps", type=int, default=30000)
    probe.add_argument("--min-steps", type=int, default=3000)
    probe.add_argument("--eval-step", type=int, default=200)
    probe.add_argument("--patience", type=int, default=15, help="dev evaluations without a new best before stopping")
    probe.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    probe.add_argument("--normalize", action="store_true", help="run_downstream.py --upstream_feature_normalize")
    probe.add_argument("--layer", type=int, default=None, help="run_downstream.py -l: one layer instead of the weighted sum")
    probe.add_argument("--out", type=Path, required=True)
    probe.add_argument("--force", action="store_true")
    probe.add_argument("-q", "--quiet", action="store_true")
    compare = sub.add_parser("compare", help="paired comparison of two probe result files on the same test set")
    compare.add_argument("a", type=Path)
    compare.add_argument("b", type=Path)
    compare.add_argument("--resamples", type=int, default=10000)
    compare.add_argument("--bootstrap-seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    return cmd_probe(args) if args.command == "probe" else cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
