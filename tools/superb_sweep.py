#!/usr/bin/env python3
"""Run a SUPERB sweep: the same as ``python -m upstream_merged sweep SPEC [--executor local|slurm] [--jobs N] [--dry-run]``."""
import sys

from upstream_merged.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
