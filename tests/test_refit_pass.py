"""The refit job against a live MLflow server: one pass over a mixed experiment, then again.

The experiment holds four families: ``good`` (a clean law plus runs that must be excluded),
``one-size`` and ``all-failed`` (insufficient data) and ``bad-target`` (its fit run carries an
unreadable check target, so its refit fails). The first pass runs through the CLI; the tests
that read its results share it (``mixed``). Tests that change runs or fit runs build an
experiment of their own (:func:`fresh`) with the families they need and run its first pass in
process, so each test passes alone and in any order.
"""

from __future__ import annotations

import csv
import io
import json
import math

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
from mlflow import MlflowClient

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.published import published_fit

N_BOOT = 30
SETTINGS = RefitSettings(n_boot=N_BOOT)


def one_size() -> list[RunSpec]:
    return [RunSpec("one-size", 1e8, d, 3.0 - i * 0.05) for i, d in
            enumerate((1e9, 2e9, 4e9, 8e9, 1.6e10, 3.2e10))]  # fmt: skip


def all_failed() -> list[RunSpec]:
    return [RunSpec("all-failed", 1e7 * 3**i, 2e9, 3.0, status="FAILED") for i in range(4)]


def fresh(uri: str, specs: list[RunSpec]) -> dict:
    """An experiment of one test's own with ``specs`` logged, after its first pass."""
    client = MlflowClient(uri)
    exp_id, exp_name = new_experiment(client, "own")
    log_runs(client, exp_id, specs)
    first = refit_pass(client, experiments=[exp_name], settings=SETTINGS)
    return {"client": client, "uri": uri, "exp_id": exp_id, "exp_name": exp_name,
            "first": {o.family: o for o in first}}  # fmt: skip


@pytest.fixture(scope="module")
def mixed(mlflow_server, tmp_path_factory):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "mixed")
    good = synthetic_family("good")
    bad = [
        RunSpec("good", 1e8, 2e9, 2.5, status="FAILED", name="crashed"),
        RunSpec("good", 1e8, 2e9, 2.5, status="KILLED", name="preempted"),
        RunSpec("good", 1e8, 2e9, 2.5, status="RUNNING", name="still-going"),
        RunSpec("good", 1e8, 2e9, float("nan"), name="nan-loss"),
        RunSpec("good", 1e8, None, 2.5, name="no-tokens"),
        RunSpec("good", 0.0, 2e9, 2.5, name="zero-params"),
        RunSpec("good", 1e8, 2e9, None, name="wrong-metric", loss_metric="eval/loss"),
    ]
    bad_target = synthetic_family("bad-target", sizes=(1e7, 1e8, 1e9), tokens_per_param=(20,))
    ids = log_runs(client, exp_id, good + bad + one_size() + all_failed() + bad_target)
    good_ids = ids[: len(good)]
    bad_ids = dict(zip([s.name for s in bad], ids[len(good) : len(good) + len(bad)], strict=True))
    # A fit run made by hand, carrying a check target that is not a number.
    client.create_run(
        exp_id,
        tags={
            schema.TAG_ROLE: schema.ROLE_FIT,
            schema.TAG_FAMILY: "bad-target",
            schema.TAG_TARGET_PARAMS: "lots",
        },
    )
    out = call_cli(
        "refit", "--tracking-uri", mlflow_server, "--experiment", exp_name,
        "--bootstrap", N_BOOT, "--format", "json",
    )  # fmt: skip
    return {
        "client": client,
        "uri": mlflow_server,
        "exp_id": exp_id,
        "exp_name": exp_name,
        "good_ids": good_ids,
        "bad_ids": bad_ids,
        "cli": out,
        "tmp": tmp_path_factory.mktemp("mixed"),
    }


def outcomes_by_family(out) -> dict:
    return {o["family"]: o for o in json.loads(out.stdout)["families"]}


