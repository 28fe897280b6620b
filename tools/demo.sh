#!/usr/bin/env bash
# The main job, from nothing: set up the stack, then the quick evidence table (tools/evidence_table.py --quick):
# small keyword-spotting and NSynth-pitch sets drawn like the evaluation sets (power / sampled profiles), the
# shipped small speech and music encoders, their plain average (Table I ID 3), linear interpolation (ID 4)
# and correlation-permutation merge (ID 5), the chance and MFCC control rows; every frozen upstream probed to
# convergence on cached features (s3prl's Featurizer + the stock head), 2 seeds; prints the paper's claims with
# paired-bootstrap intervals and verdicts, then writes the full table. Progress is logged per row x task cell;
# a rerun reuses finished cells.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "== set-up (tools/setup_env.sh)"
venv="$(bash "$repo/tools/setup_env.sh" | tail -n 1)"
py="$venv/bin/python"
demo="${DEMO_DIR:-$HOME/.cache/upstream_merged/demo}"
mkdir -p "$demo"

echo "== data, merges, features, probes: 7 rows x 2 tasks, 2 seeds, 2 workers"
"$py" "$repo/tools/evidence_table.py" --quick --work-dir "$demo" --out "$demo/table" --jobs 2
echo "== table: $demo/table/table_i.md (claims, full table, timing), table_i.png, predictions.json"
