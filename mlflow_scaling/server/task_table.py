"""The family page's downstream-task section, rendered from ``fit.json``'s ``tasks``.

One row per declared task: its phase, the predicted accuracy at the check's target with the
interval, the largest-size backtest, and the runs used and excluded for that task.
"""

from __future__ import annotations

from typing import Any

from ..formatting import MISSING, fmt_or_missing
from ..rendering import render
from ..tracking import schema


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
                "accuracy": fmt_or_missing(pred.get("metric"), ".3f"),
                "lo": fmt_or_missing(pred.get("lo"), ".3f"),
                "hi": fmt_or_missing(pred.get("hi"), ".3f"),
                "N": fmt_or_missing(pred.get("N"), ".3g"),
                "D": fmt_or_missing(pred.get("D"), ".3g"),
                "chance": fmt_or_missing(declared.get("chance"), "g"),
                "backtest_measured": fmt_or_missing(bt.get("measured"), ".3f"),
                "backtest_predicted": fmt_or_missing(bt.get("predicted"), ".3f"),
                "backtest_outside": bt.get("measured_outside_interval") is True,
                "used": fmt_or_missing(task.get("n_points"), "d"),
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
