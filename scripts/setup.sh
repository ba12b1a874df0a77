#!/usr/bin/env bash
# Set up a fresh machine: system packages that provide offline data (Debian), then a virtual
# environment with selfsup and its test dependencies. Safe to run again; it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES="espeak-ng dataset-fashion-mnist asterisk-core-sounds-en-wav"
if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
  missing=""
  for p in $SYSTEM_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "setup: installing system packages:$missing"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
      echo "setup: warning: system packages missing ($missing); tests that need them will fail. Install them as root." >&2
    fi
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.selfsup-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch/torchvision/torchaudio pinned to releases that import together (see pyproject.toml)
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" "torchaudio==2.11.0"
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
echo "setup: ready (.venv)"
