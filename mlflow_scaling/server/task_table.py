"""The family page's downstream-task section, rendered from ``fit.json``'s ``tasks``.

One row per declared task: its phase, the predicted accuracy at the check's target with the
interval, the largest-size backtest, and the runs used and excluded for that task.
"""

from __future__ import annotations

from typing import Any

from ..rendering import render
from ..tracking import schema

MISSING = "—"


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else MISSING


def task_rows(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Preformatted rows for ``_tasks.html`` (empty when the fit declares no tasks)."""
    tasks = (doc or {}).get("tasks")
    if not isinstance(tasks, dict):
        return []
    rows = []
    for name, task in sorted(tasks.items()):
        if not isinstance(task, dict):
            continue
        pred = task.get("prediction") if isinstance(task.get("prediction"), dict) else {}
        bt = task.get("largest_size_backtest")
        bt = bt if isinstance(bt, dict) else {}
        declared = task.get("declared") if isinstance(task.get("declared"), dict) else {}
        excluded = [e for e in task.get("excluded") or [] if isinstance(e, dict)]
        rows.append(
            {
                "name": str(name),
                "gating": bool(task.get("gating")),
                "phase": str(task.get("phase") or MISSING),
                "accuracy": _num(pred.get("metric"), ".3f"),
                "lo": _num(pred.get("lo"), ".3f"),
                "hi": _num(pred.get("hi"), ".3f"),
                "N": _num(pred.get("N"), ".3g"),
                "D": _num(pred.get("D"), ".3g"),
                "chance": _num(declared.get("chance"), "g"),
                "backtest_measured": _num(bt.get("measured"), ".3f"),
                "backtest_predicted": _num(bt.get("predicted"), ".3f"),
                "backtest_outside": bt.get("measured_outside_interval") is True,
                "used": _num(task.get("n_points"), "d"),
                "excluded": str(len(excluded)),
                "excluded_runs": excluded,
                "error": str(task.get("error") or ""),
            }
        )
    return rows


def tasks_section(detail: Any, links: Any) -> str:
    """The section's HTML for a family page ('' when there are no tasks)."""
    rows = task_rows(detail.doc)
    if not rows:
        return ""
    figure = detail.published_url(links, schema.ARTIFACT_TASKS_PNG)
    return render("_tasks.html", rows=rows, figure=figure)
