"""Refit writers at the same time end with one fit run per family and consistent files.

Each interleaving is driven, not left to timing: threads meet at a barrier before creating fit
runs, and one pass runs another pass inside its ``on_family_start`` hook (after it read every
family, before it writes any), so each test has one expected outcome.
"""

from __future__ import annotations

import threading

from _refit_support import (
    RunSpec,
    fit_json,
    fit_runs,
    log_runs,
    new_experiment,
    synthetic_family,
)
from mlflow import MlflowClient
from mlflow.entities import ViewType

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.fit_run import ensure_fit_run
from mlflow_scaling.tracking.published import numbered_params, published_fit
from mlflow_scaling.tracking.reading import ExperimentRef, fit_run_order

SETTINGS = RefitSettings(n_boot=0)


def test_racing_creators_keep_the_oldest_fit_run(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "race")
    experiment = ExperimentRef(exp_id, exp_name)
    barrier = threading.Barrier(4)
    chosen: list[str] = []

    def worker():
        own = MlflowClient(mlflow_server)
        barrier.wait()
        chosen.append(ensure_fit_run(own, experiment, "fam", known=()).info.run_id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Each creator may briefly see its own run as the oldest (start times come from the
    # clients, commits land in another order), but every run except the oldest is deleted by
    # whoever sees both; the write phase of a pass checks again before it reports.
    assert len(chosen) == 4
    created = client.search_runs([exp_id], run_view_type=ViewType.ALL, max_results=100)
    oldest = min(created, key=fit_run_order)
    (survivor,) = fit_runs(client, exp_id, "fam")
    assert survivor.info.run_id == oldest.info.run_id


def test_a_pass_that_read_first_and_writes_last_is_superseded(mlflow_server):
    """Pass 1 (analysing in worker processes) reads every family; before it writes, pass 2
    reads and writes them all. Pass 1 then finds pass 2's fit runs, later readings: its
    results are dropped, and each family keeps one fit run with pass 2's fit."""
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "concurrent")
    specs = synthetic_family("fitted", sizes=(1e7, 1e8, 1e9), tokens_per_param=(10, 40))
    specs += [RunSpec("tiny", 1e8, 2e9 * (i + 1), 3.0 - 0.1 * i) for i in range(3)]
    specs += [RunSpec("broken", 1e8, 2e9, 3.0, status="FAILED") for _ in range(2)]
    log_runs(client, exp_id, specs)
    second: list = []

    def run_second_pass(family: str, index: int, total: int) -> None:
        if not second:
            second.extend(refit_pass(client, experiments=[exp_name], settings=SETTINGS))

    first = refit_pass(client, experiments=[exp_name], settings=SETTINGS, workers=2,
                       on_family_start=run_second_pass)  # fmt: skip
    expected = {"broken": "insufficient_data", "fitted": "fitted", "tiny": "insufficient_data"}
    assert {o.family: (o.status, o.refit_number) for o in second} == {
        f: (status, 1) for f, status in expected.items()}  # fmt: skip
    assert {o.family: (o.status, o.refit_number) for o in first} == {
        f: ("superseded", 1) for f in expected}  # fmt: skip

    for family in expected:
        (run,) = fit_runs(client, exp_id, family)
        fit = published_fit(run)
        assert fit.number == 1
        # Pass 1 claimed 2 on the same run, then dropped its result: no folder, no record.
        assert sorted(numbered_params(run.data.params, schema.PARAM_REFIT_CLAIM_PREFIX)) == [1, 2]
        assert sorted(numbered_params(run.data.params, schema.PARAM_PUBLISHED_PREFIX)) == [1]
        doc = fit_json(client, run.info.run_id)
        assert doc["fit_run_id"] == run.info.run_id
        assert doc["input_digest"] == run.data.tags[schema.TAG_INPUT_DIGEST] == fit.input_digest
        assert doc["settings_digest"] == run.data.tags[schema.TAG_SETTINGS_DIGEST]
        assert doc["refit_number"] == int(run.data.tags[schema.TAG_REFIT_NUMBER]) == 1
        assert doc["phase"] == run.data.tags[schema.TAG_PHASE]
    members = fit_json(client, fit_runs(client, exp_id, "fitted")[0].info.run_id)
    assert len(members["member_run_ids"]) == 6
