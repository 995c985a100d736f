"""The run-context plugin: MLFLOW_SCALING_FAMILY tags every run without code changes.

MLflow loads run-context providers from entry points when it first resolves tags, so each
case runs in a fresh Python process with the environment set before MLflow is imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

from _refit_support import ROOT, cli_env, new_experiment
from mlflow import MlflowClient

from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.context import ScalingFamilyContext

SCRIPT = r"""
import json, sys
import mlflow
uri, exp = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
mlflow.set_experiment(exp)
ids = {}
with mlflow.start_run() as run:
    ids["start_run"] = run.info.run_id
with mlflow.start_run(tags={"scaling.family": "explicit"}) as run:
    ids["explicit"] = run.info.run_id
if len(sys.argv) > 3:
    from lightning.pytorch.loggers import MLFlowLogger
    logger = MLFlowLogger(experiment_name=exp, tracking_uri=uri)
    ids["lightning"] = logger.run_id
    logger.finalize("success")
print(json.dumps(ids))
"""


def run_script(uri: str, exp: str, env: dict[str, str], lightning: bool = False) -> dict:
    args = [sys.executable, "-c", SCRIPT, uri, exp] + (["lightning"] if lightning else [])
    out = subprocess.run(
        args, capture_output=True, text=True, timeout=240, env=cli_env(env), cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_family_from_environment_tags_every_run(mlflow_server):
    client = MlflowClient(mlflow_server)
    _, exp = new_experiment(client, "context")
    env = {"MLFLOW_SCALING_FAMILY": " gpt-small ", "MLFLOW_SCALING_LOSS_METRIC": "eval/loss"}
    ids = run_script(mlflow_server, exp, env, lightning=True)
    for key in ("start_run", "lightning"):
        tags = client.get_run(ids[key]).data.tags
        assert tags[schema.TAG_FAMILY] == "gpt-small", key
        assert tags[schema.TAG_LOSS_METRIC] == "eval/loss", key
    assert client.get_run(ids["explicit"]).data.tags[schema.TAG_FAMILY] == "explicit"


def test_no_family_without_the_environment(mlflow_tracking, monkeypatch):
    import mlflow

    monkeypatch.setenv(schema.ENV_FAMILY, "  ")
    mlflow.set_experiment(new_experiment(MlflowClient(mlflow_tracking), "context-off")[1])
    with mlflow.start_run() as run:
        pass
    assert schema.TAG_FAMILY not in MlflowClient(mlflow_tracking).get_run(run.info.run_id).data.tags
    monkeypatch.setenv(schema.ENV_FAMILY, "late")  # read when each run starts
    with mlflow.start_run() as run:
        pass
    tags = MlflowClient(mlflow_tracking).get_run(run.info.run_id).data.tags
    assert tags[schema.TAG_FAMILY] == "late"


def test_provider_in_process(monkeypatch):
    provider = ScalingFamilyContext()
    monkeypatch.delenv(schema.ENV_FAMILY, raising=False)
    assert not provider.in_context() and provider.tags() == {}
    monkeypatch.setenv(schema.ENV_FAMILY, "f1")
    monkeypatch.delenv(schema.ENV_LOSS_METRIC, raising=False)
    assert provider.in_context() and provider.tags() == {schema.TAG_FAMILY: "f1"}


def test_entry_point_is_registered():
    from importlib.metadata import entry_points

    eps = entry_points(group="mlflow.run_context_provider")
    assert any(ep.value == "mlflow_scaling.tracking.context:ScalingFamilyContext" for ep in eps)
