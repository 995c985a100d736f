"""Every string that comes from runs is escaped in report.html; the page holds no script."""

from __future__ import annotations

import html
import re

from _html_check import assert_valid_html
from _refit_support import (
    RunSpec,
    call_cli,
    fit_runs,
    log_runs,
    new_experiment,
    read_artifact,
    synthetic_family,
)
from mlflow import MlflowClient

from mlflow_scaling.report.figures import fit_figure_png
from mlflow_scaling.report.html import report_html
from mlflow_scaling.report.predictions import COLUMNS, predictions_csv
from mlflow_scaling.tracking import schema

FAMILY = "<script>alert(1)</script>"
RUN_NAME = "<img src=x onerror=alert(2)>"
METRIC = '"><svg onload=alert(3)>'


def assert_inert(page: str) -> None:
    assert_valid_html(page)
    assert not re.search(r"<\s*(script|img\s+src=x|svg)", page, re.IGNORECASE)
    # ... and a policy that would block scripts anyway.
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    assert "default-src 'none'; script-src 'none'" in html.unescape(policy)


def test_hostile_names_are_escaped_in_the_report(mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "escape")
    specs = synthetic_family(FAMILY, sizes=(1e7, 1e8, 1e9), tokens_per_param=(10, 40))
    specs[0].name = RUN_NAME
    specs.append(RunSpec(FAMILY, 1e8, 1e9, 3.0, status="FAILED", name=RUN_NAME + "-failed"))
    specs.append(RunSpec(FAMILY, 1e8, 1e9, None, name="odd metric", loss_metric=METRIC))
    log_runs(client, exp_id, specs)
    out = call_cli("refit", "--tracking-uri", mlflow_server, "--experiment", exp_name,
                   "--bootstrap", "0")  # fmt: skip
    assert out.returncode == 0, out.stderr
    (run,) = fit_runs(client, exp_id, FAMILY)
    page = read_artifact(client, run.info.run_id, schema.ARTIFACT_REPORT_HTML, tmp_path).decode()
    assert_inert(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;-failed" in page
    assert "&#34;&gt;&lt;svg onload=alert(3)&gt;" in page  # markupsafe writes " as &#34;


def hostile_doc(text: str) -> dict:
    member = {"run_id": text, "run_name": text, "N": 1e8, "D": 2e9, "C": 1.2e18,
              "C_source": text, "loss": 3.0, "loss_metric": text}  # fmt: skip
    return {
        "family": text, "experiment_name": text, "experiment_id": text, "fit_run_id": text,
        "refit_number": 1, "fitted_at": text, "input_digest": text, "status": text,
        "reason": text, "phase": text, "check_verdict": text, "loss_metric": text,
        "members": [member],
        "excluded": [{"run_id": text, "run_name": text, "status": text, "reason": text}],
        "approach3": None,
        "approach2": {"applicable": False, "reason": text},
        "approach1": {"applicable": False, "reason": text},
        "phases": {"phase": text, "reason": text, "model": text, "criterion": text,
                   "segments": [{"phase": text, "x_min": 1.0, "x_max": 10.0, "slope": -0.1,
                                 "drop_per_decade": 0.2}]},
        "check": {"verdict": text, "reason": text,
                  "criteria": [{"name": text, "value": text, "threshold": text, "passed": None,
                                "detail": text}],
                  "prediction": {"N": 1e9, "D": 2e10, "loss": 2.5, "lo": 2.4, "hi": 2.6,
                                 "tokens": text, "interval": text}},
        "budgets": [],
        "settings": {text: text},
    }  # fmt: skip


def test_every_field_is_escaped():
    text = "<script>x()</script>$\\alpha$ & 'q' \"d\""
    doc = hostile_doc(text)
    png = fit_figure_png(doc)  # the $...$ and backslash must not break mathtext either
    assert png[:4] == b"\x89PNG"
    page = report_html(doc, png)
    assert_inert(page)
    assert "<script>x()" not in page
    assert page.count("&lt;script&gt;x()&lt;/script&gt;") >= 15


def test_predictions_csv_columns_and_empty_fit():
    assert predictions_csv({"budgets": []}).strip() == ",".join(COLUMNS)
    row = {"flops": 1e20, "n_opt": 1e9, "d_opt": 1.6e10, "tokens_per_param": 16.0, "loss": 2.5,
           "lo": None, "hi": None}  # fmt: skip
    lines = predictions_csv({"budgets": [row]}).splitlines()
    values = dict(zip(COLUMNS, lines[1].split(","), strict=True))
    assert float(values["flops"]) == 1e20 and values["loss_lo"] == "" and values["n_opt_hi"] == ""
