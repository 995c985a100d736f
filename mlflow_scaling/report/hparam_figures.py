"""``scaling/hparams.png``: a family's learning-rate/batch sweep, drawn from ``fit.json``'s
``hparams`` section.

One panel per cell (equal N, D): with both axes swept, the runs on (η, B) coloured by their loss
over the cell's optimum (a heat map on the grid), the fitted optimum (star) and the 0.25 % band
on each axis (dashed box); with η alone, loss against η with the optimum and its band. Edge
cells say so in their title (their optimum is a bound). Last row: η_opt and B_opt against compute
C = 6ND: the cells' optima with their intervals (hollow triangles: edge cells, pointing where the
optimum lies), the chosen law along a path from the smallest cell to the target, and the target
with its interval. Matplotlib on the Agg backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

from ..laws.hparam_laws import law_dict_value
from .figures import DPI, _plain, write_png

COLS = 4
MAX_TICKS = 4
"""Tick labels per heat-map axis at most (on the grid's own values)."""
MAX_CELLS = 16
PANEL = 3.2
FLOPS_PER_PARAM_TOKEN = 6.0
AXES = {
    "lr": ("lr_opt", "lr_lo", "lr_hi", "lr_status", "peak learning rate η"),
    "batch": ("batch_opt", "batch_lo", "batch_hi", "batch_status", "batch B (tokens)"),
}


def _title(cell: dict) -> str:
    edges = [f"{k} {cell[AXES[k][3]].replace('_', ' ')}" for k in AXES
             if cell.get(AXES[k][3]) not in (None, "fitted")]  # fmt: skip
    head = f"N={cell['N']:.3g}, D={cell['D']:.3g}"
    return head + ("\n" + ", ".join(edges) if edges else "")


def _heat_cell(ax, cell: dict, runs: list[dict], norm, cmap) -> None:
    lr = np.array([r["lr"] for r in runs], float)
    b = np.array([r["batch_tokens"] for r in runs], float)
    rel = 100 * (np.array([r["loss"] for r in runs], float) / cell["loss_opt"] - 1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.scatter(lr, b, c=rel, cmap=cmap, norm=norm, marker="s", s=160, zorder=2)
    if cell.get("batch_opt") is not None:
        ax.plot([cell["lr_opt"]], [cell["batch_opt"]], "*", color="C3", ms=13, zorder=4,
                markeredgecolor="white", label="optimum")  # fmt: skip
    band = cell.get("band_025") or {}
    if band.get("lr") and band.get("batch"):
        (x0, x1), (y0, y1) = band["lr"], band["batch"]
        ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="C3", ls="--", lw=1,
                label="0.25 % band")  # fmt: skip
    ax.set_xlabel("η", fontsize=8)
    ax.set_ylabel("B (tokens)", fontsize=8)


def _curve_cell(ax, cell: dict, runs: list[dict]) -> None:
    order = np.argsort([r["lr"] for r in runs])
    lr = np.array([runs[i]["lr"] for i in order], float)
    loss = np.array([runs[i]["loss"] for i in order], float)
    ax.set_xscale("log")
    ax.plot(lr, loss, "o-", color="0.35", ms=4, lw=1)
    ax.plot([cell["lr_opt"]], [cell["loss_opt"]], "*", color="C3", ms=13, label="optimum")
    band = (cell.get("band_025") or {}).get("lr")
    if band:
        ax.axvspan(band[0], band[1], color="C3", alpha=0.12, label="0.25 % band")
    ax.set_xlabel("η", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)


def _law_panel(ax, h: dict, key: str) -> None:
    opt, lo_key, hi_key, status_key, label = AXES[key]
    ax.set_xscale("log")
    ax.set_yscale("log")
    for cell in h.get("cells") or []:
        value, status = cell.get(opt), cell.get(status_key)
        if value is None or status in (None, "too_few", "not_convex"):
            continue
        c = FLOPS_PER_PARAM_TOKEN * cell["N"] * cell["D"]
        if status == "fitted":
            lo, hi = cell.get(lo_key) or value, cell.get(hi_key) or value
            ax.errorbar([c], [value], yerr=[[value - lo], [hi - value]], fmt="o", color="C0",
                        ms=5, capsize=3)  # fmt: skip
        else:
            ax.plot([c], [value], "^" if status == "edge_high" else "v", mfc="none",
                    color="C0", ms=7)  # fmt: skip
    target = h.get("target") or {}
    law = (h.get("laws") or {}).get(key)
    cells = h.get("cells") or []
    if law and cells and target.get("N"):
        start = min(cells, key=lambda c: c["N"] * c["D"])
        n = np.geomspace(start["N"], target["N"], 60)
        d = np.geomspace(start["D"], target["D"], 60)
        ax.plot(FLOPS_PER_PARAM_TOKEN * n * d, law_dict_value(law, n, d), color="C3", lw=1.5,
                label=_plain(f"{law['form']} law"))  # fmt: skip
    pred = (h.get("predictions") or [{}])[0]
    value = pred.get("lr" if key == "lr" else "batch_tokens")
    if value is not None:
        lo, hi = pred.get(f"{key}_lo") or value, pred.get(f"{key}_hi") or value
        ax.errorbar([FLOPS_PER_PARAM_TOKEN * pred["N"] * pred["D"]], [value],
                    yerr=[[value - lo], [hi - value]], fmt="*", ms=13, color="C3", capsize=4,
                    label="target")  # fmt: skip
    ax.set_xlabel("compute C = 6ND (FLOPs)", fontsize=8)
    ax.set_ylabel(label, fontsize=8)
    ax.set_title(f"optimal {label} against compute", fontsize=9)
    if ax.get_legend_handles_labels()[0]:  # no law and no prediction: nothing to name
        ax.legend(fontsize=7, loc="best")


def _spread(values, view: tuple[float, float]) -> list[float]:
    """The grid's values, thinned to ticks at least 1/MAX_TICKS of the axis' shown log-range
    ``view`` apart (rates a factor √2 apart on a panel this small have overlapping labels)."""
    values = sorted(values)
    gap = abs(np.log10(view[1] / view[0])) / MAX_TICKS
    kept = [values[0]]
    for v in values[1:]:
        if np.log10(v / kept[-1]) >= gap * (1 - 1e-9):
            kept.append(v)
    return kept


def hparams_figure(doc: dict[str, Any]):
    """The figure of the document's ``hparams`` section, or None when it has no cells."""
    h = doc.get("hparams")
    if not isinstance(h, dict) or not h.get("cells"):
        return None
    cells = h["cells"][:MAX_CELLS]
    two = "batch" in (h.get("axes") or [])
    rows = -(-len(cells) // COLS) + 1
    fig = Figure(figsize=(PANEL * COLS, PANEL * rows), dpi=DPI)
    fig.subplots_adjust(left=0.075, right=0.97, bottom=0.5 / (PANEL * rows),
                        top=1 - 0.7 / (PANEL * rows), hspace=0.6, wspace=0.35)  # fmt: skip
    grid = fig.add_gridspec(rows, COLS)
    runs = h.get("runs") or []
    cmap, norm = matplotlib.colormaps["viridis_r"], Normalize(vmin=0.0, vmax=3.0)
    for i, cell in enumerate(cells):
        ax = fig.add_subplot(grid[i // COLS, i % COLS])
        mine = [r for r in runs if r.get("cell") == h["cells"].index(cell)]
        if two and cell.get("batch_grid"):
            _heat_cell(ax, cell, mine, norm, cmap)
        else:
            _curve_cell(ax, cell, mine)
        ax.set_title(_plain(_title(cell)), fontsize=8)
        ax.tick_params(labelsize=7)
        grids = [(ax.xaxis, cell.get("lr_grid"))]
        grids += [(ax.yaxis, cell.get("batch_grid"))] if two and cell.get("batch_grid") else []
        for axis, values in grids:  # ticks on the grid's values: a cell spans under a decade
            if values:
                axis.set_major_locator(FixedLocator(_spread(values, axis.get_view_interval())))
                axis.set_major_formatter(FormatStrFormatter("%.2g"))
                axis.set_minor_locator(NullLocator())
    _law_panel(fig.add_subplot(grid[rows - 1, 0:2]), h, "lr")
    if two:
        _law_panel(fig.add_subplot(grid[rows - 1, 2:4]), h, "batch")
    if two:
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap),
                           ax=fig.axes[: len(cells)], shrink=0.6, pad=0.02)  # fmt: skip
        bar.set_label("loss over the cell's optimum (%)", fontsize=8)
    what = "learning rate and batch" if two else "learning rate"
    fig.suptitle(_plain(f"family {doc.get('family', '')}: {what} ({len(h['cells'])} cells)"),
                 fontsize=11)  # fmt: skip
    return fig


def write_hparams_png(folder: Path, doc: dict[str, Any]) -> bool:
    """Write ``hparams.png`` into ``folder`` when the document has an ``hparams`` section."""
    return write_png(folder, "hparams.png", hparams_figure(doc))
