"""Benchmark: building a tiny permutation entry on a cache miss vs loading it from the cache (median of N runs).

    python tools/bench_cache.py [--runs 3] [--entry merged_hubert_mert_avg_tiny]

Each run uses a fresh plugin cache (a temp dir as UPSTREAM_MERGED_CACHE, set in a child process so
this process's environment is untouched): the first call builds, the second reuses. The unit test
(tests/permutation/test_perm_recipe_hub.py) checks reuse by identity, never by time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_CHILD = """
import json, sys, time
from upstream_merged.registry import entries
hub = entries()
start = time.perf_counter(); hub[sys.argv[1]](); build = time.perf_counter() - start
start = time.perf_counter(); hub[sys.argv[1]](); reuse = time.perf_counter() - start
print(json.dumps({"build": build, "reuse": reuse}))
"""


def one_run(entry: str) -> dict:
    """Build-then-reuse times (s) of ``entry`` in a child process with an empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, UPSTREAM_MERGED_CACHE=cache, HF_HUB_OFFLINE="1")
        out = subprocess.run([sys.executable, "-c", _CHILD, entry], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--entry", default="merged_hubert_mert_avg_tiny")
    args = parser.parse_args()
    runs = [one_run(args.entry) for _ in range(args.runs)]
    build = statistics.median(r["build"] for r in runs)
    reuse = statistics.median(r["reuse"] for r in runs)
    print(f"{args.entry}: build {build:.2f} s, cached reuse {reuse:.3f} s (median of {args.runs}; "
          f"reuse/build {reuse / build:.3f})")


if __name__ == "__main__":
    main()
