"""Hostile input and faults around the refit job, each found by a probe of main.

Against live MLflow servers (SQLite stores): an ``inf`` loss (kept as 1.797e308 by the SQL
store), a family name ending in a backslash, names with leading and trailing spaces, a server
that dies in the middle of a pass, the store telling a deleted run from an unreachable one, and
a mistyped SQLite URI for commands that only read.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from _refit_support import (
    RunSpec,
    call_cli,
    fit_json,
    fit_runs,
    log_runs,
    new_experiment,
    synthetic_family,
)
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.server.data import ClientSource, family_detail
from mlflow_scaling.server.pages import Links
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.connection import REQUEST_BUDGET, TrackingUnavailable
from mlflow_scaling.tracking.fit_run import is_active
from mlflow_scaling.tracking.published import published_fit
from mlflow_scaling.tracking.reading import ExperimentRef, read_families

SETTINGS = RefitSettings(n_boot=0)
SIZES = dict(sizes=(1e7, 1e8, 1e9), tokens_per_param=(10, 40))


def test_inf_loss_kept_at_the_float_limit_is_excluded(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "inf")
    (run_id,) = log_runs(client, exp_id, [RunSpec("inf", 1e8, 2e9, math.inf, name="blew-up")])
    stored = client.get_run(run_id).data.metrics["val_loss"]
    assert math.isfinite(stored) and stored > 1e308  # how the SQL store keeps inf
    (fam,) = read_families(client, [ExperimentRef(exp_id, exp_name)])
    assert fam.members == []
    (excluded,) = fam.excluded
    assert excluded.run_id == run_id
    assert excluded.reason == (
        "val_loss is 1.798e+308, the float limit: inf as the store keeps it (must be finite)"
    )


@pytest.mark.parametrize("family", ["ends-in\\", " spaced "])
def test_awkward_family_names_work_everywhere(mlflow_server, family):
    """A trailing backslash broke every search filter after the first clause; surrounding
    spaces were trimmed in some places only (``--family`` found nothing, the page 404ed)."""
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "names")
    member_ids = log_runs(client, exp_id, synthetic_family(family, **SIZES))
    # A near-namesake must stay a family of its own.
    other = family.strip() if family != family.strip() else family + "x"
    log_runs(client, exp_id, synthetic_family(other, **SIZES))
    args = ("refit", "--tracking-uri", mlflow_server, "--experiment", exp_name,
            "--family", family, "--bootstrap", "0", "--format", "json")  # fmt: skip
    first = call_cli(*args)
    assert first.returncode == 0, first.stderr
    (outcome,) = json.loads(first.stdout)["families"]
    assert (outcome["family"], outcome["status"], outcome["n_members"]) == (family, "fitted", 6)
    (run,) = fit_runs(client, exp_id, family)
    assert schema.TAG_FIT_ERROR not in run.data.tags or not run.data.tags[schema.TAG_FIT_ERROR]
    assert sorted(fit_json(client, run.info.run_id)["member_run_ids"]) == sorted(member_ids)
    again = call_cli(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["families"][0]["status"] == "skipped"

    detail = family_detail(ClientSource(client), ExperimentRef(exp_id, exp_name), family)
    assert detail is not None and detail.summary.name == family
    assert len(detail.members) == 6 and detail.doc["family"] == family
    # The page's "member runs in MLflow" link searches with the same filter.
    link = Links(prefix="").ui_members(exp_id, family)
    filt = parse_qs(urlsplit(link.split("#", 1)[1]).query)["searchFilter"][0]
    found = client.search_runs([exp_id], filt)
    assert sorted(r.info.run_id for r in found if r.data.tags[schema.TAG_FAMILY] == family) == (
        sorted(member_ids)
    )


def test_is_active_tells_deleted_from_missing(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, _ = new_experiment(client, "active")
    run_id = client.create_run(exp_id).info.run_id
    assert is_active(client, run_id) is True
    client.delete_run(run_id)
    assert is_active(client, run_id) is False
    assert is_active(client, "0" * 32) is False  # no such run


def test_server_dying_mid_pass_stops_the_pass(mlflow_server_factory, monkeypatch):
    for key, value in REQUEST_BUDGET.items():
        monkeypatch.setenv(key, value)
    server = mlflow_server_factory()
    client = MlflowClient(server.uri)
    exp_id, exp_name = new_experiment(client, "dies")
    for name in ("a-first", "b-second", "c-third"):
        log_runs(client, exp_id, synthetic_family(name, **SIZES))
    seen = []

    first_run_id = []

    def kill_after_first(outcome):
        seen.append(outcome.family)
        if len(seen) == 1:
            first_run_id.append(outcome.fit_run_id)
            server.kill()

    started = time.monotonic()
    with pytest.raises(TrackingUnavailable) as stopped:
        refit_pass(client, experiments=[exp_name], settings=SETTINGS, on_outcome=kill_after_first)
    assert time.monotonic() - started < 120
    assert seen == ["a-first"]  # nothing reported (or written) after the server went
    message = str(stopped.value)
    assert server.uri in message and len(message.splitlines()) == 1
    with pytest.raises(MlflowException) as failure:  # unreachable is an error, never "deleted"
        is_active(client, first_run_id[0])
    assert str(server.port) in str(failure.value)

    server.start()  # the same store: what was written is consistent
    (run,) = fit_runs(client, exp_id, "a-first")
    assert published_fit(run).number == 1
    assert fit_json(client, run.info.run_id)["input_digest"] == published_fit(run).input_digest
    assert (
        fit_runs(client, exp_id, "b-second") == []
        or published_fit(fit_runs(client, exp_id, "b-second")[0]) is None
    )
    outcomes = {o.family: o.status for o in refit_pass(client, experiments=[exp_name],
                                                       settings=SETTINGS)}  # fmt: skip
    assert outcomes == {"a-first": "skipped", "b-second": "fitted", "c-third": "fitted"}


def test_an_error_that_cannot_be_recorded_keeps_the_watermark(mlflow_server):
    """The family's refit fails and its fit run is gone (deleted by hand meanwhile), so the
    error tag cannot be written: the watermark stays, and the next pass reads the family."""
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "unrecorded")
    log_runs(client, exp_id, synthetic_family("bad", **SIZES))
    client.create_run(exp_id, tags={schema.TAG_ROLE: schema.ROLE_FIT, schema.TAG_FAMILY: "bad",
                                    schema.TAG_TARGET_PARAMS: "lots"})  # fmt: skip
    (first,) = refit_pass(client, experiments=[exp_name], settings=SETTINGS)
    assert (first.status, first.error_recorded) == ("error", True)  # recorded: read back
    mark = client.get_experiment(exp_id).tags[schema.TAG_REFIT_WATERMARK]
    (run,) = fit_runs(client, exp_id, "bad")
    assert "'lots'" in run.data.tags[schema.TAG_FIT_ERROR] and run.info.status == "FAILED"

    def delete_the_fit_run() -> bool:  # asked before each family, after the pass read them
        if is_active(client, run.info.run_id):
            client.delete_run(run.info.run_id)
        return False

    (second,) = refit_pass(client, experiments=[exp_name], settings=SETTINGS,
                           should_stop=delete_the_fit_run)  # fmt: skip
    assert (second.status, second.error_recorded) == ("error", False)
    assert client.get_experiment(exp_id).tags[schema.TAG_REFIT_WATERMARK] == mark


def test_cli_on_dead_server_is_one_line_exit_2():
    from conftest import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    out = call_cli("refit", "--tracking-uri", uri)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and uri in out.stderr


@pytest.mark.parametrize("command", ["families", "refit"])
def test_absent_sqlite_store_is_named_not_created(tmp_path: Path, command):
    db = tmp_path / "no" / "such" / "dir" / "x.db"
    out = call_cli(command, "--tracking-uri", f"sqlite:///{db}")
    assert out.returncode == 2, out.stdout
    assert out.stderr.strip() == (
        f"mlflow-scaling {command}: error: no MLflow store at sqlite:///{db}: {db} does not "
        "exist (a new store would be empty; check --tracking-uri or MLFLOW_TRACKING_URI)"
    )
    assert not (tmp_path / "no").exists()
