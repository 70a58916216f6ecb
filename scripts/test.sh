#!/usr/bin/env bash
# Sets up the environment, lints, and runs the test suite.
#   bash scripts/test.sh          # everything: starts a Docker engine if none runs, builds the
#                                 # project image (cached by content), runs the container tier too
#   bash scripts/test.sh quick    # the edit loop: no container tier, no whole-run CLI scenarios
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check .
ruff format --check .
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
if [ "${1:-}" = quick ]; then
    shift
    exec python -m pytest -q -m "not slow and not container" "$@"
fi
. scripts/container_engine.sh
engine_up
trap engine_down EXIT
python -m pytest -q "$@"
