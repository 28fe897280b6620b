#!/usr/bin/env bash
# The main job, from nothing: set up the stack, then run the stock s3prl recipe (train + evaluate) on one
# speech task (keyword spotting) and one music task (NSynth pitch class) for the shipped small speech
# encoder, the shipped small music encoder, their linear interpolation (paper Table I ID 4) and their
# correlation-permutation merge (ID 5), and print the Table-I-shaped comparison. Everything runs through the
# SUPERB sweep runner (tools/reproduce_table.py --demo); about 5 minutes on 2 CPU cores, progress as it goes.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "== set-up (tools/setup_env.sh)"
venv="$(bash "$repo/tools/setup_env.sh" | tail -n 1)"
py="$venv/bin/python"
demo="${DEMO_DIR:-$HOME/.cache/upstream_merged/demo}"
mkdir -p "$demo"

echo "== data, merges, then 8 stock runs (4 upstreams x 2 tasks, 150 steps, seed 0, 2 at a time)"
"$py" "$repo/tools/reproduce_table.py" --demo --work-dir "$demo" --out "$demo/table" --jobs 2 --heartbeat 30
echo "== table: $demo/table/table_i.md (stock commands inside); runs: $demo/sweeps"
