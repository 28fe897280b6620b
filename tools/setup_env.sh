#!/usr/bin/env bash
# Build the reference stack from nothing (idempotent): apt packages, a venv outside the clone keyed
# by a hash of tools/requirements.txt, the pinned pip installs, and this plugin in editable mode.
# The venv's path is the last line printed on stdout.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$repo/tools/requirements.txt"
log() { echo "[setup_env] $*" >&2; }

need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need_apt+=(sox)
ldconfig -p 2>/dev/null | grep -q 'libsox\.so ' || need_apt+=(libsox-dev)
# realistic synthetic audio (issue 20): sampled instruments and two more speech engines with their voices
command -v fluidsynth >/dev/null 2>&1 || need_apt+=(fluidsynth)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need_apt+=(fluid-soundfont-gm)
command -v flite >/dev/null 2>&1 || need_apt+=(flite)
command -v text2wave >/dev/null 2>&1 || need_apt+=(festival)
for voice in festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts; do
  dpkg -s "$voice" >/dev/null 2>&1 || need_apt+=("$voice")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing apt packages: ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >&2
fi

python_bin="${PYTHON:-python3}"
key="$( (cat "$req"; "$python_bin" --version) | sha256sum | cut -c1-16)"
cache_root="${UPSTREAM_MERGED_VENV_ROOT:-$HOME/.cache/upstream_merged}"
venv="$cache_root/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  log "building venv $venv"
  rm -rf "$venv"
  mkdir -p "$cache_root"
  "$python_bin" -m venv "$venv"
  # catalyst 22.4 (speech_commands) has metadata that pip >= 24.1 rejects
  "$venv/bin/pip" install -q "pip<24.1" setuptools wheel >&2
  # torch first so the torchaudio wheel finds exactly its torch
  "$venv/bin/pip" install -q torch==2.8.0 torchaudio==2.8.0 >&2
  "$venv/bin/pip" install -q -r "$req" >&2
  touch "$venv/.complete"
else
  log "venv up to date: $venv"
fi
nodeps="$repo/tools/requirements-nodeps.txt"
stamp="$venv/.nodeps-$(sha256sum "$nodeps" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$venv/bin/pip" install -q --no-deps -r "$nodeps" >&2
  touch "$stamp"
fi
# The plugin itself: editable, plus the .pth hook that editable installs do not carry.
if ! (cd / && "$venv/bin/python" -c "import upstream_merged, sys; sys.exit(0 if upstream_merged.__file__.startswith('$repo/') else 1)") >/dev/null 2>&1; then
  "$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$repo" >&2
fi
(cd / && "$venv/bin/python" -m upstream_merged install-hook >&2)
echo "$venv"
