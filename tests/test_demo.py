"""The main job end to end: the quick demo against a live MLflow server."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from _html_check import assert_valid_html
from mlflow import MlflowClient

from mlflow_scaling.tracking import schema

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = (
    schema.ARTIFACT_FIT_JSON,
    schema.ARTIFACT_FIT_PNG,
    schema.ARTIFACT_REPORT_HTML,
    schema.ARTIFACT_PREDICTIONS_CSV,
)


def run_demo(uri: str, *extra: str, env_extra: dict | None = None):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--quick", "--no-progress",
         "--tracking-uri", uri, "--bootstrap", "100", *extra],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo_run(mlflow_server):
    out = run_demo(mlflow_server)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return mlflow_server, out.stdout


def _fit_run(client, family):
    exp = client.get_experiment_by_name("scaling-demo")
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"{schema.family_filter(family)} and tags.`{schema.TAG_ROLE}` = 'fit'",
    )
    assert len(runs) == 1
    return runs[0]


def test_member_runs_carry_the_contract(demo_run):
    uri, _ = demo_run
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("scaling-demo")
    members = client.search_runs(
        [exp.experiment_id],
        filter_string=f"{schema.family_filter('stdlib-gpt')} and attributes.status = 'FINISHED'",
    )
    members = [r for r in members if r.data.tags.get(schema.TAG_ROLE) != "fit"]
    assert len(members) == 12
    sizes = {r.data.metrics[schema.METRIC_PARAMS] for r in members}
    assert len(sizes) == 4 and max(sizes) / min(sizes) >= 10
    for run in members:
        m, tags, params = run.data.metrics, run.data.tags, run.data.params
        assert tags[schema.TAG_LOSS_METRIC] == "val_loss" and m["val_loss"] > 0
        assert m[schema.METRIC_TOKENS] % (16 * 64) == 0  # whole batches of 16 × 64 bytes
        assert m[schema.METRIC_FLOPS] >= 6 * m[schema.METRIC_PARAMS] * m[schema.METRIC_TOKENS]
        assert schema.PARAM_FLOPS_METHOD in params


def test_fit_run_has_all_artifacts(demo_run, tmp_path):
    uri, _ = demo_run
    client = MlflowClient(uri)
    fit = _fit_run(client, "stdlib-gpt")
    folder = Path(client.download_artifacts(fit.info.run_id, schema.ARTIFACT_DIR, str(tmp_path)))
    for artifact in ARTIFACTS:
        assert (tmp_path / artifact).is_file(), artifact
    png = (folder / "fit.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 800 and height >= 400

    doc = json.loads((folder / "fit.json").read_text())
    page = (folder / "report.html").read_text()
    assert_valid_html(page)
    assert "stdlib-gpt" in page
    for key in ("alpha", "beta"):
        assert f"{doc['approach3']['params'][key]:.4g}" in page
    assert fit.data.tags[schema.TAG_PHASE] in schema.PHASES
    assert fit.data.tags[schema.TAG_CHECK] in ("pass", "fail")
    assert fit.data.metrics[schema.fit_metric("alpha")] == pytest.approx(
        doc["approach3"]["params"]["alpha"]
    )


def test_demo_prints_the_findings(demo_run):
    _, stdout = demo_run
    assert "=== family 'stdlib-gpt'" in stdout and "=== family 'chinchilla'" in stdout
    assert "scaling check:" in stdout and "allocation: N_opt" in stdout
    assert "mlflow ui --backend-store-uri" in stdout
    line = next(x for x in stdout.splitlines() if "largest trained size predicted" in x)
    error = float(line.split(":")[1].split("%")[0]) / 100
    assert error <= 0.05, line


def test_rerun_reuses_finished_runs(demo_run):
    uri, _ = demo_run
    out = run_demo(uri)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "reusing 12 finished runs" in out.stdout and "trained 0 runs" in out.stdout
    assert "imported 0 runs" in out.stdout and "240 already there" in out.stdout
    assert "refit 'stdlib-gpt': skipped" in out.stdout


def test_import_csv_example(mlflow_server, tmp_path):
    good = tmp_path / "history.csv"
    good.write_text("N,C,loss\n1e7,1e17,3.1\n3e7,1e17,3.0\n1e8,1e18,2.7\n")
    script = str(ROOT / "examples" / "import_csv.py")
    args = ["--family", "history", "--experiment", "imports", "--tracking-uri", mlflow_server]
    for expected in ("3 runs imported", "0 runs imported"):  # the second import adds nothing
        out = subprocess.run([sys.executable, script, str(good), "--c-col", "C", *args],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert expected in out.stdout
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("imports")
    runs = client.search_runs([exp.experiment_id], filter_string=schema.family_filter("history"))
    tokens = sorted(r.data.metrics[schema.METRIC_TOKENS] for r in runs)
    assert tokens == pytest.approx(sorted([1e17 / 6e7, 1e17 / 1.8e8, 1e18 / 6e8]))
    bad = tmp_path / "bad.csv"
    bad.write_text("N,C,loss\n1e7,1e17,oops\n")
    out = subprocess.run([sys.executable, script, str(bad), "--c-col", "C", *args],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 2 and "column 'loss', row 1" in out.stderr
