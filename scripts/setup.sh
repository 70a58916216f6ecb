#!/usr/bin/env bash
# Creates .venv and installs the project with its test tools (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check --upgrade pip
# torch first, pinned to the build whose torchvision works beside it.
python -m pip install --quiet --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
python scripts/requirements.py > .venv/requirements.txt
python -m pip install --quiet --disable-pip-version-check -r .venv/requirements.txt
# The versions the pipeline steps install at run time (src/build/locks/), so tests run what ships.
python -m pip install --quiet --disable-pip-version-check --no-deps \
    -r src/build/locks/data.txt -r src/build/locks/gan.txt
