#!/usr/bin/env python3
"""Run the L-MAM protocol: regular fine-tuning vs fixed-λ MAM + fine-tuning vs L-MAM (same budget and seeds).

    python tools/lmam_protocol.py PROTOCOL.yaml [--jobs 2] [--device cpu] [--collect-only] [--dry-run]

Every arm is a stock ``run_downstream.py -f`` run driven by the SUPERB sweep runner (resumable:
finished runs are skipped). Writes OUT/lmam_protocol.md / .json / lambdas.csv (metric per arm per
seed with mean ± std; learned λ per layer per seed with mean, std and range) and OUT/sweep/results.*.
The protocol format is documented in upstream_merged/mam/protocol.py and docs/mam.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from upstream_merged.mam.protocol import load_protocol, run_protocol, sweep_spec  # noqa: E402


def main(argv=None) -> int:
    """CLI entry point; exit 1 when a run failed, 2 on a bad protocol."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("protocol", type=Path, help="protocol YAML")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    parser.add_argument("--device", default=None, help="override the protocol's device (cpu, cuda)")
    parser.add_argument("--output-dir", default=None, help="override the protocol's output_dir")
    parser.add_argument("--collect-only", action="store_true", help="only rewrite the report from finished runs")
    parser.add_argument("--dry-run", action="store_true", help="print the runs' commands, run nothing")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        output_dir = str(Path(args.output_dir).resolve()) if args.output_dir else None
        protocol = load_protocol(args.protocol, device=args.device, output_dir=output_dir)
        if args.dry_run:
            from upstream_merged.superb.commands import plan_sweep
            from upstream_merged.superb.sweep import dry_run_lines

            out_dir = Path(protocol.output_dir)
            out_dir = out_dir if out_dir.is_absolute() else Path(protocol.base_dir or ".") / out_dir
            print("\n".join(dry_run_lines(plan_sweep(sweep_spec(protocol, out_dir)))))
            return 0
        summary = run_protocol(protocol, jobs=args.jobs, collect_only=args.collect_only)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {summary['report']}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
