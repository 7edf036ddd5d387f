#!/usr/bin/env bash
# Set-up for the Kubernetes deploy target. Idempotent. Nothing to start: the tests run their own
# fake Kubernetes API server on 127.0.0.1; only Python packages are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -m pip install --quiet -r requirements/k8s.txt
