#!/usr/bin/env bash
# Create .venv beside this repository and install the project with its dev tools.
# torch==2.13.0 goes in first: it is the CPU build on this project's machines, and a plain
# `torch` requirement would otherwise pull a multi-GB CUDA build. Re-running is cheap: the
# install is skipped while pyproject.toml is unchanged.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv" >&2
  "$python" -m venv "$venv"
fi
stamp="$venv/.mlflow-scaling-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "setup: installing torch==2.13.0" >&2
    "$venv/bin/python" -m pip install -q torch==2.13.0
  fi
  echo "setup: installing mlflow-scaling and its dependencies" >&2
  "$venv/bin/python" -m pip install -q -e "$root[dev]"
  echo "$want" > "$stamp"
fi
