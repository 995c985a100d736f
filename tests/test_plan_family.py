"""``plan`` from a family and the refit job's ``scaling/plan.json``, against a live server.

Two families: ``passing`` (five sizes on a clean law; its runs logged FLOPs at 7.2·N per token
and its largest runs an MFU) and ``failing`` (three sizes: the check wants four). The fit run
of ``passing`` carries ``scaling.plan_gpu = h100-80gb``; one refit with ``--plan-gpu
a100-80gb`` then plans both, the tag winning for ``passing``.
"""

from __future__ import annotations

import json

import pytest
from _refit_support import call_cli, fit_json, fit_runs, log_runs, new_experiment, read_artifact
from _refit_support import synthetic_family as family_specs
from mlflow import MlflowClient

from mlflow_scaling.server.data import ClientSource, family_detail
from mlflow_scaling.server.pages import Links, render_family
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.reading import ExperimentRef

FLOPS_PER_PARAM_TOKEN = 7.2  # what the runs logged: 6N plus 20 % for attention


@pytest.fixture(scope="module")
def families(mlflow_server, tmp_path_factory):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "plan")
    passing = family_specs("passing")
    failing = family_specs("failing", sizes=(2e7, 6e7, 2e8))
    for spec in passing + failing:
        spec.flops = FLOPS_PER_PARAM_TOKEN * spec.n * spec.d
    ids = log_runs(client, exp_id, passing + failing)
    # MFU measured by the callback: the largest size's three runs, and one small run.
    assert [s.n for s in passing[12:15]] == [2e9] * 3
    for i, mfu in [(12, 0.31), (13, 0.35), (14, 0.33), (0, 0.55)]:
        client.log_metric(ids[i], schema.METRIC_MFU, mfu)
    client.create_run(
        exp_id,
        tags={schema.TAG_ROLE: schema.ROLE_FIT, schema.TAG_FAMILY: "passing",
              schema.TAG_PLAN_GPU: "h100-80gb"},
    )  # fmt: skip
    refit = call_cli("refit", "--tracking-uri", mlflow_server, "--experiment", exp_name,
                     "--bootstrap", 10, "--no-curves", "--plan-gpu", "a100-80gb")  # fmt: skip
    assert refit.returncode == 0, refit.stdout + refit.stderr
    tmp = tmp_path_factory.mktemp("plan")
    out = {"client": client, "uri": mlflow_server, "exp_id": exp_id, "exp_name": exp_name}
    for name in ("passing", "failing"):
        (run,) = fit_runs(client, exp_id, name)
        run_id = run.info.run_id
        out[name] = {
            "run_id": run_id,
            "fit": fit_json(client, run_id, tmp),
            "plan": json.loads(read_artifact(client, run_id, schema.ARTIFACT_PLAN_JSON, tmp)),
            "report": read_artifact(client, run_id, schema.ARTIFACT_REPORT_HTML, tmp).decode(),
        }
    return out


def test_refit_writes_the_plan_of_a_passing_family(families):
    fam = families["passing"]
    plan, fit = fam["plan"], fam["fit"]
    assert fit["check_verdict"] == "pass"
    assert fit["settings"]["plan_gpu"] == "h100-80gb"
    assert fit["settings"]["plan_gpu_from"] == f"tag {schema.TAG_PLAN_GPU}"
    assert plan["gpu"]["name"] == "h100-80gb"  # the tag wins over --plan-gpu
    assert plan["check"]["verdict"] == "pass" and plan["check"]["ignored"] is False
    prediction = fit["check"]["prediction"]
    assert plan["target"]["params"] == prediction["N"] == 2e10
    assert plan["target"]["tokens"] == pytest.approx(prediction["D"])
    # The family's compute axis: 7.2 FLOPs per parameter and token, as its runs logged.
    assert plan["flops_method"].startswith("the family's compute axis (measured")
    assert plan["flops_per_token"] == pytest.approx(FLOPS_PER_PARAM_TOKEN * 2e10, rel=1e-6)
    assert plan["flops"] == pytest.approx(plan["flops_per_token"] * plan["target"]["tokens"])
    # MFU: the median of the largest size's three runs; the small run's 0.55 is not used.
    assert plan["mfu"]["value"] == pytest.approx(0.33)
    assert plan["mfu"]["source"].startswith("measured: median scaling.throughput.mfu of the 3")
    assert plan["gpu_hours"] == pytest.approx(plan["flops"] / (989e12 * 0.33) / 3600)
    assert len(plan["strategies"]) == 20 and plan["recommended"]
    assert fit["plan"] == plan  # the page and report read it from fit.json
    assert "Cluster plan" in fam["report"] and plan["recommended"] in fam["report"]


