#!/usr/bin/env bash
# Each refit test file passes alone and in another order: run every tests/test_refit_*.py in a
# pytest of its own (its own MLflow server, no state left by other files), with its tests in
# reverse order (MLFLOW_SCALING_TEST_ORDER=reverse, tests/conftest.py). The full suite
# (scripts/test.sh) runs them forwards. Fails on the first file that fails; extra arguments go
# to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
files=(tests/test_refit_*.py)
[ "${#files[@]}" -gt 0 ] && [ -e "${files[0]}" ] || { echo "ci_refit_isolation: no refit test files" >&2; exit 1; }
for f in "${files[@]}"; do
  echo "ci_refit_isolation: $f alone, tests in reverse order" >&2
  MLFLOW_SCALING_TEST_ORDER=reverse .venv/bin/python -m pytest "$f" -p no:cacheprovider "$@"
done
