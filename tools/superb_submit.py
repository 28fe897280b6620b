#!/usr/bin/env python3
"""Package a SUPERB leaderboard submission (predict/<task>_public/... + predict.zip).

Same as ``python -m upstream_merged submit OUT (--sweep DIR --entry LABEL | --task ks=EXPDIR ...)``.
"""
import sys

from upstream_merged.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["submit", *sys.argv[1:]]))
