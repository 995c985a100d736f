"""Downstream tasks through the refit job, against a live MLflow server.

Member runs are logged with ``MlflowClient`` as any user would: the scaling metrics, a training
loss, two task accuracies and a task loss, and the task declarations as tags (on some runs
only: any run of the family declares for all). ``arc`` scales and gates the check; ``hard``
sits at chance (cold start) and is reported only, then made gating, when it fails the check.
One run lacks ``hard``'s metric and is excluded for that task only.
"""

from __future__ import annotations

import time

import pytest
from _refit_support import fit_json, fit_runs, new_experiment, read_artifact
from downstream_sim import simulate_checkpoints, simulate_task
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

from mlflow_scaling.jobs.analysis import RefitSettings
from mlflow_scaling.jobs.refit import refit_pass
from mlflow_scaling.server.data import ClientSource, family_detail
from mlflow_scaling.server.pages import Links, render_family
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.reading import ExperimentRef

# The tasks gate the check here, not the law's precision: the ladder's 20-replicate interval at
# 10x its largest size is wider than the default ±5 %, so the bound is set at ±50 %.
SETTINGS = RefitSettings(n_boot=20, max_halfwidth=0.5)
EXAMPLES = 2000


def _log_family(client: MlflowClient, exp_id: str, family: str, gating: str) -> list[str]:
    sim = simulate_task(0, n_examples=EXAMPLES)
    hard = simulate_task(1, n_examples=EXAMPLES, at_chance=True)
    ts = int(time.time() * 1000)
    ids = []
    for i in range(sim.n.size):
        tags = {schema.TAG_FAMILY: family}
        if i < 2:  # the declarations sit on two runs; they hold for the family
            tags.update({
                schema.TAG_TASKS: "arc,hard",
                schema.TAG_GATING_TASKS: gating,
                schema.task_tag("arc", "metric"): "eval/arc_acc",
                schema.task_tag("arc", "loss_metric"): "eval/arc_bpb",
                schema.task_tag("arc", "chance"): "0.25",
                schema.task_tag("arc", "n_examples"): str(EXAMPLES),
                schema.task_tag("hard", "metric"): "eval/hard_acc",
                schema.task_tag("hard", "chance"): "0.25",
                schema.task_tag("hard", "n_examples"): str(EXAMPLES),
            })  # fmt: skip
        run = client.create_run(exp_id, run_name=f"{family}-{i}", tags=tags)
        metrics = {
            schema.METRIC_PARAMS: sim.n[i],
            schema.METRIC_TOKENS: sim.d[i],
            schema.METRIC_FLOPS: sim.c[i],
            schema.DEFAULT_LOSS_METRIC: sim.train_loss[i],
            "eval/arc_acc": sim.accuracy[i],
            "eval/arc_bpb": sim.task_loss[i],
        }
        if i != 5:  # this run never evaluated the hard task
            metrics["eval/hard_acc"] = hard.accuracy[i]
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, float(v), ts, 0) for k, v in metrics.items()],
            tags=[RunTag("note", "member")],
        )
        client.set_terminated(run.info.run_id, "FINISHED")
        ids.append(run.info.run_id)
    return ids


@pytest.fixture(scope="module")
def refitted(mlflow_server, tmp_path_factory):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "tasks")
    ids = _log_family(client, exp_id, "ladder", gating="arc")
    outcomes = refit_pass(client, experiments=[exp_name], settings=SETTINGS)
    (run,) = fit_runs(client, exp_id, "ladder")
    tmp = tmp_path_factory.mktemp("tasks")
    return {"client": client, "exp_id": exp_id, "exp_name": exp_name, "ids": ids,
            "outcomes": outcomes, "run": run, "doc": fit_json(client, run.info.run_id, tmp),
            "tmp": tmp}  # fmt: skip


