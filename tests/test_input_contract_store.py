"""Issue 22: the cases that need an MLflow store (a real sqlite store in tmp_path).

The family is the issue's: gen.py's base.csv (5 sizes × 4 tokens-per-parameter) imported as
family ``base`` of experiment ``E``, then one refit (its check targets 10x the largest size).
"""

from __future__ import annotations

import json

import pytest
from _refit_support import RunSpec, call_cli, log_runs, run_cli
from mlflow import MlflowClient
from test_input_contract import gen

from mlflow_scaling.tabular import read_points
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.fit_run import find_fit_runs
from mlflow_scaling.tracking.importing import import_points
from mlflow_scaling.tracking.reading import member_point


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 's.db'}"
    client = MlflowClient(uri)
    base = gen(folder / "base.csv")
    result = import_points(client, read_points(base), family="base", experiment="E", source=base)
    refit = call_cli("refit", "--tracking-uri", uri, "--bootstrap", "0", "--no-curves")
    assert refit.returncode == 0, refit.stdout + refit.stderr
    (fit_run,) = find_fit_runs(client, result.experiment_id, "base")
    return {"uri": uri, "client": client, "fit_run": fit_run.info.run_id, "folder": folder}


def test_3_plan_checks_the_gate_at_its_own_target(store):
    out = call_cli("plan", "--tracking-uri", store["uri"], "--experiment", "E", "--family",
                   "base", "--target-params", "1e13")  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.strip() == (
        "mlflow-scaling plan: family 'base' did not pass its latest scaling check at N = 1e+13 "
        "(refit #1): extrapolation (1e+04, threshold 10.0); --ignore-check plans anyway"
    )


def test_3_plan_within_the_checked_reach_passes(store):
    out = call_cli("plan", "--tracking-uri", store["uri"], "--experiment", "E", "--family",
                   "base", "--target-params", "5e9", "--format", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    check = json.loads(out.stdout)["check"]
    assert check["verdict"] == "pass"
    extrapolation = next(c for c in check["criteria"] if c["name"] == "extrapolation")
    assert extrapolation["value"] == 5.0
    assert extrapolation["detail"] == (
        "target 5e+09 params / largest trained 1e+09 (at the plan's target; the refit checked "
        "N = 1e+10)"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--experiment", "E", "--family", "base"],
        ["compare", "--experiment", "E", "--baseline", "base", "--candidate", "other"],
        ["watch", "--max-passes", "1"],
    ],
)
def test_4_5_a_mistyped_store_is_named_and_not_created(tmp_path, args):
    db = tmp_path / "no" / "such.db"
    out = call_cli(*args, "--tracking-uri", f"sqlite:///{db}")
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip() == (
        f"mlflow-scaling {args[0]}: error: no MLflow store at sqlite:///{db}: {db} does not "
        "exist (a new store would be empty; check --tracking-uri or MLFLOW_TRACKING_URI)"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("tag", "value", "message"),
    [
        (schema.TAG_TARGET_PARAMS, "abc", "tag scaling.target_params = 'abc' is not a positive "
         "number"),
        (schema.TAG_PLAN_GPU, "tpu-v9", "tag scaling.plan_gpu: unknown GPU 'tpu-v9'"),
    ],
)  # fmt: skip
def test_6_a_bad_fit_run_tag_is_one_line_without_a_traceback(store, tag, value, message):
    client, run_id = store["client"], store["fit_run"]
    client.set_tag(run_id, tag, value)
    try:
        out = run_cli("refit", "--tracking-uri", store["uri"], "--bootstrap", "0", "--no-curves")
    finally:
        client.delete_tag(run_id, tag)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    logged = [line for line in out.stderr.splitlines() if line.startswith("ERROR ")]
    assert len(logged) == 1 and f"fit run {run_id}: {message}" in logged[0], out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("E "))
    assert " error " in row and f"InputError: fit run {run_id}: {message}" in row


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("--interval=1000000d", "argument --interval: interval '1000000d' is longer than 366 days"),
        ("--interval=--", "argument --interval: expected a value, got '--'"),
    ],
)
def test_7_a_bad_interval_is_refused_before_any_pass(store, value, message):
    out = call_cli("watch", "--tracking-uri", store["uri"], value, "--max-passes", "1")
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.strip().splitlines()[-1] == f"mlflow-scaling watch: error: {message}"


def test_10_a_member_run_under_one_token_is_excluded_by_the_refit(store):
    client = store["client"]
    experiment_id = client.get_experiment_by_name("E").experiment_id
    (run_id,) = log_runs(client, experiment_id, [RunSpec("tiny", 1e8, 0.5, 3.0)])
    point = member_point(client.get_run(run_id))
    assert point.reason == (
        "scaling.tokens: tokens 0.5 is not at least 1 (fewer than one token is a unit or column "
        "error)"
    )
