#!/usr/bin/env bash
# Set up everything (tools/setup_env.sh, idempotent) and run the whole test suite in the cached venv.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$repo/tools/setup_env.sh" | tail -n 1)"
cd "$repo"
exec "$venv/bin/python" -m pytest tests "$@"
