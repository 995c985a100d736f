#!/usr/bin/env bash
# README command 1: set up, then run the main job (the demo) on MLflow's default sqlite store.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
exec "$root/.venv/bin/mlflow-scaling" demo "$@"
