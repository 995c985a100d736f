#!/usr/bin/env bash
# The wheel on its own: build the sdist and wheel (`python -m build`), install the wheel (not
# editable) into a fresh venv with torch==2.13.0 first (the CPU build; a plain `torch`
# requirement would pull a CUDA build), and smoke-test it from a folder outside the source tree:
#   - `mlflow-scaling --version` names the wheel's version;
#   - `mlflow-scaling fit --dataset chinchilla` fits the bundled runs (Epoch's optimum);
#   - MLflow finds the run-context plugin (a run started with MLFLOW_SCALING_FAMILY set gets the
#     family tag) and the `mlflow.app` entry points (`mlflow server --app-name scaling` serves
#     /scaling/, rendered from the packaged templates, after a refit of the bundled runs);
#   - the Lightning callback imports.
# Usage: scripts/ci_wheel.sh  (PYTHON=python3.x to choose the interpreter; KEEP=1 keeps $work)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d /tmp/mlflow-scaling-wheel.XXXXXX)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -- "-$server_pid" 2>/dev/null || true; fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
say() { echo "ci_wheel: $*" >&2; }

say "building sdist and wheel in $work/dist"
"$python" -m venv "$work/build-venv"
"$work/build-venv/bin/python" -m pip install -q build
"$work/build-venv/bin/python" -m build --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log" >&2; exit 1; }
wheel="$(ls "$work"/dist/*.whl)"
ls "$work"/dist/*.tar.gz >/dev/null

say "installing $(basename "$wheel") into a fresh venv"
"$python" -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q torch==2.13.0
"$py" -m pip install -q "$wheel"

cd "$work"  # outside the source tree: nothing may come from the checkout
export MLFLOW_TRACKING_URI="sqlite:///$work/mlflow.db"

version="$("$work/venv/bin/mlflow-scaling" --version)"
expected="mlflow-scaling $("$py" -c 'from importlib.metadata import version; print(version("mlflow-scaling"))')"
[ "$version" = "$expected" ] || { say "--version said '$version', expected '$expected'"; exit 1; }
say "$version"

"$work/venv/bin/mlflow-scaling" fit --dataset chinchilla --huber-delta 1e-3 --bootstrap 0 \
  --format json >fit.json
"$py" - <<'PY'
import json
import mlflow_scaling, lightning_callbacks
root = "/".join(mlflow_scaling.__file__.split("/")[:-2])
assert "site-packages" in root, f"mlflow_scaling imported from {root}, not the installed wheel"
summary = json.load(open("fit.json"))
epoch = {"E": 1.8172, "A": 477.8, "B": 2143.0, "alpha": 0.3473, "beta": 0.3672}
for name, value in epoch.items():
    got = summary["params"][name]
    assert abs(got - value) <= 2e-3 * value, (name, got, value)
assert summary["n_points"] == 240
from lightning_callbacks import ScalingLawCallback  # noqa: F401
print("ci_wheel: fit --dataset chinchilla reproduces Epoch's optimum; the callback imports")
PY

# The run-context plugin, through MLflow's own registry; import the bundled runs as a family.
MLFLOW_SCALING_FAMILY=smoke-plugin "$py" - <<'PY'
import mlflow
from mlflow import MlflowClient
from mlflow.server import _find_app

from mlflow_scaling.datasets import load_chinchilla
from mlflow_scaling.tracking.importing import import_points

mlflow.set_experiment("wheel-smoke")
with mlflow.start_run() as run:
    pass
client = MlflowClient()
tags = client.get_run(run.info.run_id).data.tags
assert tags.get("scaling.family") == "smoke-plugin", tags
assert _find_app("scaling") == "mlflow_scaling.server.app:create_app"
assert _find_app("scaling-auth") == "mlflow_scaling.server.app:create_app_with_auth"
client.delete_run(run.info.run_id)
points = load_chinchilla()
import_points(client, points, family="chinchilla", experiment="wheel-smoke", source="bundled")
print("ci_wheel: MLflow found the run-context plugin and both mlflow.app entry points")
PY
"$work/venv/bin/mlflow-scaling" refit --experiment wheel-smoke --bootstrap 0 >refit.log

port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
setsid "$work/venv/bin/mlflow" server --app-name scaling --backend-store-uri "$MLFLOW_TRACKING_URI" \
  --host 127.0.0.1 --port "$port" --workers 1 >server.log 2>&1 &
server_pid=$!
"$py" - "$port" <<'PY' || { tail -n 30 server.log >&2; exit 1; }
import sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.time() + 180
while True:
    try:
        urllib.request.urlopen(base + "/health", timeout=5).read()
        break
    except OSError:
        if time.time() > deadline:
            raise SystemExit("ci_wheel: mlflow server --app-name scaling did not answer /health")
        time.sleep(1)
index = urllib.request.urlopen(base + "/scaling/", timeout=60).read().decode()
assert 'data-family="chinchilla"' in index, index[:2000]
family = urllib.request.urlopen(base + "/scaling/family/wheel-smoke/chinchilla", timeout=60)
assert "Fitted law" in family.read().decode()
print("ci_wheel: mlflow server --app-name scaling serves the index and the family page")
PY
say "the wheel works on its own"