def test_fit_json_has_every_declared_task(refitted):
    tasks = refitted["doc"]["tasks"]
    assert sorted(tasks) == ["arc", "hard"]
    arc, hard = tasks["arc"], tasks["hard"]
    assert arc["phase"] == "scaling" and arc["gating"] is True
    assert hard["phase"] == "cold_start" and hard["gating"] is False
    assert arc["steps"]["loss_fit"]["loss_source"] == "task loss (eval/arc_bpb)"
    assert hard["steps"]["loss_fit"]["loss_source"] == "training loss (val_loss)"
    assert set(arc["steps"]["sigmoid"]) == {
        "chance", "ceiling", "k", "L0", "floor", "height", "free_floor",
    }  # fmt: skip
    assert arc["steps"]["sigmoid"]["chance"] == arc["steps"]["sigmoid"]["floor"] == 0.25
    assert arc["steps"]["sigmoid_points"]["on"] == "final points"  # logged once per run
    assert arc["checkpoints"] is None
    pred = arc["prediction"]
    check_pred = refitted["doc"]["check"]["prediction"]
    assert (pred["N"], pred["D"]) == (check_pred["N"], check_pred["D"])
    assert pred["lo"] < pred["metric"] < pred["hi"]
    assert set(pred) >= {"N", "D", "task_loss", "metric", "lo", "hi", "interval"}
    bt = arc["largest_size_backtest"]
    assert set(bt) >= {"N", "measured", "predicted", "lo", "hi", "one_step_predicted"}
    assert bt["N"] == 2e8 and abs(bt["predicted"] - bt["measured"]) < 0.03
    assert arc["one_step"]["chance"] == 0.25


def test_a_run_missing_a_task_metric_is_excluded_for_that_task_only(refitted):
    tasks = refitted["doc"]["tasks"]
    missing = refitted["ids"][5]
    assert [e["run_id"] for e in tasks["hard"]["excluded"]] == [missing]
    assert tasks["hard"]["excluded"][0]["reason"] == "no metric 'eval/hard_acc'"
    assert tasks["hard"]["n_points"] == 14
    assert tasks["arc"]["excluded"] == [] and tasks["arc"]["n_points"] == 15
    assert refitted["doc"]["n_members"] == 15 and refitted["doc"]["excluded"] == []


def test_check_gates_on_arc_and_reports_hard(refitted):
    crit = {c["name"]: c for c in refitted["doc"]["check"]["criteria"]}
    assert crit["task:arc"]["passed"] is True
    assert crit["task:hard"]["passed"] is None
    assert refitted["doc"]["check_verdict"] == "pass"


