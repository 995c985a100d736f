"""`mlflow-scaling compare` from CSVs and from a live MLflow server, and the refit job keeping a
declared comparison up to date. The families are simulated (benchmarks/compare_simulation.py:
a candidate with a better constant and a worse exponent) and imported from CSV files."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from _refit_support import call_cli, new_experiment, read_artifact
from mlflow import MlflowClient

from benchmarks.compare_simulation import simulate_pair
from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.tabular import read_points
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.importing import import_points

N_BOOT = 20
JSON_KEYS = {"verdict", "crossover_flops", "baseline", "candidate", "budgets"}
ROW_KEYS = {"flops", "loss_baseline", "loss_candidate", "multiplier", "lo", "hi"}


@pytest.fixture(scope="module")
def csvs(tmp_path_factory):
    pair = simulate_pair("crosses", 0)
    folder = tmp_path_factory.mktemp("compare")
    paths = []
    for runs in (pair.baseline, pair.candidate):
        path = folder / f"{runs.name}.csv"
        pd.DataFrame({"params": runs.n, "tokens": runs.d, "val": runs.loss}).to_csv(
            path, index=False
        )
        paths.append(path)  # fmt: skip
    return paths


COLUMNS = ("--n-col", "params", "--d-col", "tokens", "--loss-col", "val")


def test_compare_two_csvs_json(csvs):
    out = call_cli("compare", *csvs, *COLUMNS, "--bootstrap", N_BOOT, "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert JSON_KEYS <= set(doc)
    assert doc["verdict"] == "crosses"
    assert 5e17 <= doc["crossover_flops"] <= 2e18  # the truth is 1e18
    assert doc["baseline"]["family"] == str(csvs[0]) and doc["candidate"]["file"] == str(csvs[1])
    assert {k: doc["baseline"][k] for k in ("phase", "check")} == {"phase": "scaling",
                                                                   "check": "pass"}  # fmt: skip
    assert all(set(r) >= ROW_KEYS for r in doc["budgets"])
    assert doc["budgets"][0]["multiplier"] > 1 > doc["budgets"][-1]["multiplier"]
    assert doc["compare_run_id"] is None


def test_compare_table_and_budgets(csvs):
    out = call_cli("compare", *csvs, *COLUMNS, "--bootstrap", N_BOOT, "--budget", "1e17", "1e19")
    assert out.returncode == 0, out.stderr
    assert "CROSSES" in out.stdout and "crossover:" in out.stdout
    measured, laws = out.stdout.split("\nlaws (multiplier")
    assert "CROSSES over the trained range" in measured
    grid = [line.split()[0] for line in measured.split("measured frontiers")[1].splitlines()[2:]]
    assert grid == ["1e+16", "3.16e+16", "1e+17", "3.16e+17", "1e+18", "3.16e+18", "1e+19"]
    rows = [line.split() for line in laws.splitlines() if line.strip().startswith("1e+1")]
    assert [(r[0], r[-1]) for r in rows] == [("1e+17", "trained"), ("1e+19", "trained")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["only-one.csv"], "give two CSV files"),
        (["a.csv", "b.csv", "--baseline", "x"], "either two CSV files"),
        (["--baseline", "x"], "name both families"),
        (["--baseline", "x", "--candidate", "y"], "name the experiment"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    out = call_cli("compare", *args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr


@pytest.fixture(scope="module")
def tracked(mlflow_server, csvs):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "compare")
    for family, path in zip(("base", "cand"), csvs, strict=True):
        points = read_points(path, n_col="params", d_col="tokens", loss_col="val")
        import_points(client, points, family=family, experiment=exp_name, source=path)
    return client, exp_id, exp_name


def _compare_runs(client, exp_id):
    filt = f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_COMPARE}'"
    return client.search_runs([exp_id], filt)


def test_compare_from_mlflow_writes_the_comparison_run(mlflow_server, tracked, tmp_path):
    client, exp_id, exp_name = tracked
    args = ("compare", "--tracking-uri", mlflow_server, "--experiment", exp_name,
            "--baseline", "base", "--candidate", "cand", "--bootstrap", N_BOOT)  # fmt: skip
    out = call_cli(*args, "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "crosses"
    assert doc["baseline"]["runs"] == doc["candidate"]["runs"] == 35
    (run,) = _compare_runs(client, exp_id)
    assert run.info.run_id == doc["compare_run_id"] and run.info.status == "FINISHED"
    tags, metrics = run.data.tags, run.data.metrics
    assert tags[schema.TAG_COMPARE_BASELINE] == "base"
    assert tags[schema.TAG_COMPARE_CANDIDATE] == "cand"
    assert tags[schema.TAG_COMPARE_BASELINE_EXPERIMENT] == exp_id
    assert tags[schema.TAG_COMPARE_VERDICT] == "crosses"
    assert tags[schema.TAG_INPUT_DIGEST] and schema.TAG_FAMILY not in tags
    for row in doc["budgets"]:
        assert metrics[schema.compare_budget_metric(row["flops"])] == pytest.approx(
            row["multiplier"])  # fmt: skip
    assert metrics[schema.METRIC_COMPARE_MULTIPLIER] == pytest.approx(
        doc["budgets"][-1]["multiplier"]
    )
    assert metrics[schema.METRIC_COMPARE_CROSSOVER] == pytest.approx(doc["crossover_flops"])
    stored = json.loads(
        read_artifact(client, run.info.run_id, schema.ARTIFACT_COMPARE_JSON, tmp_path)
    )
    assert stored["budgets"] == doc["budgets"] and stored["verdict"] == "crosses"
    png = read_artifact(client, run.info.run_id, schema.ARTIFACT_COMPARE_PNG, tmp_path)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    again = call_cli(*args)  # a second comparison updates the same run
    assert again.returncode == 0, again.stderr
    assert "CROSSES" in again.stdout and doc["compare_run_id"] in again.stdout
    (run,) = _compare_runs(client, exp_id)
    assert run.data.tags[schema.TAG_REFIT_NUMBER] == "2"


def test_unknown_family_is_bad_input(mlflow_server, tracked):
    _, _, exp_name = tracked
    out = call_cli("compare", "--tracking-uri", mlflow_server, "--experiment", exp_name,
                   "--baseline", "nope", "--candidate", "cand")  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"mlflow-scaling compare: error: no usable runs of family 'nope' in experiment '{exp_name}'"
    )


def test_refit_keeps_a_declared_comparison_up_to_date(mlflow_server, tracked):
    client, exp_id, exp_name = tracked
    # Other settings than the CLI's comparison above: the refit job redoes it.
    settings = RefitSettings(n_boot=N_BOOT + 5, curves=False)
    client.create_run(exp_id, tags={schema.TAG_ROLE: schema.ROLE_FIT, schema.TAG_FAMILY: "cand",
                                    schema.TAG_COMPARE_TO: "base"})  # fmt: skip
    first = {o.family: o for o in refit_pass(client, experiments=[exp_name], families=["cand"],
                                             settings=settings)}  # fmt: skip
    assert first["cand"].status == "fitted"
    assert first["cand vs base"].status == "compared"
    assert first["cand vs base"].check == "crosses"
    (run,) = _compare_runs(client, exp_id)  # the CLI's comparison run, updated
    assert run.info.run_id == first["cand vs base"].fit_run_id
    second = {o.family: o for o in refit_pass(client, experiments=[exp_name], families=["cand"],
                                              settings=settings)}  # fmt: skip
    assert second["cand vs base"].status == "skipped"
    assert second["cand vs base"].fit_run_id == run.info.run_id


@pytest.fixture(scope="module")
def pages(mlflow_server, tracked):
    from flask import Flask

    from mlflow_scaling.server.app import register_routes
    from mlflow_scaling.server.data import ClientSource

    client, exp_id, _ = tracked
    source = ClientSource(client)
    return register_routes(Flask("pages"), source=lambda: source).test_client()


def test_compare_page_and_family_link(tracked, pages, tmp_path):
    client, exp_id, exp_name = tracked
    (run,) = _compare_runs(client, exp_id)
    doc = json.loads(read_artifact(client, run.info.run_id, schema.ARTIFACT_COMPARE_JSON, tmp_path))
    resp = pages.get(f"/scaling/compare/{exp_id}/base/cand")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert f'data-verdict="{doc["verdict"]}"' in body
    shown = re.findall(r'data-field="multiplier" data-value="([^"]+)"', body)
    assert [float(v) for v in shown] == [r["multiplier"] for r in doc["budgets"]]
    png = f"/scaling/artifact/{run.info.run_id}/{schema.ARTIFACT_COMPARE_PNG}"
    assert f'src="{png}"' in body
    image = pages.get(png)
    assert image.status_code == 200 and image.mimetype == "image/png"
    by_name = pages.get(f"/scaling/compare/{exp_name}?baseline=base&candidate=cand")
    assert by_name.status_code == 200
    assert pages.get(f"/scaling/compare/{exp_id}/cand/base").status_code == 404

    for family in ("base", "cand"):
        page = pages.get(f"/scaling/family/{exp_id}/{family}").get_data(as_text=True)
        assert f'href="/scaling/compare/{exp_id}/base/cand"' in page
