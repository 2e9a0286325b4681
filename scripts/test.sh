#!/usr/bin/env bash
# The project's checks, setting up what they need first: a Docker engine and the node image,
# Node.js and npm (for Azurite and the JavaScript SDK), the virtual environment, then ruff,
# mypy --strict and the tests. Extra arguments go to pytest.
# The test that restarts the Docker engine runs only with JOBPREP_RELEASE_TEST_ENGINE_RESTART=1
# (and an engine scripts/ensure-docker.sh started); .ci/run sets it, nothing else does.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-docker.sh
bash scripts/ensure-node.sh
bash scripts/bootstrap.sh dev
echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict" >&2
.venv/bin/mypy
echo "== pytest" >&2
exec .venv/bin/python -m pytest "$@"
