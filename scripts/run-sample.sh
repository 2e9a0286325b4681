#!/usr/bin/env bash
# Runs the sample on the docker backend, setting up what it needs first. Flags pass through:
#   scripts/run-sample.sh --yes
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-docker.sh
bash scripts/bootstrap.sh
exec .venv/bin/python -m jobprep_release "$@"