def test_first_pass_outcomes_and_exit_code(mixed):
    out = mixed["cli"]
    assert out.returncode == 1, out.stderr  # one family failed
    got = outcomes_by_family(out)
    assert set(got) == {"good", "one-size", "all-failed", "bad-target"}
    assert got["good"]["status"] == "fitted" and got["good"]["refit_number"] == 1
    assert got["good"]["n_members"] == 15 and got["good"]["n_excluded"] == 7
    assert got["one-size"]["status"] == "insufficient_data"
    assert got["all-failed"]["status"] == "insufficient_data"
    assert got["bad-target"]["status"] == "error"
    assert "scaling.target_params" in got["bad-target"]["message"]
    assert "'lots'" in got["bad-target"]["message"]


def test_good_family_fit_run(mixed):
    client, tmp = mixed["client"], mixed["tmp"]
    (run,) = fit_runs(client, mixed["exp_id"], "good")
    tags, metrics = run.data.tags, run.data.metrics
    assert tags[schema.TAG_ROLE] == schema.ROLE_FIT
    # A clean law over two decades of sizes: it scales, and the check passes.
    assert tags[schema.TAG_PHASE] == schema.PHASE_SCALING
    assert tags[schema.TAG_CHECK] == schema.CHECK_PASS
    assert tags[schema.TAG_REFIT_NUMBER] == "1"
    assert len(tags[schema.TAG_INPUT_DIGEST]) == 64
    assert run.info.status == "FINISHED"
    for name in schema.FIT_METRIC_NAMES:
        assert math.isfinite(metrics[schema.fit_metric(name)])
    assert metrics[schema.fit_metric("alpha")] == pytest.approx(0.347, abs=0.08)
    assert metrics[schema.METRIC_FIT_POINTS] == 15 and metrics[schema.METRIC_FIT_EXCLUDED] == 7
    history = client.get_metric_history(run.info.run_id, schema.fit_metric("E"))
    assert [m.step for m in history] == [1]

    doc = fit_json(client, run.info.run_id, tmp)
    assert doc["family"] == "good" and doc["status"] == "fitted"
    assert doc["fit_run_id"] == run.info.run_id
    assert doc["input_digest"] == tags[schema.TAG_INPUT_DIGEST]
    assert sorted(doc["member_run_ids"]) == sorted(mixed["good_ids"])
    assert doc["approach3"]["params"]["alpha"] == metrics[schema.fit_metric("alpha")]
    assert set(doc["approach3"]["ci"]) == {"E", "A", "B", "alpha", "beta"}
    assert doc["approach2"]["applicable"] is False and doc["approach2"]["reason"]
    assert doc["check"]["verdict"] == tags[schema.TAG_CHECK]
    assert {c["name"] for c in doc["check"]["criteria"]} >= {"backtest", "extrapolation"}
    assert doc["phases"]["phase"] == tags[schema.TAG_PHASE]
    reasons = {e["run_name"]: e["reason"] for e in doc["excluded"]}
    ids = {e["run_name"]: e["run_id"] for e in doc["excluded"]}
    assert ids == mixed["bad_ids"]
    assert "FAILED" in reasons["crashed"] and "KILLED" in reasons["preempted"]
    assert "not finished" in reasons["still-going"]
    assert "val_loss is nan" in reasons["nan-loss"]
    assert "no metric scaling.tokens" in reasons["no-tokens"]
    assert "scaling.params = 0" in reasons["zero-params"]
    assert "'eval/loss'" in reasons["wrong-metric"]

    rows = list(csv.DictReader(io.StringIO(
        read_artifact(client, run.info.run_id, schema.ARTIFACT_PREDICTIONS_CSV, tmp).decode()
    )))  # fmt: skip
    assert len(rows) >= 8
    for row in rows:
        assert float(row["loss_lo"]) <= float(row["loss"]) <= float(row["loss_hi"])
        assert float(row["n_opt"]) * float(row["d_opt"]) * 6 == pytest.approx(float(row["flops"]))
    png = read_artifact(client, run.info.run_id, schema.ARTIFACT_FIT_PNG, tmp)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    page = read_artifact(client, run.info.run_id, schema.ARTIFACT_REPORT_HTML, tmp).decode()
    assert "data:image/png;base64," in page and "crashed" in page


