#!/usr/bin/env bash
# The main job, from nothing: set up the stack, synthesize a small speech-commands set, merge the
# embedded tiny HuBERT + tiny MERT with the correlation-permutation recipe, then train and evaluate
# the merged upstream with the *stock* s3prl run_downstream.py (CPU, a few minutes).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$repo/tools/setup_env.sh" | tail -n 1)"
py="$venv/bin/python"
demo="${DEMO_DIR:-$HOME/.cache/upstream_merged/demo}"
mkdir -p "$demo"
s3prl_dir="$(cd / && "$py" -c 'import os, importlib.util; print(os.path.dirname(importlib.util.find_spec("s3prl").origin))')"

if [ ! -d "$demo/data/speech_commands_v0.01" ]; then
  rm -rf "$demo/data"
  "$py" "$repo/tools/make_speech_commands.py" "$demo/data"
fi
overrides="config.downstream_expert.datarc.speech_commands_root=$demo/data/speech_commands_v0.01,,config.downstream_expert.datarc.speech_commands_test_root=$demo/data/speech_commands_test_set_v0.01"

echo "== merge: tiny HuBERT + tiny MERT (recipes/tiny_hubert_mert.yaml)"
"$py" -m upstream_merged merge "$repo/recipes/tiny_hubert_mert.yaml" "$demo/merged" --force

echo "== stock s3prl: train merged_hubert_mert on speech_commands"
rm -rf "$demo/exp"
(cd "$demo" && "$py" "$s3prl_dir/run_downstream.py" -m train -u merged_hubert_mert -k "$demo/merged" \
  -d speech_commands -c "$repo/downstream_configs/speech_commands_cpu_small.yaml" -p "$demo/exp" \
  --device cpu -o "$overrides" 2>&1 | grep -E "^(dev|test) acc" )

echo "== stock s3prl: evaluate dev-best.ckpt on test"
(cd "$demo" && "$py" "$s3prl_dir/run_downstream.py" -m evaluate -e "$demo/exp/dev-best.ckpt" -t test \
  --device cpu 2>&1 | grep -E "^test acc")

echo "== merge report ($demo/merged/merge_report.json): share of channels moved per group (paper Table II)"
"$py" - "$demo/merged/merge_report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
print(f"preset {report['preset']} (paper Table I ID {report.get('paper_table_i_id')}), alpha {report['alpha']}, "
      f"{report['calibration']['clips_used']} calibration clips")
print(f"{'group':12s} {'size':>5s} {'moved':>7s} {'corr before':>12s} {'corr after':>11s}")
for name, group in report["groups"].items():
    print(f"{name:12s} {group['size']:5d} {group['moved_share']:7.1%} {group['corr_before']:12.3f} {group['corr_after']:11.3f}")
PY
echo "demo outputs in $demo"
