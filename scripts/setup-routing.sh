#!/usr/bin/env bash
# Idempotent set-up for the gray-routing client tests: Python test dependencies only, no services.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -m pip install --quiet -r requirements/routing.txt
