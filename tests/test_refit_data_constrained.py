"""Refit of families that log ``scaling.unique_tokens``, through a live MLflow server."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _refit_support import (
    RunSpec,
    call_cli,
    fit_json,
    fit_runs,
    log_runs,
    new_experiment,
    read_artifact,
    synthetic_family,
)
from _repeats_support import limited_runs, repeated_runs
from mlflow import MlflowClient

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.data_constrained import data_constrained_analysis
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.laws.check import scaling_check
from mlflow_scaling.laws.data_constrained import DataConstrainedLaw, allocate_with_unique_tokens
from mlflow_scaling.rendering import render
from mlflow_scaling.report.data_constrained_figure import data_constrained_figure
from mlflow_scaling.server.data import family_detail
from mlflow_scaling.server.data_constrained_section import data_constrained_view
from mlflow_scaling.server.pages import Links, render_family
from mlflow_scaling.server.sources import ClientSource
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.published import published_fit
from mlflow_scaling.tracking.reading import ExperimentRef, MemberPoint


def _repeated_specs(family: str, drop: frozenset[int] = frozenset(), zero: int | None = None):
    specs = []
    for i, r in enumerate(repeated_runs().itertuples()):
        unique = {} if i in drop else {schema.METRIC_UNIQUE_TOKENS: 0.0 if i == zero else r.U}
        specs.append(RunSpec(family, r.N, r.D, r.loss, name=r.run, metrics=unique))
    return specs


def _refit(client: MlflowClient, exp_name: str, n_boot: int = 0):
    (outcome,) = refit_pass(client, experiments=[exp_name], settings=RefitSettings(n_boot=n_boot))
    assert outcome.status == "fitted", outcome.message
    return outcome


def test_a_family_that_repeats_its_data_gets_the_section_figure_and_page(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "repeats")
    log_runs(client, exp_id, _repeated_specs("rep"))
    _refit(client, exp_name, n_boot=20)

    (run,) = fit_runs(client, exp_id, "rep")
    doc = fit_json(client, run.info.run_id)
    section = doc["data_constrained"]
    assert section["identified"] is True and section["n_points"] == 36
    assert section["n_repeated"] == 30 and section["n_boot"] == 20
    lo, hi = section["intervals"]["r_star_d"]
    assert lo <= section["params"]["r_star_d"] <= hi
    assert section["params"]["r_star_d"] == pytest.approx(15.0, rel=0.35)  # the truth: 15
    worth = section["epochs_worth_tenth"]
    assert worth == pytest.approx(1 + section["params"]["r_star_d"] * math.log(10))
    assert section["unique_tokens"] == 1e9 and section["runs_without_unique_tokens"] == []
    target, prediction = section["target"], doc["check"]["prediction"]
    assert (target["N"], target["D"]) == (prediction["N"], prediction["D"])
    assert target["epochs"] == prediction["D"] / 1e9
    assert target["more_than_worth_training"] is (target["epochs"] > worth)
    (epochs,) = [c for c in doc["check"]["criteria"] if c["name"] == "epochs_worth_training"]
    assert (epochs["value"], epochs["threshold"]) == (target["epochs"], worth)
    assert epochs["passed"] is not target["more_than_worth_training"]
    assert doc["phase"] == "scaling" and section["phase"]["data_limited"] is False
    assert {m["unique_tokens"] for m in doc["members"]} == {1e8, 1e9}
    png = read_artifact(client, run.info.run_id, schema.ARTIFACT_DATA_CONSTRAINED_PNG)
    assert png.startswith(b"\x89PNG")
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics[schema.METRIC_FIT_R_STAR_D] == section["params"]["r_star_d"]
    assert metrics[schema.METRIC_FIT_R_STAR_N] == section["params"]["r_star_n"]
    assert metrics[schema.METRIC_FIT_EPOCHS_WORTH] == worth

    detail = family_detail(ClientSource(client), ExperimentRef(exp_id, exp_name), "rep")
    page = render_family(detail, Links())
    assert "<h2>Repeated data</h2>" in page
    assert f"{section['params']['r_star_d']:.4g}" in page and f"{worth:.4g}" in page
    assert "data_constrained.png" in page
    _plan_under_the_data_budget(mlflow_server, exp_name, section)


def _plan_under_the_data_budget(uri: str, exp_name: str, section: dict) -> None:
    """``plan`` of a family with U: the data-constrained allocation at the plan's FLOPs."""
    args = ("plan", "--tracking-uri", uri, "--experiment", exp_name, "--family", "rep",
            "--ignore-check")  # fmt: skip
    result = call_cli(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    law = DataConstrainedLaw(**section["params"])
    expected = allocate_with_unique_tokens(law, plan["flops"], 1e9)
    budget = plan["data_budget"]
    assert budget == pytest.approx({
        **expected.to_dict(), "applicable": True, "r_star_d": law.r_star_d,
        "epochs_worth_tenth": section["epochs_worth_tenth"],
        "more_than_worth_training": expected.epochs > section["epochs_worth_tenth"],
        "source": budget["source"],
    })  # fmt: skip
    assert budget["loss_given_up"] > 0 and budget["n_opt"] < budget["unlimited_n_opt"]
    table = call_cli(*args).stdout
    assert f"under the data budget (U = 1e+09 unique tokens, C = {plan['flops']:.4g} FLOPs): " \
        f"best N = {expected.n_opt:.4g}" in table  # fmt: skip
    assert f"{expected.loss_given_up:.4g} given up" in table


def test_a_plateau_of_repeated_data_is_data_limited_on_the_fit_run(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "limited")
    specs = [RunSpec("lim", r.N, r.D, r.loss, name=r.run,
                     metrics={schema.METRIC_UNIQUE_TOKENS: r.U})
             for r in limited_runs().itertuples()]  # fmt: skip
    log_runs(client, exp_id, specs)
    _refit(client, exp_name)
    (run,) = fit_runs(client, exp_id, "lim")
    assert run.data.tags[schema.TAG_PHASE] == schema.PHASE_DATA_LIMITED
    doc = fit_json(client, run.info.run_id)
    section = doc["data_constrained"]
    assert doc["phase"] == doc["phases"]["phase"] == doc["check"]["phase"] == "data_limited"
    assert section["phase"]["data_limited"] is True and section["phase"]["epochs"] == [32, 64]
    assert doc["phases"]["reason"].startswith("the plateau is explained by repeated data")
    (phase,) = [c for c in doc["check"]["criteria"] if c["name"] == "phase"]
    assert (phase["value"], phase["passed"]) == ("data_limited", False)
    names = [c["name"] for c in doc["check"]["criteria"]]
    assert names.count("epochs_worth_training") == 1
    detail = family_detail(ClientSource(client), ExperimentRef(exp_id, exp_name), "lim")
    page = render_family(detail, Links())
    assert 'class="badge phase-data-limited" data-phase="data_limited">data-limited<' in page
    assert "(phase <code>data_limited</code>): yes. the plateau is explained by repeated" in page


def test_a_family_without_unique_tokens_has_no_section(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "fresh")
    log_runs(client, exp_id, synthetic_family("fresh"))
    _refit(client, exp_name)
    (run,) = fit_runs(client, exp_id, "fresh")
    doc = fit_json(client, run.info.run_id)
    assert "data_constrained" not in doc
    assert all("unique_tokens" not in m for m in doc["members"])
    assert doc["settings"]["analysis_version"] == 7
    assert schema.METRIC_FIT_R_STAR_D not in client.get_run(run.info.run_id).data.metrics
    plan = call_cli("plan", "--tracking-uri", mlflow_server, "--experiment", exp_name,
                    "--family", "fresh", "--ignore-check", "--format", "json")  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert "data_budget" not in json.loads(plan.stdout)
    assert schema.ARTIFACT_DATA_CONSTRAINED_PNG not in {
        f"scaling/{f.path.rsplit('/', 1)[-1]}"
        for f in client.list_artifacts(run.info.run_id, doc_folder(client, run.info.run_id))
    }


def doc_folder(client: MlflowClient, run_id: str) -> str:
    return published_fit(client.get_run(run_id)).path


def test_runs_without_or_with_bad_unique_tokens_are_named(mlflow_server):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "repeats-missing")
    ids = log_runs(client, exp_id, _repeated_specs("gap", drop=frozenset({4}), zero=9))
    u = repeated_runs()["U"][12]  # run 12 logs a second corpus size at step 7
    client.log_metric(ids[12], schema.METRIC_UNIQUE_TOKENS, 2 * u, step=7)
    client.log_metric(ids[12], schema.METRIC_UNIQUE_TOKENS, u, step=9)
    _refit(client, exp_name)
    (run,) = fit_runs(client, exp_id, "gap")
    doc = fit_json(client, run.info.run_id)
    names = repeated_runs()["run"]
    assert doc["data_constrained"]["runs_without_unique_tokens"] == [
        {"run_id": ids[4], "run_name": names[4]}
    ]
    assert doc["data_constrained"]["n_points"] == 33  # 36, less no U, U = 0 and a changing U
    reason = "scaling.unique_tokens = 0 (must be positive)"
    changed = (f"scaling.unique_tokens changed between steps ({u:.6g} from step 0, "
               f"{2 * u:.6g} from step 7): a run has one U")  # fmt: skip
    assert doc["excluded"] == [
        {"run_id": ids[9], "run_name": names[9], "status": "FINISHED", "reason": reason},
        {"run_id": ids[12], "run_name": names[12], "status": "FINISHED", "reason": changed},
    ]
    assert doc["n_members"] == 34  # the run without U is a member, as fresh data


