#!/usr/bin/env bash
# The project's checks, setting up what they need first: a Docker engine and the node image,
# the virtual environment, then ruff, mypy --strict and the tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-docker.sh
bash scripts/bootstrap.sh dev
echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict" >&2
.venv/bin/mypy
echo "== pytest" >&2
exec .venv/bin/python -m pytest "$@"
