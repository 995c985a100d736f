#!/usr/bin/env bash
# README command 1: set up, then run the main job (examples/demo.py) on MLflow's default store,
# sqlite:///mlflow.db in the repository folder. Extra arguments go to the demo (e.g. --quick).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
exec "$root/.venv/bin/python" examples/demo.py "$@"
