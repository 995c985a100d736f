"""The downstream part of a refit: every declared task fitted, for ``fit.json`` and the check.

For each task the family declares (:mod:`..tracking.tasks`), :func:`analyze_tasks` fits the
two-step chain, the one-step fit, the phase and the largest-size backtest
(:func:`..laws.downstream.fit_task`) and predicts the accuracy at the check's target. It returns
the ``tasks`` section of ``fit.json``, one check criterion per task (gating tasks can fail the
check; the others are reported) and the fit run's per-task metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..laws.check import Criterion
from ..laws.compute_axis import ComputeAxis
from ..laws.downstream import DEFAULT_SKIP_FRACTION, fit_task, task_criteria
from ..tracking import schema
from ..tracking.reading import MemberPoint
from ..tracking.task_checkpoints import History, task_checkpoints
from ..tracking.tasks import declared_tasks, task_points

DEFAULT_TOKENS_PER_PARAM = 20.0
"""Tokens per parameter of the target when the check has no compute-optimal plan for it."""


@dataclass
class TaskAnalysis:
    """The ``tasks`` section of fit.json, the criteria for the check, the fit-run metrics."""

    docs: dict[str, dict] = field(default_factory=dict)
    criteria: list[Criterion] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def analyze_tasks(
    points: Sequence[MemberPoint],
    target: tuple[float, float | None],
    *,
    axis: ComputeAxis,
    n_boot: int,
    level: float,
    seed: int,
    huber_delta: float | str,
    histories: Mapping[str, History] | None = None,
    skip_fraction: float = DEFAULT_SKIP_FRACTION,
) -> TaskAnalysis:
    """Fit every declared task and predict its accuracy at ``target`` = (N, D or None).

    ``histories`` (run id -> metric histories, :mod:`..tracking.task_checkpoints`) make the
    task metrics logged at several steps step 2's checkpoints, past ``skip_fraction`` of each
    run's steps; without them, or where every run logged a task once, step 2 is on final points.

    ``axis`` is the family's compute axis: members without logged FLOPs and the target are
    placed on it, as in the rest of the analysis.
    Without D the target sees :data:`DEFAULT_TOKENS_PER_PARAM` tokens per parameter (said in
    each prediction). Problems with one task (a missing chance level, too few runs) are
    written to that task's entry; they never stop the others or the refit.
    """
    out = TaskAnalysis()
    specs = declared_tasks(points)
    if not specs:
        return out
    target_n, target_d = target
    tokens_note = "the check's plan"
    if target_d is None:
        target_d = DEFAULT_TOKENS_PER_PARAM * target_n
        tokens_note = f"{DEFAULT_TOKENS_PER_PARAM:g} tokens per parameter"
    for name, spec in specs.items():
        tp = task_points(points, spec, axis.flops)
        doc = _task_entry(spec, tp)
        out.docs[name] = doc
        if spec.problem or spec.chance is None:
            doc["error"] = spec.problem or "no chance level"
            continue
        _fit_one(out, name, spec, tp, points, doc, (target_n, target_d), tokens_note,
                 dict(axis=axis, n_boot=n_boot, level=level, seed=seed, huber_delta=huber_delta,
                      histories=histories or {}, skip_fraction=skip_fraction))  # fmt: skip
    gating = [n for n, s in specs.items() if s.gating]
    out.criteria = task_criteria(out.docs, gating)
    return out


def _fit_one(out: TaskAnalysis, name, spec, tp, points, doc: dict, target, tokens_note: str,
             opts: dict) -> None:  # fmt: skip
    """Fit task ``name`` (both steps, on checkpoints where its runs logged several) into its
    entry ``doc``, its phase tag and metrics; a ValueError is written to the entry."""
    axis, skip_fraction = opts["axis"], opts["skip_fraction"]
    examples = np.asarray(tp.n_examples, dtype=float)
    try:
        ck = task_checkpoints(points, spec, tp, opts["histories"], skip_fraction)
        fit = fit_task(
            name, tp.n, tp.d, tp.c, tp.accuracy, tp.loss, spec.chance,
            n_examples=examples if np.isfinite(examples).all() else None,
            groups=tp.run_ids, targets=[target], flops_of=axis.flops,
            loss_source=" and ".join(sorted(tp.loss_sources)), n_boot=opts["n_boot"],
            level=opts["level"], seed=opts["seed"], huber_delta=opts["huber_delta"],
            checkpoints=ck,
        )  # fmt: skip
    except ValueError as exc:
        doc["error"] = str(exc)
        out.tags[schema.task_phase_tag(name)] = schema.PHASE_INSUFFICIENT_DATA  # no stale tag
        return
    doc.update(fit.to_dict())
    doc["excluded"], doc["gating"] = tp.excluded, spec.gating
    doc["checkpoints"] = None if ck is None else {
        "rows": int(ck.run.size), "runs": int(np.unique(ck.run).size),
        "skip_fraction": skip_fraction,
    }  # fmt: skip
    if doc["prediction"] is not None:
        doc["prediction"]["tokens"] = tokens_note
    out.tags[schema.task_phase_tag(name)] = doc["phase"]
    out.metrics.update(_task_metrics(name, doc))


def _task_entry(spec, tp) -> dict:
    """A task's entry before (or without) its fit: what was declared and the points read."""
    return {
        "declared": spec.to_dict(),
        "gating": spec.gating,
        "excluded": tp.excluded,
        "points": tp.rows(),
        "phase": schema.PHASE_INSUFFICIENT_DATA,
        "segments": [],
        "steps": None,
        "one_step": None,
        "prediction": None,
        "largest_size_backtest": None,
    }


def unfitted_tasks(points: Sequence[MemberPoint], reason: str) -> dict[str, dict]:
    """The ``tasks`` section of a family too small to fit: each declared task, and why."""
    return {
        name: {"declared": spec.to_dict(), "gating": spec.gating,
               "phase": schema.PHASE_INSUFFICIENT_DATA, "prediction": None,
               "largest_size_backtest": None, "excluded": [], "points": [], "error": reason}
        for name, spec in declared_tasks(points).items()
    }  # fmt: skip


def _task_metrics(name: str, doc: dict) -> dict[str, float]:
    values: dict[str, float | None] = {}
    pred = doc.get("prediction") or {}
    values["accuracy"] = pred.get("metric")
    values["lo"], values["hi"] = pred.get("lo"), pred.get("hi")
    sig = (doc.get("steps") or {}).get("sigmoid") or {}
    for key in ("ceiling", "floor", "k", "L0"):  # schema.TASK_FIT_METRICS
        values[key] = sig.get(key)
    bt = doc.get("largest_size_backtest") or {}
    values["backtest_error"] = bt.get("error_two_step")
    return {
        schema.task_fit_metric(name, k): float(v)
        for k, v in values.items()
        if v is not None and math.isfinite(v)
    }
