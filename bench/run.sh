#!/usr/bin/env bash
# Run every benchmark (issue 6) and write bench/RESULTS.md. Flags pass through to
# `python -m bench` (e.g. --only latency --rounds 3). Needs a running Docker engine with the
# node image (debian:bookworm-slim) present, and the project's dependencies in $PYTHON,
# .venv, or /tmp/venv.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in "$repo/.venv/bin/python" /tmp/venv/bin/python; do
    if [ -x "$candidate" ]; then python="$candidate"; break; fi
  done
fi
: "${python:?set PYTHON to a Python that has the project dependencies}"
cd "$repo"
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m bench "$@"