def test_too_few_runs_with_unique_tokens_say_so_in_the_section() -> None:
    points = [
        MemberPoint(r.run, r.run, r.N, r.D, 6 * r.N * r.D, "6ND", r.loss, "val_loss", 1, 0,
                    unique_tokens=r.U if i < 3 else None)
        for i, r in enumerate(repeated_runs().itertuples())
    ]  # fmt: skip
    n, d, loss = (np.array([getattr(p, k) for p in points]) for k in ("n", "d", "loss"))
    check = scaling_check(n, d, loss, target_params=10 * n.max(), flops=6 * n * d)
    section, same = data_constrained_analysis(points, 6 * n * d, RefitSettings(n_boot=0), check)
    assert same is check  # a law that failed changes nothing in the check
    assert section["error"] == (
        "the data-constrained law failed: ValueError: the Chinchilla law has 5 parameters; got "
        "only 3 points"
    )
    assert len(section["runs_without_unique_tokens"]) == 33
    doc = {"family": "f", "members": [p.to_dict() for p in points], "data_constrained": section}
    assert data_constrained_figure(doc) is None  # no law, no figure
    assert data_constrained_view(doc)["error"] == section["error"]


def test_the_page_section_tolerates_an_odd_document() -> None:
    without = [None, {"run_id": "<b>r</b>"}]
    section = {"identified": True, "params": "x", "intervals": [1], "target": 5,
               "runs_without_unique_tokens": without}  # fmt: skip
    odd = {"data_constrained": section}
    view = data_constrained_view(odd)
    assert [r["value"] for r in view["rows"]] == ["—", "—", "—"]
    assert view["target"] is None and view["without"] == [{"run_id": "<b>r</b>"}]
    assert view["phase"] is None
    odd["data_constrained"]["phase"] = {"data_limited": False, "reason": "<i>x</i>"}
    html = render("_data_constrained.html", v=data_constrained_view(odd), figure=None)
    assert ": no. &lt;i&gt;x&lt;/i&gt;</p>" in html
    html = render("_data_constrained.html", v=view, figure=None)
    assert "&lt;b&gt;r&lt;/b&gt;" in html and "<b>r</b>" not in html
    assert data_constrained_view({"data_constrained": None}) is None
    assert view["prior"] == ""  # no prior block: nothing said
    odd["data_constrained"]["prior"] = {"r_star_d": 15.4, "r_star_n": 5.3, "sigma_log": 0.25,
                                        "without_prior": {"r_star_d": 1e8},
                                        "leans_on_prior": True}  # fmt: skip
    html = render("_data_constrained.html", v=data_constrained_view(odd), figure=None)
    assert '<p class="note" data-field="prior">R*_D leans on the prior (Muennighoff' in html
    assert "the runs alone put it at 1e+08" in html
    odd["data_constrained"]["prior"]["leans_on_prior"] = "yes"  # not a boolean: said nothing
    assert data_constrained_view(odd)["prior"] == ""
