"""Approach 1 from training curves, and reading histories only for runs that changed."""

from __future__ import annotations

import json

from _refit_support import RunSpec, fit_json, fit_runs, log_runs, new_experiment, read_artifact
from mlflow import MlflowClient

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.reading import CurveCache

SETTINGS = RefitSettings(n_boot=0)


def curve_runs(sizes, multiples=(20, 60), steps=25):
    return [
        RunSpec("curves", n, m * n, None, name=f"N{n:.0e}x{m}", curve_steps=steps)
        for n in sizes
        for m in multiples
    ]


def test_envelope_and_history_cache(mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "curves")
    log_runs(client, exp_id, curve_runs((1e7, 3e7, 1e8, 3e8, 1e9)))

    (first,) = refit_pass(client, experiments=[exp_name], settings=SETTINGS)
    assert first.status == "fitted" and first.curves_fetched == 10
    (run,) = fit_runs(client, exp_id, "curves")
    doc = fit_json(client, run.info.run_id, tmp_path)
    a1 = doc["approach1"]
    assert a1["applicable"] is True and a1["n_curves"] == 10
    assert 0.3 < a1["a"] < 0.7
    # The final points are the members: N, D = final tokens, loss = last val_loss.
    assert {m["C_source"] for m in doc["members"]} == {"scaling.flops"}
    cached = json.loads(
        read_artifact(client, run.info.run_id, schema.ARTIFACT_CURVES_JSON, tmp_path)
    )
    assert len(cached["runs"]) == 10

    # A new run: a fresh process (empty in-memory cache) reads only its history.
    log_runs(client, exp_id, curve_runs((3e9,), multiples=(20,)))
    (second,) = refit_pass(
        client, experiments=[exp_name], settings=SETTINGS, curve_cache=CurveCache()
    )
    assert second.status == "fitted" and second.curves_fetched == 1
    assert second.n_members == 11