def test_insufficient_data_fit_runs(mixed):
    client, tmp = mixed["client"], mixed["tmp"]
    for family, expected in (
        ("one-size", "one model size"),
        ("all-failed", "0 usable runs (4 more excluded"),
    ):
        (run,) = fit_runs(client, mixed["exp_id"], family)
        assert run.data.tags[schema.TAG_PHASE] == schema.PHASE_INSUFFICIENT_DATA
        assert run.data.tags[schema.TAG_CHECK] == schema.CHECK_FAIL
        doc = fit_json(client, run.info.run_id, tmp)
        assert doc["status"] == "insufficient_data" and expected in doc["reason"]
        assert schema.fit_metric("E") not in run.data.metrics
        csv_text = read_artifact(client, run.info.run_id, schema.ARTIFACT_PREDICTIONS_CSV, tmp)
        assert csv_text.decode().splitlines()[0].startswith("flops,")
        page = read_artifact(client, run.info.run_id, schema.ARTIFACT_REPORT_HTML, tmp).decode()
        assert "Insufficient data" in page
    doc = fit_json(client, fit_runs(client, mixed["exp_id"], "all-failed")[0].info.run_id, tmp)
    assert [e["reason"] for e in doc["excluded"]] == ["run failed (status FAILED)"] * 4


def test_failed_family_marked_on_its_fit_run(mixed):
    (run,) = fit_runs(mixed["client"], mixed["exp_id"], "bad-target")
    assert "scaling.target_params" in run.data.tags[schema.TAG_FIT_ERROR]
    assert run.info.status == "FAILED"
    assert schema.TAG_INPUT_DIGEST not in run.data.tags


def test_second_pass_skips_unchanged_families(mixed):
    client = mixed["client"]
    outcomes = refit_pass(client, experiments=[mixed["exp_name"]], settings=SETTINGS)
    got = {o.family: o for o in outcomes}
    assert {f: o.status for f, o in got.items()} == {
        "good": "skipped",
        "one-size": "skipped",
        "all-failed": "skipped",
        "bad-target": "error",
    }
    assert got["good"].refit_number == 1 and got["good"].phase is not None
    # Other settings are another fit: not skipped.
    other = refit_pass(
        client,
        experiments=[mixed["exp_name"]],
        families=["one-size"],
        settings=RefitSettings(n_boot=N_BOOT + 1),
    )
    assert [o.status for o in other] == ["insufficient_data"]
    assert other[0].refit_number == 2