def test_fit_run_has_task_metrics_tags_and_figure(refitted):
    client, run = refitted["client"], refitted["run"]
    run = client.get_run(run.info.run_id)
    metrics, tags = run.data.metrics, run.data.tags
    pred = refitted["doc"]["tasks"]["arc"]["prediction"]
    assert metrics[schema.task_fit_metric("arc", "accuracy")] == pytest.approx(pred["metric"])
    assert metrics[schema.task_fit_metric("arc", "lo")] == pytest.approx(pred["lo"])
    assert schema.task_fit_metric("arc", "ceiling") in metrics
    assert tags[schema.task_phase_tag("arc")] == "scaling"
    assert tags[schema.task_phase_tag("hard")] == "cold_start"
    png = read_artifact(client, run.info.run_id, schema.ARTIFACT_TASKS_PNG, refitted["tmp"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_family_page_shows_the_task_table(refitted):
    client = refitted["client"]
    experiment = ExperimentRef(refitted["exp_id"], refitted["exp_name"])
    detail = family_detail(ClientSource(client), experiment, "ladder")
    html = render_family(detail, Links(""))
    assert "<h2>Downstream tasks</h2>" in html
    pred = refitted["doc"]["tasks"]["arc"]["prediction"]
    row = html[html.index('data-task="arc"') :]
    assert f'data-field="accuracy">{pred["metric"]:.3f}<' in row
    assert f'data-field="lo">{pred["lo"]:.3f}<' in row
    assert 'class="badge phase-scaling" data-phase="scaling">scaling<' in row
    hard = html[html.index('data-task="hard"') :]
    assert 'class="badge phase-cold" data-phase="cold_start">cold start<' in hard
    assert "scaling/tasks.png" in html
    assert "no metric &#39;eval/hard_acc&#39;" in html


def test_unchanged_family_is_skipped_and_a_changed_task_refits_and_gates(mlflow_server, tmp_path):
    # It changes runs, so it has an experiment of its own (the others read ``refitted``).
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "tasks-change")
    ids = _log_family(client, exp_id, "ladder", gating="arc")
    (first,) = refit_pass(client, experiments=[exp_name], settings=SETTINGS)
    assert first.status == "fitted"
    (again,) = refit_pass(client, experiments=[exp_name], settings=SETTINGS)
    assert again.status == "skipped"
    # The missing evaluation arrives, and the hard task (at chance) is made gating.
    client.log_metric(ids[5], "eval/hard_acc", 0.25)
    client.set_tag(ids[0], schema.TAG_GATING_TASKS, "arc,hard")
    (after,) = refit_pass(client, experiments=[exp_name], settings=SETTINGS)
    assert after.status == "fitted" and after.check == "fail"
    doc = fit_json(client, after.fit_run_id, tmp_path)
    assert doc["tasks"]["hard"]["excluded"] == [] and doc["tasks"]["hard"]["n_points"] == 15
    assert doc["tasks"]["hard"]["gating"] is True
    crit = {c["name"]: c for c in doc["check"]["criteria"]}
    assert crit["task:hard"]["passed"] is False and crit["task:arc"]["passed"] is True
    assert [c["name"] for c in doc["check"]["criteria"] if c["passed"] is False] == ["task:hard"]


def test_task_logged_at_several_steps_fits_step2_on_checkpoints(mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server)
    exp_id, exp_name = new_experiment(client, "tasks-checkpoints")
    sim = simulate_checkpoints(0, n_examples=EXAMPLES)
    ts = int(time.time() * 1000)
    for r in range(int(sim.run.max()) + 1):
        rows = sim.run == r
        tags = {schema.TAG_FAMILY: "ckpt", schema.TAG_TASKS: "arc",
                schema.task_tag("arc", "metric"): "eval/arc_acc",
                schema.task_tag("arc", "loss_metric"): "eval/arc_bpb",
                schema.task_tag("arc", "chance"): "0.25",
                schema.task_tag("arc", "n_examples"): str(EXAMPLES)}  # fmt: skip
        run = client.create_run(exp_id, run_name=f"ckpt-{r}", tags=tags)
        metrics = []
        columns = (sim.step, sim.n, sim.d, sim.task_loss, sim.accuracy)
        for step, n, d, bpb, acc in zip(*(v[rows] for v in columns), strict=True):
            values = {schema.METRIC_PARAMS: n, schema.METRIC_TOKENS: d,
                      schema.METRIC_FLOPS: 6 * n * d, schema.DEFAULT_LOSS_METRIC: 1.2 * bpb,
                      "eval/arc_acc": acc, "eval/arc_bpb": bpb}  # fmt: skip
            metrics += [Metric(k, float(v), ts, int(step)) for k, v in values.items()]
        client.log_batch(run.info.run_id, metrics=metrics)
        client.set_terminated(run.info.run_id, "FINISHED")
    (outcome,) = refit_pass(client, experiments=[exp_name], settings=SETTINGS)
    assert outcome.status == "fitted"
    arc = fit_json(client, outcome.fit_run_id, tmp_path)["tasks"]["arc"]
    assert arc["n_points"] == 15 and arc["steps"]["loss_fit"]["n_points"] == 15  # final points
    # Steps 200 to 1000 of each run (past the first 10 %): 6 of its 8 evaluations.
    assert arc["checkpoints"] == {"rows": 90, "runs": 15, "skip_fraction": 0.1}
    assert arc["steps"]["sigmoid_points"] == {
        "on": "checkpoints", "n_points": 90, "n_runs": 15, "weights": "binomial (n_examples)",
    }  # fmt: skip
    sig = arc["steps"]["sigmoid"]
    assert sig["free_floor"] is True and abs(sig["floor"] - 0.35) < 0.02
    assert [w[:13] for w in arc["warnings"]] == ["fitted floor "]
