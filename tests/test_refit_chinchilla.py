"""The Chinchilla runs logged as MLflow runs, refitted through the server: Epoch's optimum."""

from __future__ import annotations

import csv
import io

import pytest
from _refit_support import (
    RunSpec,
    call_cli,
    fit_json,
    fit_runs,
    log_runs,
    new_experiment,
    read_artifact,
)
from mlflow import MlflowClient
from reference_data import EPOCH, chinchilla

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.tracking import schema


def test_chinchilla_family_through_mlflow(mlflow_server, tmp_path):
    points = chinchilla()  # skips when the reference data is absent
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "chinchilla")
    specs = [
        RunSpec("chinchilla", float(n), float(d), float(loss), name=f"chinchilla-{i}",
                loss_metric="loss", flops=float(6 * n * d))
        for i, (n, d, loss) in enumerate(zip(points.n, points.d, points.loss, strict=True))
    ]  # fmt: skip
    ids = log_runs(client, exp_id, specs)
    out = call_cli("refit", "--tracking-uri", mlflow_server, "--experiment", exp_name,
                   "--bootstrap", "50", "--budget", "1e21", "1e22", "5.88e23",
                   "--huber-delta", "1e-3")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "chinchilla" in out.stdout and "fitted" in out.stdout

    (run,) = fit_runs(client, exp_id, "chinchilla")
    metrics = run.data.metrics
    for name, value in EPOCH.items():
        assert metrics[schema.fit_metric(name)] == pytest.approx(value, rel=2e-3), name
    assert metrics[schema.METRIC_FIT_POINTS] == 240
    doc = fit_json(client, run.info.run_id, tmp_path)
    assert sorted(doc["member_run_ids"]) == sorted(ids) and doc["excluded"] == []
    assert doc["approach3"]["objective"] == pytest.approx(1.018274e-3, rel=1e-4)
    assert doc["approach2"]["applicable"] is True  # the isoFLOP budgets of the paper
    assert abs(doc["approach2"]["a"] - doc["approach3"]["allocation"]["a"]) < 0.08
    rows = list(csv.DictReader(io.StringIO(
        read_artifact(client, run.info.run_id, schema.ARTIFACT_PREDICTIONS_CSV, tmp_path).decode()
    )))  # fmt: skip
    assert [float(r["flops"]) for r in rows] == [1e21, 1e22, 5.88e23]
    assert float(rows[2]["tokens_per_param"]) == pytest.approx(20, abs=3)  # Epoch: ~20

    # Nothing changed: the next pass only reads and compares digests.
    (again,) = refit_pass(
        client, experiments=[exp_name],
        settings=RefitSettings(n_boot=50, budgets=(1e21, 1e22, 5.88e23), huber_delta=1e-3),
    )  # fmt: skip
    assert again.status == "skipped" and again.refit_number == 1
