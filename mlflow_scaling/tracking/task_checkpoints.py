"""Task metrics logged at several steps of a run: the checkpoints for step 2 of a task's chain.

The data contract: a member run may log a task's accuracy (and its task loss) at any number of
steps; each step at which the accuracy and the step-1 variable (the task loss, or the run's
loss metric where the task declares none) were both logged is a checkpoint. The run's final
point stays the only point for step 1 (:mod:`.tasks`); checkpoints are points for step 2 only,
past the first ``skip_fraction`` of the run's steps (:func:`..laws.downstream.later_checkpoints`;
docs/decision-numbers.md says how the fraction was chosen and how a decaying learning rate is
treated).

:func:`read_task_histories` reads the histories from MLflow (one ``get_metric_history`` per run
and metric); :func:`task_checkpoints` is pure and builds one task's checkpoints from them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..laws.downstream import Checkpoints, later_checkpoints
from . import schema
from .reading import MemberPoint
from .tasks import TaskPoints, TaskSpec, declared_tasks

if TYPE_CHECKING:
    from mlflow import MlflowClient

History = dict[str, tuple[list[float], list[float]]]
"""metric name -> (steps, values) of one run."""


def _metric_names(p: MemberPoint, spec: TaskSpec) -> tuple[str, str]:
    """The run's accuracy metric and step-1 metric for the task (per-run tags first)."""
    tags = p.task_tags
    metric = tags.get(schema.task_tag(spec.name, "metric"), "").strip() or spec.metric
    loss = tags.get(schema.task_tag(spec.name, "loss_metric"), "").strip() or spec.loss_metric
    return metric, loss or p.loss_metric


def read_task_histories(client: MlflowClient, points: Sequence[MemberPoint]) -> dict[str, History]:
    """Per run id, the histories of the metrics its declared tasks use (empty: no tasks)."""
    specs = declared_tasks(points)
    out: dict[str, History] = {}
    if not specs:
        return out
    for p in points:
        names = {name for spec in specs.values() for name in _metric_names(p, spec)}
        hist: History = {}
        for name in sorted(names):
            if name not in p.metrics:
                continue
            rows = client.get_metric_history(p.run_id, name)
            hist[name] = ([float(m.step) for m in rows], [float(m.value) for m in rows])
        out[p.run_id] = hist
    return out


def _joined(hist: History, metric: str, loss_metric: str) -> tuple[np.ndarray, ...]:
    """(steps, accuracy, loss) at the steps where both were logged (the last value of a step)."""
    acc = dict(zip(*hist.get(metric, ([], [])), strict=True))
    loss = dict(zip(*hist.get(loss_metric, ([], [])), strict=True))
    steps = sorted(s for s in acc if s in loss)
    ok = [s for s in steps if math.isfinite(acc[s]) and 0 <= acc[s] <= 1
          and math.isfinite(loss[s]) and loss[s] > 0]  # fmt: skip
    return (np.array(ok, float), np.array([acc[s] for s in ok], float),
            np.array([loss[s] for s in ok], float))  # fmt: skip


def task_checkpoints(
    points: Sequence[MemberPoint],
    spec: TaskSpec,
    tp: TaskPoints,
    histories: Mapping[str, History],
    skip_fraction: float,
) -> Checkpoints | None:
    """The task's checkpoints over the runs it uses (``tp``), or None where no run logged the
    task at more than one step (then step 2 stays on final points)."""
    by_id = {p.run_id: p for p in points}
    run, steps, acc, loss, examples = [], [], [], [], []
    several = False
    for i, (run_id, n_ex) in enumerate(zip(tp.run_ids, tp.n_examples, strict=True)):
        s, a, lo = _joined(histories.get(run_id, {}), *_metric_names(by_id[run_id], spec))
        if s.size == 0:  # no history read: the final point alone
            s, a, lo = np.ones(1), np.array([tp.accuracy[i]]), np.array([tp.loss[i]])
        several |= s.size > 1
        run += [run_id] * s.size
        steps.append(s), acc.append(a), loss.append(lo)
        examples.append(np.full(s.size, n_ex))
    if not several:
        return None
    run_arr, step_arr = np.array(run), np.concatenate(steps)
    keep = later_checkpoints(run_arr, step_arr, skip_fraction)
    ex = np.concatenate(examples)[keep]
    return Checkpoints.of(run_arr[keep], np.concatenate(loss)[keep], np.concatenate(acc)[keep],
                          ex if np.isfinite(ex).all() else None)  # fmt: skip
