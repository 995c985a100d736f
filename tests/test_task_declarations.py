"""Task declarations on member runs (tracking/tasks.py): which tasks, which runs, and why not.

MemberPoint values are built directly here (what ``member_point`` returns for a run); the same
path against a live server is in ``test_refit_tasks.py``.
"""

from __future__ import annotations

import math

from mlflow_scaling.jobs.analysis import RefitSettings, analyze_family
from mlflow_scaling.tracking import schema
from mlflow_scaling.tracking.reading import MemberPoint
from mlflow_scaling.tracking.tasks import declared_tasks, task_points

T = schema.task_tag


def _point(i: int, tags: dict[str, str], metrics: dict[str, float], c_source="scaling.flops"):
    n = 1e7 * 2**i
    return MemberPoint(f"r{i}", f"run{i}", n, 20 * n, 120 * n * n, c_source, 3.0 - 0.1 * i,
                       "val_loss", 0, None, task_tags=tags, metrics=metrics)  # fmt: skip


def test_declarations_on_one_run_hold_for_the_family_and_runs_may_rename_metrics():
    points = [
        _point(0, {schema.TAG_TASKS: "arc, hard", T("arc", "chance"): "0.25",
                   T("arc", "loss_metric"): "arc_bpb", T("hard", "chance"): "0.5",
                   T("arc", "n_examples"): "1000", T("arc", "metric"): "arc"},
                  {"arc": 0.3, "arc_bpb": 1.2, "hard": 0.5}),
        _point(1, {T("arc", "metric"): "eval/arc"}, {"eval/arc": 0.4, "arc_bpb": 1.1}),
        _point(2, {T("arc", "metric"): "arc"}, {"arc": 0.45, "arc_bpb": 1.0, "hard": 0.55}),
    ]  # fmt: skip
    specs = declared_tasks(points)
    assert sorted(specs) == ["arc", "hard"]
    arc = specs["arc"]
    assert (arc.metric, arc.loss_metric, arc.chance, arc.n_examples) == ("arc", "arc_bpb", 0.25,
                                                                        1000)  # fmt: skip
    assert arc.problem == "" and arc.gating is False
    tp = task_points(points, arc)
    assert tp.accuracy == [0.3, 0.4, 0.45] and tp.loss == [1.2, 1.1, 1.0]
    assert tp.loss_sources == {"task loss (arc_bpb)"}
    hard = task_points(points, specs["hard"])
    assert hard.run_ids == ["r0", "r2"]
    assert hard.excluded == [{"run_id": "r1", "run_name": "run1", "reason": "no metric 'hard'"}]
    assert hard.loss == [3.0, 2.8] and hard.loss_sources == {"training loss (val_loss)"}


def test_problems_are_named_per_task():
    points = [
        _point(0, {schema.TAG_TASKS: "a,b,c.d,e", schema.TAG_GATING_TASKS: "e,f",
                   T("a", "chance"): "0.25", T("c.d", "chance"): "0.25",
                   T("e", "chance"): "1.5"}, {}),
        _point(1, {T("a", "chance"): "0.2"}, {}),
    ]  # fmt: skip
    specs = declared_tasks(points)
    assert specs["a"].problem.startswith("runs disagree on scaling.task.a.chance: '0.2' (1 runs)")
    assert specs["b"].problem == "no tag scaling.task.b.chance on any run"
    assert specs["c.d"].problem == "a task name may hold only letters, digits, '_' and '-'"
    assert specs["e"].problem == "tag scaling.task.e.chance = '1.5' is not in [0, 1)"
    assert specs["e"].gating is True
    assert specs["f"].problem.startswith("named in scaling.gating_tasks but not in scaling.tasks")


def test_bad_values_exclude_the_run_for_that_task_only():
    tags = {schema.TAG_TASKS: "t", T("t", "chance"): "0.25", T("t", "loss_metric"): "bpb"}
    points = [
        _point(0, tags, {"t": 1.2, "bpb": 1.0}),
        _point(1, {T("t", "n_examples"): "many"}, {"t": 0.3, "bpb": 1.0}),
        _point(2, {}, {"t": 0.3, "bpb": -1.0}),
        _point(3, {}, {"t": 0.4, "bpb": 0.9}, c_source="6ND"),
    ]
    tp = task_points(points, declared_tasks(points)["t"], lambda n, d: 7.0 * n * d)
    assert [e["reason"] for e in tp.excluded] == [
        "t = 1.2 is not an accuracy in [0, 1]",
        "tag scaling.task.t.n_examples is not a positive integer",
        "bpb = -1.0 (must be positive and finite)",
    ]
    assert tp.run_ids == ["r3"]
    assert tp.c == [7.0 * points[3].n * points[3].d]  # no FLOPs logged: on the family's axis
    assert math.isnan(tp.n_examples[0])


def test_a_family_too_small_to_fit_lists_its_tasks_with_the_reason():
    tags = {schema.TAG_TASKS: "t", T("t", "chance"): "0.25"}
    points = [_point(i, tags, {"t": 0.3}) for i in range(3)]
    out = analyze_family(points, RefitSettings(n_boot=0))
    assert out["status"] == "insufficient_data"
    assert out["tasks"]["t"]["phase"] == "insufficient_data"
    assert out["tasks"]["t"]["error"] == out["reason"]
