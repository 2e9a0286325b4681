#!/usr/bin/env bash
# Run every benchmark (issue 6) and write bench/RESULTS.md. Flags pass through to
# `python -m bench` (e.g. --only latency --rounds 3). Sets up what it needs first, as the
# README's commands do: a Docker engine with the node image, and the project's .venv.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
bash scripts/ensure-docker.sh
bash scripts/bootstrap.sh dev
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec .venv/bin/python -m bench "$@"
