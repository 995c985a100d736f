"""The publishing protocol of the refit job under chosen interleavings of two writers.

Pass A read the family before one member run finished, pass B after it. Their writes are
interleaved deterministically: a step hook of one writer runs the other writer's whole write
at a chosen step (artifacts written, published). Whatever the order, the published
``fit.json`` must list exactly the members its digest names, both writes must have their own
refit number, and the next pass must skip (when the published fit is B's, made from the
current runs) or refit (when it is A's, made from older ones).
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from _refit_support import (
    fit_runs,
    log_runs,
    new_experiment,
    race_claims,
    read_artifact,
    synthetic_family,
)
from mlflow import MlflowClient

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import analyze_job, plan_family, refit_pass, write_family
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.digest import input_digest
from mlflow_scaling.tracking.published import published_fit, published_fits
from mlflow_scaling.tracking.reading import ExperimentRef, read_families

SETTINGS_A = RefitSettings(n_boot=0, budgets=(1e19, 1e20))
SETTINGS_B = RefitSettings(n_boot=0, budgets=(3e19, 3e20, 3e21))
FAMILY = "race"


def _family(client, exp):
    (fam,) = read_families(client, [exp], [FAMILY])
    return fam


def _setup(uri):
    client = MlflowClient(uri)
    exp_id, exp_name = new_experiment(client, "interleave")
    exp = ExperimentRef(exp_id, exp_name)
    runs = synthetic_family(FAMILY, sizes=(1e7, 3e7, 1e8, 3e8), tokens_per_param=(10, 40))
    log_runs(client, exp_id, runs[:6])
    (first,) = refit_pass(client, experiments=[exp_name], settings=SETTINGS_B)
    assert first.status == "fitted" and first.refit_number == 1
    log_runs(client, exp_id, runs[6:7])
    view_a = _family(client, exp)  # pass A reads now: 7 members
    log_runs(client, exp_id, runs[7:8])
    view_b = _family(client, exp)  # pass B reads after one more run finished: 8 members
    assert (len(view_a.members), len(view_b.members)) == (7, 8)
    return client, exp, view_a, view_b


def _prepared(client, view, settings):
    plan = plan_family(client, view, settings)
    assert not hasattr(plan, "status"), "the family changed: it must not be skipped"
    analysis, png = analyze_job(*plan.job())
    return plan, analysis, png


@pytest.mark.parametrize(
    ("outer", "at"),
    [("B", "artifacts"), ("B", "published"), ("A", "artifacts")],
)
def test_interleaved_writers_publish_a_consistent_fit(mlflow_server, outer, at):
    client, exp, view_a, view_b = _setup(mlflow_server)
    a = _prepared(client, view_a, SETTINGS_A)
    b = _prepared(client, view_b, SETTINGS_B)
    first, second = (b, a) if outer == "B" else (a, b)
    nested = []

    def hook(step, number):
        if step == at and not nested:  # the other pass writes everything right here
            nested.append(write_family(client, *second))

    outer_outcome = write_family(client, *first, on_step=hook)
    (inner_outcome,) = nested

    numbers = {outer_outcome.refit_number, inner_outcome.refit_number}
    assert numbers == {2, 3}, "each write has its own refit number"
    (run,) = fit_runs(client, exp.experiment_id, FAMILY)
    published = published_fit(run)
    # The writer that claimed last (the nested one) holds the highest number: it is published.
    assert published.number == inner_outcome.refit_number == 3
    winner_plan = second[0]
    assert published.input_digest == winner_plan.digest
    assert published.settings_digest == winner_plan.settings_hash

    doc = json.loads(read_artifact(client, run.info.run_id, schema.ARTIFACT_FIT_JSON))
    members_of_digest = {
        a[0].digest: sorted(p.run_id for p in view_a.members),
        b[0].digest: sorted(p.run_id for p in view_b.members),
    }
    assert doc["input_digest"] == published.input_digest
    assert sorted(doc["member_run_ids"]) == members_of_digest[published.input_digest]
    assert doc["refit_number"] == published.number
    assert doc["settings_digest"] == published.settings_digest
    # Files never mix: the published folder's predictions are made with its own budgets.
    rows = list(csv.DictReader(io.StringIO(
        read_artifact(client, run.info.run_id, schema.ARTIFACT_PREDICTIONS_CSV).decode()
    )))  # fmt: skip
    assert [float(r["flops"]) for r in rows] == list(winner_plan.settings.budgets)
    # The mirror tags agree with the record, whatever order the writers finished in.
    tags = run.data.tags
    assert tags[schema.TAG_INPUT_DIGEST] == published.input_digest
    assert tags[schema.TAG_REFIT_NUMBER] == "3"
    assert tags[schema.TAG_PUBLISHED_PATH] == published.path
    assert [f.number for f in published_fits(run)] == [1, 2, 3]
    history = client.get_metric_history(run.info.run_id, schema.fit_metric("alpha"))
    assert sorted({m.step for m in history}) == [1, 2, 3]  # (a mirror repair logs step 3 again)
    alpha = published.metrics[schema.fit_metric("alpha")]
    assert {m.value for m in history if m.step == 3} == {alpha}
    assert run.data.metrics[schema.fit_metric("alpha")] == alpha

    # The next pass reads the current runs (B's view): it skips B's fit and refits A's.
    (third,) = refit_pass(client, experiments=[exp.name], settings=SETTINGS_B)
    if outer == "A":
        assert third.status == "skipped" and third.refit_number == 3
    else:
        assert third.status == "fitted" and third.refit_number == 4
        (run,) = fit_runs(client, exp.experiment_id, FAMILY)
        assert published_fit(run).input_digest == input_digest(_family(client, exp))


def test_racing_claims_get_distinct_refit_numbers(mlflow_server):
    """Writers claiming at the same instant: the params table lets exactly one hold each n."""
    race_claims(mlflow_server)
