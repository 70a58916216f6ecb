#!/usr/bin/env bash
# Sets up the environment and runs the default pipeline end to end on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python -m src.pipeline run "$@"