def test_new_member_refits_and_force_refits(mlflow_server):
    mixed = fresh(mlflow_server, synthetic_family("good") + all_failed())
    assert mixed["first"]["good"].status == "fitted"
    client = mixed["client"]
    (run,) = fit_runs(client, mixed["exp_id"], "good")
    client.set_tag(run.info.run_id, schema.TAG_TARGET_PARAMS, "2.5e10")  # a person's target
    log_runs(client, mixed["exp_id"], synthetic_family("good", sizes=(4e9,), seed=5))
    outcomes = refit_pass(client, experiments=[mixed["exp_name"]], settings=SETTINGS)
    got = {o.family: o for o in outcomes}
    assert got["good"].status == "fitted" and got["good"].refit_number == 2
    assert got["good"].n_members == 18
    assert got["all-failed"].status == "skipped"
    (run,) = fit_runs(client, mixed["exp_id"], "good")
    steps = [m.step for m in client.get_metric_history(run.info.run_id, schema.fit_metric("E"))]
    assert sorted(steps) == [1, 2]
    doc = fit_json(client, run.info.run_id)
    assert doc["check"]["prediction"]["N"] == 2.5e10
    assert doc["settings"]["target_params_from"] == "tag scaling.target_params"

    out = call_cli(
        "refit", "--tracking-uri", mixed["uri"], "--experiment", mixed["exp_name"],
        "--family", "all-failed", "--bootstrap", N_BOOT, "--force",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "insufficient_data" in out.stdout and "1 families" in out.stdout
    (run,) = fit_runs(client, mixed["exp_id"], "all-failed")
    assert run.data.tags[schema.TAG_REFIT_NUMBER] == "2"


def test_write_that_dies_before_publishing_changes_nothing(mlflow_server):
    """A pass that dies after claiming its number and writing its files publishes nothing.

    The published fit stays as it was; the error recorded on the fit run (read back) stops the
    next pass from skipping, and that pass takes a number past the dead claim. The dead
    claim's folder is an orphan until the grace period is over (``test_refit_retention.py``).
    """
    mixed = fresh(mlflow_server, one_size())
    client = mixed["client"]
    (run,) = fit_runs(client, mixed["exp_id"], "one-size")
    before = published_fit(run)
    assert before.number == 1

    def die(step, number):
        if step == "artifacts":
            raise RuntimeError("the pass was killed here")

    (dead,) = refit_pass(client, experiments=[mixed["exp_name"]], families=["one-size"],
                         settings=SETTINGS, force=True, on_step=die)  # fmt: skip
    assert (dead.status, dead.error_recorded) == ("error", True)
    assert "killed here" in dead.message
    (run,) = fit_runs(client, mixed["exp_id"], "one-size")
    assert published_fit(run) == before
    assert run.data.tags[schema.TAG_REFIT_NUMBER] == str(before.number)
    assert "killed here" in run.data.tags[schema.TAG_FIT_ERROR]
    assert run.info.status == "FAILED"
    folders = client.list_artifacts(run.info.run_id, schema.ARTIFACT_FITS_DIR)
    assert sorted(f.path.rsplit("/", 1)[-1].split("-")[0] for f in folders) == ["1", "2"]

    (redo,) = refit_pass(
        client, experiments=[mixed["exp_name"]], families=["one-size"], settings=SETTINGS
    )
    assert redo.status == "insufficient_data" and redo.refit_number == before.number + 2
    (run,) = fit_runs(client, mixed["exp_id"], "one-size")
    assert run.data.tags[schema.TAG_FIT_ERROR] == "" and run.info.status == "FINISHED"
    (again,) = refit_pass(
        client, experiments=[mixed["exp_name"]], families=["one-size"], settings=SETTINGS
    )
    assert again.status == "skipped" and again.refit_number == before.number + 2


def test_skipping_pass_repairs_mirror_tags(mlflow_server):
    """Mirror tags overwritten by a slow writer (here: by hand) are put right by a skip."""
    mixed = fresh(mlflow_server, all_failed())
    client = mixed["client"]
    (run,) = fit_runs(client, mixed["exp_id"], "all-failed")
    client.set_tag(run.info.run_id, schema.TAG_PHASE, schema.PHASE_SCALING)
    client.set_tag(run.info.run_id, schema.TAG_REFIT_NUMBER, "7")
    (out,) = refit_pass(
        client, experiments=[mixed["exp_name"]], families=["all-failed"], settings=SETTINGS
    )
    assert out.status == "skipped" and out.phase == schema.PHASE_INSUFFICIENT_DATA
    (run,) = fit_runs(client, mixed["exp_id"], "all-failed")
    assert run.data.tags[schema.TAG_PHASE] == schema.PHASE_INSUFFICIENT_DATA
    assert run.data.tags[schema.TAG_REFIT_NUMBER] == str(published_fit(run).number) == "1"


def test_unknown_family_is_bad_input(mixed):
    out = call_cli(
        "refit", "--tracking-uri", mixed["uri"], "--experiment", mixed["exp_name"],
        "--family", "no-such-family",
    )  # fmt: skip
    assert out.returncode == 2
    assert "no-such-family" in out.stderr and len(out.stderr.strip().splitlines()) == 1
