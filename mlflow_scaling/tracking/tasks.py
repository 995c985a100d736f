"""Downstream tasks declared on a family's runs, and each task's points.

A member run may log any number of task metrics. Tasks are declared with tags on the runs
(any run of the family declares for all; see :mod:`schema`):

* ``scaling.tasks = hellaswag,arc_easy`` and ``scaling.gating_tasks = arc_easy``;
* per task T: ``scaling.task.T.metric`` (accuracy metric; default the name T),
  ``scaling.task.T.loss_metric`` (optional task loss), ``scaling.task.T.chance`` (required)
  and ``scaling.task.T.n_examples`` (optional, for the cold-start test).

A field set on a run applies to that run; a run without it takes the value most runs of the
family give. Runs must agree on the chance level. A run that lacks a task's metric (or has an
accuracy outside [0, 1], or a task loss that is not positive) is excluded *for that task only*,
with its reason.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import schema
from .reading import C_FROM_METRIC, MemberPoint


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _family_value(points: Sequence[MemberPoint], key: str) -> tuple[str | None, Counter]:
    """The value most runs give for tag ``key`` (ties: the smallest), and all values seen."""
    seen = Counter(p.task_tags[key].strip() for p in points if p.task_tags.get(key, "").strip())
    if not seen:
        return None, seen
    top = max(seen.values())
    return min(v for v, k in seen.items() if k == top), seen


@dataclass(frozen=True)
class TaskSpec:
    """One declared task, as the family declares it (runs may override metric names)."""

    name: str
    metric: str
    loss_metric: str | None
    chance: float | None
    n_examples: int | None
    gating: bool
    problem: str = ""

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "loss_metric": self.loss_metric,
            "chance": self.chance,
            "n_examples": self.n_examples,
            "gating": self.gating,
        }


@dataclass
class TaskPoints:
    """The runs usable for one task, and those excluded for it."""

    run_ids: list[str] = field(default_factory=list)
    n: list[float] = field(default_factory=list)
    d: list[float] = field(default_factory=list)
    c: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    n_examples: list[float] = field(default_factory=list)
    loss_sources: set[str] = field(default_factory=set)
    excluded: list[dict] = field(default_factory=list)

    def rows(self) -> list[dict]:
        return [
            {"run_id": r, "N": n, "D": d, "C": c, "accuracy": a, "task_loss": tl}
            for r, n, d, c, a, tl in zip(
                self.run_ids, self.n, self.d, self.c, self.accuracy, self.loss, strict=True
            )
        ]


def _positive_int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return -1
    return int(value) if math.isfinite(value) and value >= 1 and value == int(value) else -1


def declared_tasks(points: Sequence[MemberPoint]) -> dict[str, TaskSpec]:
    """Every task named by ``scaling.tasks`` or ``scaling.gating_tasks`` on any member, in
    name order. A task that cannot be fitted carries its ``problem``."""
    tasks: set[str] = set()
    gating: set[str] = set()
    for p in points:
        tasks.update(_names(p.task_tags.get(schema.TAG_TASKS, "")))
        gating.update(_names(p.task_tags.get(schema.TAG_GATING_TASKS, "")))
    out = {}
    for name in sorted(tasks | gating):
        problems = []
        if name not in tasks:
            problems.append(f"named in {schema.TAG_GATING_TASKS} but not in {schema.TAG_TASKS}")
        if not name or any(ch not in schema.TASK_NAME_CHARS for ch in name):
            problems.append("a task name may hold only letters, digits, '_' and '-'")
        metric, _ = _family_value(points, schema.task_tag(name, "metric"))
        loss_metric, _ = _family_value(points, schema.task_tag(name, "loss_metric"))
        chance_text, chances = _family_value(points, schema.task_tag(name, "chance"))
        chance = None
        if chance_text is None:
            problems.append(f"no tag {schema.task_tag(name, 'chance')} on any run")
        elif len(chances) > 1:
            problems.append(
                f"runs disagree on {schema.task_tag(name, 'chance')}: "
                + ", ".join(f"{v!r} ({k} runs)" for v, k in sorted(chances.items()))
            )
        else:
            try:
                chance = float(chance_text)
            except ValueError:
                chance = float("nan")
            if not (0 <= chance < 1):
                problems.append(
                    f"tag {schema.task_tag(name, 'chance')} = {chance_text!r} is not in [0, 1)"
                )
                chance = None
        n_ex_text, _ = _family_value(points, schema.task_tag(name, "n_examples"))
        n_ex = _positive_int(n_ex_text)
        out[name] = TaskSpec(
            name=name,
            metric=metric or name,
            loss_metric=loss_metric,
            chance=chance,
            n_examples=n_ex if n_ex and n_ex > 0 else None,
            gating=name in gating,
            problem="; ".join(problems),
        )
    return out


def task_points(
    points: Sequence[MemberPoint],
    spec: TaskSpec,
    flops_of: Callable[[float, float], float] | None = None,
) -> TaskPoints:
    """The runs' (N, D, C, accuracy, step-1 loss) for one task; the others excluded.

    C is the run's logged FLOPs; for a run without them, ``flops_of(N, D)`` (the family's
    compute axis) when given, else its 6·N·D."""
    out = TaskPoints()
    for p in points:
        tags = p.task_tags
        metric = tags.get(schema.task_tag(spec.name, "metric"), "").strip() or spec.metric
        loss_metric = (
            tags.get(schema.task_tag(spec.name, "loss_metric"), "").strip() or spec.loss_metric
        )
        n_ex_key = schema.task_tag(spec.name, "n_examples")
        n_ex = _positive_int(tags[n_ex_key]) if tags.get(n_ex_key, "").strip() else None
        if n_ex is None:
            n_ex = spec.n_examples
        reasons = []
        acc = p.metrics.get(metric)
        if acc is None:
            reasons.append(f"no metric {metric!r}")
        elif not (math.isfinite(acc) and 0 <= acc <= 1):
            reasons.append(f"{metric} = {acc!r} is not an accuracy in [0, 1]")
        loss, source = p.loss, f"training loss ({p.loss_metric})"
        if loss_metric:
            loss, source = p.metrics.get(loss_metric), f"task loss ({loss_metric})"
            if loss is None:
                reasons.append(f"no task-loss metric {loss_metric!r}")
            elif not (math.isfinite(loss) and loss > 0):
                reasons.append(f"{loss_metric} = {loss!r} (must be positive and finite)")
        if n_ex == -1:
            reasons.append(f"tag {n_ex_key} is not a positive integer")
        if reasons:
            out.excluded.append({"run_id": p.run_id, "run_name": p.run_name,
                                 "reason": "; ".join(reasons)})  # fmt: skip
            continue
        assert acc is not None and loss is not None
        out.run_ids.append(p.run_id)
        out.n.append(p.n)
        out.d.append(p.d)
        logged = p.c_source == C_FROM_METRIC or flops_of is None
        out.c.append(p.c if logged else float(flops_of(p.n, p.d)))
        out.accuracy.append(float(acc))
        out.loss.append(float(loss))
        out.n_examples.append(float(n_ex) if n_ex else math.nan)
        out.loss_sources.add(source)
    return out


def task_digest_items(points: Sequence[MemberPoint]) -> list:
    """What the refit's input digest must cover for the tasks: every run's declarations and
    the values of the metrics they name (empty when no run declares a task)."""
    specs = declared_tasks(points)
    if not specs:
        return []
    items = []
    for p in sorted(points, key=lambda q: q.run_id):
        names = set()
        for spec in specs.values():
            for key in ("metric", "loss_metric"):
                names.add(p.task_tags.get(schema.task_tag(spec.name, key), "").strip())
            names.update({spec.metric, spec.loss_metric or ""})
        values = {k: p.metrics[k] for k in sorted(names) if k and k in p.metrics}
        items.append([p.run_id, dict(sorted(p.task_tags.items())), values])
    return items
