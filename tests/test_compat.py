"""The private MLflow names the project relies on are still there (mlflow_scaling/compat).

A failure here after an MLflow upgrade names the module to update; pyproject.toml pins the
MLflow versions these were checked against.
"""

from __future__ import annotations

import mlflow
import pytest
from _refit_support import RunSpec, log_runs, new_experiment
from mlflow import MlflowClient

from mlflow_scaling.compat import (
    artifact_delete,
    auth_permissions,
    metric_steps,
    server_app,
    server_artifacts,
)
from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import analyze_job
from mlflow_scaling.tracking.reading import ExperimentRef, Family, MemberPoint

MODULES = [server_artifacts, auth_permissions, metric_steps, server_app, artifact_delete]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_private_names_still_exist(module):
    gone = module.missing()
    assert gone == [], (
        f"MLflow {mlflow.__version__} no longer has {', '.join(gone)}: update "
        f"{module.__name__.replace('.', '/')}.py (and the MLflow range in pyproject.toml)"
    )


def test_static_prefix_variable_matches_mlflow():
    from mlflow.server.handlers import STATIC_PREFIX_ENV_VAR

    assert server_app.STATIC_PREFIX_ENV == STATIC_PREFIX_ENV_VAR


def test_latest_metric_steps_come_with_search_results(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, _ = new_experiment(client, "steps")
    log_runs(client, exp_id, [RunSpec("steps", 1e8, 2e9, None, curve_steps=4)])
    (run,) = client.search_runs([exp_id])
    steps = {m.key: m.step for m in metric_steps.latest(run)}
    assert steps["val_loss"] == 4 and steps["scaling.params"] == 0


def test_approach1_says_it_is_off_without_metric_steps():
    points = [
        MemberPoint(f"r{i}{j}", "", n, 20 * n * j, 120 * n * n * j, "6ND",
                    1.8 + 400 / n**0.34 + 2000 / (20 * n * j) ** 0.37, "val_loss", 0, None)
        for i, n in enumerate((1e7, 1e8, 1e9)) for j in (1, 3)
    ]  # fmt: skip
    family = Family(ExperimentRef("0", "e"), "f", points)
    analysis, _ = analyze_job(family, RefitSettings(n_boot=0), {}, None, metric_steps.UNAVAILABLE)
    assert analysis["approach1"] == {"applicable": False, "reason": metric_steps.UNAVAILABLE}
    assert analysis["approach1"]["reason"].startswith("off: this MLflow version does not expose")
