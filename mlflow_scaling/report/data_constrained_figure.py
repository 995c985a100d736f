"""``scaling/data_constrained.png``: loss against epochs at fixed unique tokens, per size.

Drawn from ``fit.json`` alone: its ``members`` (those with ``unique_tokens``) and its
``data_constrained`` section. One panel per corpus size U (the :data:`MAX_PANELS` with the most
runs): the runs as points coloured by model size, the data-constrained law's curve
L(N, U·epochs, U) for each size (solid) and the fresh-data law's L(N, U·epochs) beside it
(dashed: every repeated token counted as new), with the epoch count after which one more epoch
is worth less than 10 % of fresh data. Matplotlib on the Agg backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from ..laws.chinchilla import ChinchillaLaw
from ..laws.data_constrained import DataConstrainedLaw
from ..laws.scatter import cluster_log_values, size_labels
from .figures import DPI, _plain, write_png

MAX_PANELS = 4
PANEL_WIDTH = 5.0
HEIGHT = 4.2
U_TOLERANCE_DECADES = 0.01
"""Unique-token counts within this many decades are one corpus (one panel)."""


def _runs(doc: dict[str, Any]) -> dict[str, np.ndarray] | None:
    rows = [m for m in doc.get("members") or [] if m.get("unique_tokens") is not None]
    if not rows:
        return None
    n, d, u, loss = (np.array([m[k] for m in rows], float) for k in ("N", "D", "unique_tokens",
                                                                      "loss"))  # fmt: skip
    return {"n": n, "d": d, "u": np.minimum(u, d), "loss": loss}


def _panel(ax, runs, corpus: np.ndarray, laws, worth: float | None, cmap, norm) -> None:
    dc, fresh = laws
    u = float(np.median(runs["u"][corpus]))
    epochs = runs["d"][corpus] / runs["u"][corpus]
    grid = np.geomspace(min(1.0, epochs.min()), max(epochs.max(), 2.0) * 1.5, 80)
    labels = size_labels(runs["n"][corpus])
    for label in np.unique(labels):
        size = corpus[labels == label]
        n = float(np.median(runs["n"][size]))
        colour = cmap(norm(n))
        ax.scatter(runs["d"][size] / runs["u"][size], runs["loss"][size], color=colour, s=24,
                   zorder=3, label=f"N = {n:.3g}")  # fmt: skip
        d = u * grid
        if dc is not None:
            ax.plot(grid, dc.predict(n, d, np.minimum(u, d)), color=colour, lw=1.5)
        ax.plot(grid, fresh.predict(n, d), color=colour, lw=1.0, ls="--", alpha=0.8)
    if worth is not None and grid[0] <= worth <= grid[-1]:
        ax.axvline(worth, color="0.5", lw=0.9, ls=":", label=f"10 % worth: {worth:.3g} epochs")
    ax.set_xscale("log")
    ax.set_xlabel("epochs (D / U)")
    ax.set_ylabel("loss")
    ax.set_title(_plain(f"U = {u:.3g} unique tokens (solid: data-constrained, dashed: fresh)"),
                 fontsize=9)  # fmt: skip
    ax.legend(fontsize=7, loc="upper right")


def data_constrained_figure(doc: dict[str, Any]):
    """The figure of the document's ``data_constrained`` section, or None when it has none."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    section = doc.get("data_constrained") or {}
    runs = _runs(doc)
    if not section.get("fresh_law") or runs is None:
        return None
    fresh = ChinchillaLaw(**section["fresh_law"])
    dc = DataConstrainedLaw(**section["params"]) if section.get("identified") else None
    corpora = cluster_log_values(runs["u"], U_TOLERANCE_DECADES)
    ranked = sorted(np.unique(corpora), key=lambda c: -int(np.sum(corpora == c)))[:MAX_PANELS]
    ranked = sorted(ranked, key=lambda c: float(np.median(runs["u"][corpora == c])))
    fig = Figure(figsize=(PANEL_WIDTH * len(ranked), HEIGHT), dpi=DPI)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.84, wspace=0.28)
    axes = np.atleast_1d(fig.subplots(1, len(ranked)))
    norm = LogNorm(vmin=runs["n"].min(), vmax=max(runs["n"].max(), runs["n"].min() * 10))
    cmap = matplotlib.colormaps["viridis"]
    for ax, corpus in zip(axes, ranked, strict=True):
        _panel(ax, runs, np.flatnonzero(corpora == corpus), (dc, fresh),
               section.get("epochs_worth_tenth"), cmap, norm)  # fmt: skip
    fig.suptitle(_plain(f"family {doc.get('family', '')}: loss against epochs of repeated data"),
                 fontsize=11)  # fmt: skip
    return fig


def write_data_constrained_png(folder: Path, doc: dict[str, Any]) -> bool:
    """Write ``data_constrained.png`` into ``folder`` when the document has the section."""
    return write_png(folder, "data_constrained.png", data_constrained_figure(doc))
