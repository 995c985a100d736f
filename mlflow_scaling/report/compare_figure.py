"""The comparison figure, ``scaling/compare.png``, drawn from the comparison document.

Left: both families' runs, their measured frontiers (the lowest loss reached at each budget, the
basis of the trained-range verdict) and the laws' compute-optimal frontiers L*(C) with their
bootstrap bands on one loss-vs-compute plot (log-log). Right: the compute multiplier against
compute with its band, the line m = 1 and the crossover when there is one. Past the trained
range (the budgets both families reached) both panels are extrapolation (shaded).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .figures import DPI, _plain, _plain_loss_ticks, png_bytes

FIGSIZE = (12.0, 4.8)
COLOURS = {"baseline": "tab:blue", "candidate": "tab:orange"}


def _shade_extrapolation(ax, doc: dict[str, Any]) -> None:
    """Shade the budgets past the trained range (both families' runs), where the laws speak."""
    trained = doc.get("trained_range")
    if trained:
        top = trained[1]
    else:
        top = min(max(doc[role].get("flops_range") or [0.0]) for role in ("baseline", "candidate"))
    right = ax.get_xlim()[1]
    if top and right > top:
        ax.axvspan(top, right, color="0.9", zorder=0, lw=0, label="past the trained range")
        ax.set_xlim(right=right)


def _log_log_panel(ax, ylabel: str, title: str) -> None:
    """Both panels: log axes, compute along x."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)


def _level_percent(doc: dict[str, Any]) -> int:
    return int(round(100 * doc.get("level", 0.95)))


def _loss_panel(ax, doc: dict[str, Any]) -> None:
    curves = doc.get("curves") or {}
    _log_log_panel(ax, "loss (log scale)", "compute-optimal frontiers L*(C)")
    level = _level_percent(doc)
    for role in ("baseline", "candidate"):
        info, colour = doc[role], COLOURS[role]
        points = info.get("points") or {}
        if points.get("flops"):
            ax.scatter(points["flops"], points["loss"], s=12, color=colour, alpha=0.5,
                       edgecolors="none", zorder=3)  # fmt: skip
        measured = info.get("measured_frontier") or {}
        if measured.get("flops"):
            ax.plot(measured["flops"], measured["loss"], color=colour, lw=1, ls="--", marker="D",
                    ms=4, zorder=5, label=f"{role}: measured frontier")  # fmt: skip
        if curves.get("flops"):
            ax.plot(curves["flops"], curves[f"loss_{role}"], color=colour, lw=2, zorder=4,
                    label=_plain(f"{role}: {info['family']}"))  # fmt: skip
            ax.fill_between(curves["flops"], curves[f"loss_{role}_lo"],
                            curves[f"loss_{role}_hi"], color=colour, alpha=0.2, lw=0,
                            label=f"{level}% band" if role == "baseline" else None)  # fmt: skip
    _shade_extrapolation(ax, doc)
    _plain_loss_ticks(ax)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(True, which="major", alpha=0.3)


def _multiplier_panel(ax, doc: dict[str, Any]) -> None:
    curves = doc.get("curves") or {}
    _log_log_panel(ax, "compute multiplier m(C)",
                   "compute the baseline needs for the candidate's loss, ÷ C")  # fmt: skip
    if curves.get("flops"):
        c = np.asarray(curves["flops"], float)
        ax.plot(c, curves["multiplier"], color="black", lw=2, label="multiplier")
        ax.fill_between(c, curves["lo"], curves["hi"], color="0.5", alpha=0.3, lw=0,
                        label=f"{_level_percent(doc)}% band")  # fmt: skip
    rows = doc.get("budgets") or []
    if rows:
        m = np.array([r["multiplier"] for r in rows])
        bounds = np.array([[r["lo"] for r in rows], [r["hi"] for r in rows]])
        ax.errorbar([r["flops"] for r in rows], m, yerr=np.abs(bounds - m), fmt="o",
                    color="black", ms=3, lw=0.8, capsize=2, label="budgets")  # fmt: skip
    ax.axhline(1.0, color="tab:red", lw=1, ls="--", label="m = 1 (no difference)")
    if doc.get("crossover_flops"):
        ax.axvline(doc["crossover_flops"], color="tab:purple", lw=1, ls=":",
                   label=f"crossover {doc['crossover_flops']:.3g} FLOPs")  # fmt: skip
    _shade_extrapolation(ax, doc)
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, which="both", alpha=0.3)


def compare_figure(doc: dict[str, Any]):
    """The two-panel figure of a comparison document (a matplotlib Figure, Agg canvas)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    fig.subplots_adjust(left=0.06, right=0.985, bottom=0.11, top=0.86, wspace=0.25)
    ax1, ax2 = fig.subplots(1, 2)
    _loss_panel(ax1, doc)
    _multiplier_panel(ax2, doc)
    title = (f"{doc['candidate']['family']} vs {doc['baseline']['family']}: "
             f"{doc['verdict']} over the trained range, "
             f"{doc.get('verdict_extrapolated', '-')} past it")  # fmt: skip
    fig.suptitle(_plain(title), fontsize=11)
    return fig


def compare_figure_png(doc: dict[str, Any]) -> bytes:
    """``compare_figure(doc)`` as PNG bytes."""
    return png_bytes(compare_figure(doc))
