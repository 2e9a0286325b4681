#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv: `bootstrap.sh [extra]`.
# Reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python="${PYTHON:-python3}"
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)${extra:+-$extra}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# The project without extras is part of every install with extras: any stamp of this
# pyproject.toml will do for a plain bootstrap (the run command after the test command).
if [ -z "$extra" ]; then
  for any in .venv/.installed-"$(sha256sum pyproject.toml | cut -c1-16)"*; do
    [ -f "$any" ] && stamp="$any"
  done
fi
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing the project into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".${extra:+[$extra]}"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