def test_refit_plans_a_failing_family_and_records_the_verdict(families):
    plan = families["failing"]["plan"]
    assert plan["gpu"]["name"] == "a100-80gb"  # from --plan-gpu
    assert plan["check"]["verdict"] == "fail"
    # Three sizes: too few, a backtest fitted on the two smaller ones misses the third, and the
    # interval at the target is far wider than ±5 %.
    assert plan["check"]["failing"] == ["distinct_sizes", "backtest", "precision"]
    assert plan["check"]["ignored"] is True
    report = families["failing"]["report"]
    assert "The scaling check did not pass (distinct_sizes, backtest, precision)" in report


def test_family_page_shows_the_plan(families):
    source = ClientSource(families["client"])
    exp = ExperimentRef(families["exp_id"], families["exp_name"])
    page = render_family(family_detail(source, exp, "passing"), Links())
    assert "<h2>Cluster plan</h2>" in page
    assert families["passing"]["plan"]["recommended"] in page
    assert "plan.json" in page


def _cli(families, *args):
    return call_cli("plan", "--tracking-uri", families["uri"], "--experiment",
                    families["exp_name"], *args)  # fmt: skip


def test_cli_plans_a_passing_family_like_the_refit(families):
    result = _cli(families, "--family", "passing", "--gpu", "h100-80gb", "--format", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    stored = families["passing"]["plan"]
    for key in ("flops", "gpu_hours", "days", "gpus", "mfu", "gpu", "recommended", "strategies"):
        assert plan[key] == stored[key], key
    assert plan["family"] == {"name": "passing", "experiment": families["exp_name"]}


def test_cli_target_params_trains_compute_optimally_on_the_family_axis(families):
    result = _cli(families, "--family", "passing", "--target-params", "1e10", "--budget",
                  "1e22", "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["target"]["params"] == 1e10
    assert plan["target"]["tokens"] == pytest.approx(1e22 / (FLOPS_PER_PARAM_TOKEN * 1e10))
    assert plan["flops"] == pytest.approx(1e22)


def test_cli_refuses_a_family_whose_check_failed(families):
    result = _cli(families, "--family", "failing")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "did not pass its latest scaling check" in line
    assert "distinct_sizes (3, threshold 4)" in line
    forced = _cli(families, "--family", "failing", "--ignore-check", "--format", "json")
    assert forced.returncode == 0, forced.stderr
    plan = json.loads(forced.stdout)
    assert plan["check"]["ignored"] is True and plan["check"]["verdict"] == "fail"
    assert plan["mfu"]["source"] == "default 0.40 (no member run logged scaling.throughput.mfu)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--family", "nobody"], "family 'nobody' in experiment"),
        (["--family", "passing", "--params", "1e9"], "--params/--tokens are for a standalone"),
        (["--family", "passing", "--target-tokens", "1e9", "--budget", "1e20"], "one of"),
    ],
)
def test_cli_family_bad_input_exits_2(families, args, message):
    result = _cli(families, *args)
    assert result.returncode == 2
    assert message in result.stderr.strip().splitlines()[-1]


def test_unknown_experiment_and_plan_gpu_tag(families):
    result = call_cli("plan", "--tracking-uri", families["uri"], "--experiment", "no-such-exp",
                      "--family", "x")  # fmt: skip
    assert result.returncode == 2 and "no experiment named 'no-such-exp'" in result.stderr
    result = call_cli("refit", "--tracking-uri", families["uri"], "--plan-gpu", "tpu9")
    assert result.returncode == 2 and "unknown GPU 'tpu9'" in result.stderr
