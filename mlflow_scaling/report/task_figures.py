"""``scaling/tasks.png``: one row per downstream task, drawn from ``fit.json``'s ``tasks``.

Left: accuracy against training compute, the runs (coloured by size), the two-step chain along
the family's ladder, the one-step fit, the chance level, and the prediction at the target with
its interval. Right: task loss → accuracy, the runs and the fitted sigmoid, with the target's
predicted task loss. Matplotlib on the Agg backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from .figures import DPI, _plain, write_png

ROW_HEIGHT = 4.0
WIDTH = 12.0
MAX_TASKS = 12


def _fitted(doc: dict[str, Any]) -> dict[str, dict]:
    tasks = doc.get("tasks") or {}
    return {k: v for k, v in sorted(tasks.items()) if v.get("points")}


def _row(ax_c, ax_l, name: str, task: dict, cmap, norm) -> None:
    pts = task["points"]
    n = np.array([p["N"] for p in pts], float)
    c = np.array([p["C"] for p in pts], float)
    acc = np.array([p["accuracy"] for p in pts], float)
    loss = np.array([p["task_loss"] for p in pts], float)
    chance = (task.get("declared") or {}).get("chance")
    curve = task.get("curve") or {}
    pred = task.get("prediction")
    gating = " (gating)" if task.get("gating") else ""
    ax_c.set_xscale("log")
    ax_c.scatter(c, acc, c=n, cmap=cmap, norm=norm, s=22, zorder=3, label="runs")
    if curve.get("C"):
        ax_c.plot(curve["C"], curve["accuracy"], color="C3", lw=1.6, label="two-step chain")
        ax_c.plot(curve["C"], curve["one_step"], color="0.45", lw=1.2, ls="--", label="one-step")
    if chance is not None:
        ax_c.axhline(chance, color="0.6", lw=0.8, ls=":", label=f"chance {chance:g}")
    if pred is not None:
        lo, hi = pred.get("lo"), pred.get("hi")
        yerr = None
        if lo is not None and hi is not None:
            yerr = [[max(pred["metric"] - lo, 0)], [max(hi - pred["metric"], 0)]]
        ax_c.errorbar([pred["C"]], [pred["metric"]], yerr=yerr, fmt="*", ms=11, color="C3",
                      capsize=4, zorder=4, label="target")  # fmt: skip
    ax_c.set_xlabel("training compute C (FLOPs)")
    ax_c.set_ylabel("accuracy")
    ax_c.set_title(_plain(f"{name}{gating}: phase {task.get('phase')}"), fontsize=10)
    ax_c.legend(fontsize=7, loc="upper left")

    ax_l.scatter(loss, acc, c=n, cmap=cmap, norm=norm, s=22, zorder=3)
    if curve.get("sigmoid_loss"):
        ax_l.plot(curve["sigmoid_loss"], curve["sigmoid_accuracy"], color="C3", lw=1.6,
                  label="sigmoid")  # fmt: skip
    if chance is not None:
        ax_l.axhline(chance, color="0.6", lw=0.8, ls=":")
    if pred is not None:
        ax_l.plot([pred["task_loss"]], [pred["metric"]], "*", ms=11, color="C3", label="target")
    source = ((task.get("steps") or {}).get("loss_fit") or {}).get("loss_source", "task loss")
    ax_l.set_xlabel(_plain(source))
    ax_l.set_ylabel("accuracy")
    ax_l.invert_xaxis()  # lower loss to the right, as more compute
    ax_l.set_title("task loss → accuracy", fontsize=10)
    if task.get("error"):
        ax_l.text(0.02, 0.02, _plain(task["error"])[:90], transform=ax_l.transAxes, fontsize=7)


def tasks_figure(doc: dict[str, Any]):
    """The figure of the fit document's tasks, or None when no task has points."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    tasks = list(_fitted(doc).items())[:MAX_TASKS]
    if not tasks:
        return None
    fig = Figure(figsize=(WIDTH, ROW_HEIGHT * len(tasks)), dpi=DPI)
    height = ROW_HEIGHT * len(tasks)  # margins in inches, whatever the number of rows
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.5 / height, top=1 - 0.6 / height,
                        hspace=0.45, wspace=0.25)  # fmt: skip
    axes = np.atleast_2d(fig.subplots(len(tasks), 2))
    ns = [p["N"] for _, t in tasks for p in t["points"]]
    norm = LogNorm(vmin=min(ns), vmax=max(ns) if max(ns) > min(ns) else min(ns) * 10)
    cmap = matplotlib.colormaps["viridis"]
    for (name, task), (ax_c, ax_l) in zip(tasks, axes, strict=True):
        _row(ax_c, ax_l, name, task, cmap, norm)
    fig.suptitle(_plain(f"family {doc.get('family', '')}: downstream tasks"), fontsize=11)
    return fig


def write_tasks_png(folder: Path, doc: dict[str, Any]) -> bool:
    """Write ``tasks.png`` into ``folder`` when the document has tasks with points."""
    return write_png(folder, "tasks.png", tasks_figure(doc))
