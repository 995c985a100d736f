"""Refit passes started at the same time end with one fit run per family and consistent files."""

from __future__ import annotations

import json
import threading

from _refit_support import (
    RunSpec,
    fit_json,
    fit_runs,
    log_runs,
    new_experiment,
    start_cli,
    synthetic_family,
)
from mlflow import MlflowClient

from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.fit_run import ensure_fit_run
from mlflow_scaling.tracking.published import published_fits
from mlflow_scaling.tracking.reading import ExperimentRef


def test_racing_creators_keep_one_fit_run(mlflow_server):
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
    (survivor,) = fit_runs(client, exp_id, "fam")
    assert survivor.info.run_id in chosen


def test_two_refit_processes_at_once(mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "concurrent")
    specs = synthetic_family("fitted", sizes=(1e7, 1e8, 1e9), tokens_per_param=(10, 40))
    specs += [RunSpec("tiny", 1e8, 2e9 * (i + 1), 3.0 - 0.1 * i) for i in range(3)]
    specs += [RunSpec("broken", 1e8, 2e9, 3.0, status="FAILED") for _ in range(2)]
    log_runs(client, exp_id, specs)
    args = ("refit", "--tracking-uri", mlflow_server, "--experiment", exp_name,
            "--bootstrap", "0", "--format", "json")  # fmt: skip
    # One pass analyses in worker processes, the other in its own process.
    procs = [start_cli(*args, "--workers", "2"), start_cli(*args)]
    results = [p.communicate(timeout=300) for p in procs]
    written: dict[str, list[int]] = {}
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        for o in json.loads(out)["families"]:
            # Each pass either wrote the family or skipped what the other had published
            # with the same digests; which one depends on timing, so count the writes.
            wrote = "fitted" if o["family"] == "fitted" else "insufficient_data"
            assert o["status"] in ("skipped", wrote), o
            if o["status"] != "skipped":
                written.setdefault(o["family"], []).append(o["refit_number"])

    for family in ("fitted", "tiny", "broken"):
        runs = fit_runs(client, exp_id, family)
        assert len(runs) == 1, f"{family}: {len(runs)} active fit runs"
        run = runs[0]
        # Every write that reported success has its own number, and all are published.
        numbers = sorted(written[family])
        assert numbers == sorted(set(numbers)), f"{family}: refit numbers {numbers}"
        assert [f.number for f in published_fits(run)] == numbers
        doc = fit_json(client, run.info.run_id, tmp_path)
        assert doc["fit_run_id"] == run.info.run_id
        assert doc["input_digest"] == run.data.tags[schema.TAG_INPUT_DIGEST]
        assert doc["settings_digest"] == run.data.tags[schema.TAG_SETTINGS_DIGEST]
        assert doc["refit_number"] == int(run.data.tags[schema.TAG_REFIT_NUMBER])
        assert doc["phase"] == run.data.tags[schema.TAG_PHASE]
    members = fit_json(client, fit_runs(client, exp_id, "fitted")[0].info.run_id, tmp_path)
    assert len(members["member_run_ids"]) == 6
