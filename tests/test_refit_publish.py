"""The publishing protocol of the refit job under chosen interleavings of passes.

Pass A read the family before one member run finished, pass B after it. Their writes are
interleaved deterministically: a hook of one pass runs the other pass's whole write at a chosen
step (family read, number claimed, artifacts written, published). Whatever the order, the
published fit is B's, made from the later reading (invariant 1 of ``tracking/fit_run.py``): its
``fit.json`` lists exactly the members its digest names, each write has its own refit number,
A is told it was superseded, and the next pass (a quick one included) skips the family.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

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
from mlflow_scaling.tracking.published import numbered_params, published_fit
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
    ("outer", "at", "a_status"),
    [
        ("B", "artifacts", "fitted"),  # A publishes first, B's later reading then wins
        ("B", "published", "superseded"),  # A claims after B published: dropped at once
        ("A", "claimed", "superseded"),  # B publishes between A's claim and A's compare
        ("A", "artifacts", "superseded"),  # A publishes after B: published, but not the fit
    ],
)
def test_the_later_reading_is_published_in_every_interleaving(mlflow_server, outer, at, a_status):
    client, exp, view_a, view_b = _setup(mlflow_server)
    assert view_a.read_ms < view_b.read_ms
    a = _prepared(client, view_a, SETTINGS_A)
    b = _prepared(client, view_b, SETTINGS_B)
    first, second = (b, a) if outer == "B" else (a, b)
    nested = []

    def hook(step, number):
        if step == at and not nested:  # the other pass writes everything right here
            nested.append(write_family(client, *second))

    outer_outcome = write_family(client, *first, on_step=hook)
    (inner_outcome,) = nested
    a_out, b_out = (inner_outcome, outer_outcome) if outer == "B" else (outer_outcome,
                                                                         inner_outcome)  # fmt: skip
    assert b_out.status == "fitted"
    assert a_out.status == a_status
    (run,) = fit_runs(client, exp.experiment_id, FAMILY)
    published = published_fit(run)
    assert published.number == b_out.refit_number
    assert published.input_digest == b[0].digest and published.read_ms == view_b.read_ms
    assert published.settings_digest == b[0].settings_hash
    if a_status == "superseded":
        assert a_out.refit_number == published.number
        assert f"refit {published.number} read the runs later" in a_out.message
    # Each write had its own number: B's, A's claim (published or dropped), the first fit's.
    claims = numbered_params(run.data.params, schema.PARAM_REFIT_CLAIM_PREFIX)
    assert sorted(claims) == [1, 2, 3]

    doc = json.loads(read_artifact(client, run.info.run_id, schema.ARTIFACT_FIT_JSON))
    assert doc["input_digest"] == published.input_digest
    assert sorted(doc["member_run_ids"]) == sorted(p.run_id for p in view_b.members)
    assert doc["refit_number"] == published.number
    assert doc["settings_digest"] == published.settings_digest
    # Files never mix: the published folder's predictions are made with B's budgets.
    rows = list(csv.DictReader(io.StringIO(
        read_artifact(client, run.info.run_id, schema.ARTIFACT_PREDICTIONS_CSV).decode()
    )))  # fmt: skip
    assert [float(r["flops"]) for r in rows] == list(SETTINGS_B.budgets)
    # The mirror tags agree with the record, whatever order the writers finished in.
    tags = run.data.tags
    assert tags[schema.TAG_INPUT_DIGEST] == published.input_digest
    assert tags[schema.TAG_REFIT_NUMBER] == str(published.number)
    assert tags[schema.TAG_PUBLISHED_PATH] == published.path
    assert run.info.status == "FINISHED"
    alpha = published.metrics[schema.fit_metric("alpha")]
    history = client.get_metric_history(run.info.run_id, schema.fit_metric("alpha"))
    assert alpha in {m.value for m in history if m.step == published.number}

    # The next passes read the current runs (B's view): a full one and a quick one both skip.
    for kw in ({"full_check": True}, {"clock_margin_ms": 0}):
        (again,) = refit_pass(client, experiments=[exp.name], settings=SETTINGS_B, **kw)
        assert (again.status, again.refit_number) == ("skipped", published.number)


@pytest.mark.parametrize("when", ["read", "claimed", "artifacts"])
def test_a_slow_manual_pass_never_hides_a_run_that_ended(mlflow_server, when):
    """The stale window of issue 23, driven step by step.

    A manual ``refit --family X --force`` reads X while member run R is still running and is
    slow; a scheduled (quick) pass starts after R ended, reads X with R and publishes. Then the
    manual pass goes on: it must not become the fit, and the quick pass that follows (clock
    margin 0, so R's end is older than its watermark and R is not read again) shows R.
    """
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "stale")
    runs = synthetic_family(FAMILY, sizes=(1e7, 3e7, 1e8, 3e8), tokens_per_param=(10, 40))
    *_, late = log_runs(client, exp_id, runs[:7] + [replace(runs[7], status="RUNNING")])
    settings = SETTINGS_B

    def scheduled():
        return {o.family: o for o in refit_pass(client, experiments=[exp_name],
                                                settings=settings, clock_margin_ms=0)}  # fmt: skip

    assert scheduled()[FAMILY].status == "fitted"  # the first pass: R is not finished yet
    scheduled_outcome = []

    def run_scheduled_pass(*_args):
        if not scheduled_outcome:
            client.set_terminated(late, "FINISHED")  # R ends after the manual pass read X
            scheduled_outcome.append(scheduled()[FAMILY])

    hooks = {"on_family_start": run_scheduled_pass} if when == "read" else {
        "on_step": lambda step, n: step == when and run_scheduled_pass()}  # fmt: skip
    (manual,) = refit_pass(client, experiments=[exp_name], families=[FAMILY], force=True,
                           settings=settings, **hooks)  # fmt: skip
    (by_schedule,) = scheduled_outcome
    assert by_schedule.status == "fitted" and by_schedule.n_members == 8

    quick = scheduled()[FAMILY]
    (run,) = fit_runs(client, exp_id, FAMILY)
    doc = json.loads(read_artifact(client, run.info.run_id, schema.ARTIFACT_FIT_JSON))
    assert late in doc["member_run_ids"] and len(doc["member_run_ids"]) == 8
    exp = ExperimentRef(exp_id, exp_name)
    assert published_fit(run).input_digest == input_digest(_family(client, exp))
    assert (quick.status, quick.refit_number) == ("skipped", by_schedule.refit_number)
    assert quick.message.endswith("(quick check)")
    assert manual.status == "superseded" and manual.n_members == 7
    assert manual.refit_number == by_schedule.refit_number


def test_racing_claims_get_distinct_refit_numbers(mlflow_server):
    """Writers claiming at the same instant: the params table lets exactly one hold each n."""
    race_claims(mlflow_server)
