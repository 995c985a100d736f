"""The refit figure, ``scaling/fit.png``, drawn from the fit document (``scaling/fit.json``).

Left: loss against training compute (log-log) with the member runs (coloured by size), the
fitted law along each size, the empirical frontier, the compute-optimal loss of the law and its
extrapolation with the bootstrap band; the training-curve envelope (Approach 1) when there is
one. Right: the isoFLOP profiles (Approach 2) when the runs form them, else the law's
compute-optimal size N_opt(C) with its band.

Matplotlib runs on the Agg backend; nothing here opens a window. A panel that cannot be
drawn from the document (a value missing or of the wrong kind) says so in its place and in the
``problems`` list; it never takes the other panel or the fit down with it.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..laws.chinchilla import ChinchillaLaw
from ..laws.compute_axis import ComputeAxis

FIGSIZE = (13.0, 5.2)
DPI = 110
MAX_SIZE_CURVES = 10

log = logging.getLogger(__name__)


def _exponent(value: object) -> str:
    """An exponent for a label: three decimals, or ``n/a`` when there is none."""
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def _plain(text: object) -> str:
    """Text safe for matplotlib: a ``$`` would otherwise start mathtext (and may not parse)."""
    return str(text).replace("$", r"\$")


def _plain_loss_ticks(ax) -> None:
    """Loss spans less than a decade: a few plain-number ticks (not 3×10⁰), no minor labels.

    Call after plotting (it reads the limits). Cheaper to draw than matplotlib's log minor
    ticks with labels.
    """
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator, NullLocator

    lo, hi = ax.get_ylim()
    ticks = MaxNLocator(nbins=7).tick_values(lo, hi)
    ticks = ticks[(ticks >= lo) & (ticks <= hi) & (ticks > 0)]
    if ticks.size >= 2:
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_locator(NullLocator())


def _frontier(c: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((loss, c))
    cs, ls = c[order], loss[order]
    best_before = np.concatenate([[np.inf], np.minimum.accumulate(ls)[:-1]])
    keep = ls < best_before
    return cs[keep], ls[keep]


def _size_levels(n: np.ndarray) -> np.ndarray:
    sizes = np.unique(n)
    if sizes.size <= MAX_SIZE_CURVES:
        return sizes
    q = np.quantile(np.log(sizes), np.linspace(0, 1, MAX_SIZE_CURVES))
    return np.unique(sizes[np.abs(np.log(sizes)[:, None] - q[None, :]).argmin(axis=0)])


def _loss_panel(ax, doc: dict[str, Any], cmap, norm) -> None:
    members = doc.get("members") or []
    loss_metric = _plain(doc.get("loss_metric") or "loss")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel(f"{loss_metric} (log scale)")
    ax.set_title("loss vs compute", fontsize=10)
    if not members:
        ax.text(0.5, 0.5, "no usable runs", ha="center", va="center", transform=ax.transAxes)
        return
    n = np.array([m["N"] for m in members], float)
    c = np.array([m["C"] for m in members], float)
    loss = np.array([m["loss"] for m in members], float)
    ax.scatter(
        c,
        loss,
        c=n,
        cmap=cmap,
        norm=norm,
        s=18,
        edgecolors="none",
        zorder=3,
        label=f"member runs ({len(members)}), colour = N",
    )
    fc, fl = _frontier(c, loss)
    ax.step(
        fc,
        fl,
        where="post",
        color="black",
        lw=1.0,
        alpha=0.7,
        zorder=4,
        label="empirical frontier (best loss so far)",
    )
    a3 = doc.get("approach3")
    if a3 and a3.get("params"):
        _law_at_sizes(ax, doc, a3, n, c, cmap, norm)
        _optimal_loss(ax, doc, a3, c)
    a1 = doc.get("approach1") or {}
    if a1.get("applicable"):
        ax.plot(
            a1["flops"],
            a1["loss"],
            color="tab:gray",
            lw=1.5,
            ls=":",
            label="training-curve envelope (Approach 1)",
        )
    _plain_loss_ticks(ax)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(True, which="major", alpha=0.3)


def _law_at_sizes(ax, doc: dict[str, Any], a3: dict, n, c, cmap, norm) -> None:
    """The fitted law along each trained size's compute, L(N, C/f(N))."""
    law = ChinchillaLaw(**a3["params"])
    axis = ComputeAxis.from_dict(doc.get("compute_axis"))
    for i, size in enumerate(_size_levels(n)):
        sel = n == size
        grid = np.geomspace(c[sel].min() / 2, c[sel].max() * 2, 60)
        ax.plot(
            grid,
            law.predict(size, axis.tokens(size, grid)),
            color=cmap(norm(size)),
            lw=0.8,
            alpha=0.8,
            label=f"fitted law at each size, L(N, C/f(N)), axis {axis.kind}" if i == 0 else None,
        )


def _optimal_loss(ax, doc: dict[str, Any], a3: dict, c) -> None:
    """L_opt(C) over the budgets: solid within the trained compute, dashed past it; its band."""
    rows = doc.get("budgets") or []
    if not rows:
        return
    bc = np.array([r["flops"] for r in rows])
    bl = np.array([r["loss"] for r in rows])
    inside = bc <= c.max()
    p = a3["params"]
    law_txt = (
        f"E={p['E']:.3g}, A={p['A']:.3g}, B={p['B']:.3g}, α={p['alpha']:.3f}, β={p['beta']:.3f}"
    )
    ax.plot(
        bc[inside],
        bl[inside],
        color="tab:red",
        lw=2.0,
        zorder=5,
        label=f"compute-optimal L_opt(C) ({law_txt})",
    )
    outside = bc >= c.max()
    if outside.any():
        start = max(int(np.flatnonzero(outside)[0]) - 1, 0)
        ax.plot(
            bc[start:],
            bl[start:],
            color="tab:red",
            lw=2.0,
            ls="--",
            zorder=5,
            label="extrapolation of L_opt(C)",
        )
    if rows[0].get("lo") is not None:
        lo = np.array([r["lo"] for r in rows])
        hi = np.array([r["hi"] for r in rows])
        level = int(round(100 * a3.get("ci_level", 0.95)))
        ax.fill_between(
            bc, lo, hi, color="tab:red", alpha=0.15, lw=0, label=f"{level}% bootstrap band"
        )


def _allocation_panel(ax, doc: dict[str, Any], cmap, norm) -> None:
    members = doc.get("members") or []
    a2 = doc.get("approach2") or {}
    ax.set_xscale("log")
    if a2.get("applicable") and members:
        _isoflop_profiles(ax, doc, members, a2)
    else:
        _optimal_size(ax, doc, members, a2, cmap, norm)
    ax.grid(True, which="major", alpha=0.3)


def _isoflop_profiles(ax, doc: dict[str, Any], members: list, a2: dict) -> None:
    """Approach 2: each budget's runs, its fitted parabola and its minimum (★)."""
    n = np.array([m["N"] for m in members], float)
    loss = np.array([m["loss"] for m in members], float)
    groups = np.asarray(a2.get("budget_group") or [], int)
    profiles = a2["profiles"]
    budget_cmap = matplotlib.colormaps["plasma"]
    exponent = _exponent(a2.get("a"))
    ax.set_title(
        f"isoFLOP profiles (Approach 2, {a2.get('method')}): N_opt ∝ C^{exponent}", fontsize=10
    )
    for i, prof in enumerate(profiles):
        colour = budget_cmap(0.1 + 0.8 * i / max(len(profiles) - 1, 1))
        sel = groups == prof.get("group", -1)
        ax.scatter(
            n[sel],
            loss[sel],
            color=colour,
            s=16,
            zorder=3,
            label=f"C ≈ {prof['flops']:.2g} FLOPs",
        )
        coef = prof.get("coefficients") or []
        if len(coef) == 3:
            grid = np.geomspace(prof["n_min"], prof["n_max"], 80)
            ax.plot(grid, np.polyval(coef, np.log(grid)), color=colour, lw=1.0)
        ax.scatter(
            [prof["n_opt"]],
            [prof["loss_opt"]],
            marker="*",
            s=90,
            color=colour,
            edgecolors="black",
            linewidths=0.5,
            zorder=4,
        )
    ax.set_xlabel("parameters N")
    ax.set_ylabel(_plain(doc.get("loss_metric") or "loss"))
    ax.legend(fontsize=7, loc="upper right", title="budget (★ = minimum)", title_fontsize=7)


def _optimal_size(ax, doc: dict[str, Any], members: list, a2: dict, cmap, norm) -> None:
    """Without isoFLOP groups: N_opt(C) of the fitted law over the runs, and why."""
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel("parameters N")
    reason = a2.get("reason") or "no fit"
    ax.set_title("compute-optimal size N_opt(C) (no isoFLOP groups)", fontsize=10)
    if members:
        ax.scatter(
            [m["C"] for m in members],
            [m["N"] for m in members],
            c=[m["N"] for m in members],
            cmap=cmap,
            norm=norm,
            s=14,
            label="member runs",
        )
    rows = doc.get("budgets") or []
    if rows:
        bc = [r["flops"] for r in rows]
        ax.plot(
            bc,
            [r["n_opt"] for r in rows],
            color="tab:red",
            lw=2.0,
            label="N_opt(C) of the fitted law (Approach 3)",
        )
        if rows[0].get("n_opt_lo") is not None:
            ax.fill_between(
                bc,
                [r["n_opt_lo"] for r in rows],
                [r["n_opt_hi"] for r in rows],
                color="tab:red",
                alpha=0.15,
                lw=0,
                label="bootstrap band",
            )
    a1 = doc.get("approach1") or {}
    if a1.get("applicable"):
        ax.plot(
            a1["flops"],
            a1["n_opt"],
            color="tab:gray",
            ls=":",
            label="envelope winner (Approach 1)",
        )
    ax.text(
        0.02,
        0.02,
        _plain(_wrap(reason, 70)),
        transform=ax.transAxes,
        fontsize=6.5,
        va="bottom",
        color="dimgray",
    )
    if members or rows:
        ax.legend(fontsize=7, loc="upper left")


def _wrap(text: str, width: int) -> str:
    words, lines, line = str(text).split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines[:6])


def _draw_panel(draw, ax, doc, cmap, norm, what: str, problems: list[str]) -> None:
    try:
        draw(ax, doc, cmap, norm)
    except Exception as exc:  # one panel failing is reported, not fatal
        message = f"{what} unavailable: {type(exc).__name__}: {exc}"
        log.warning("fit.png of family %r: %s", doc.get("family"), message)
        problems.append(message)
        ax.clear()
        ax.set_axis_off()
        ax.text(0.5, 0.5, _plain(_wrap(message, 60)), ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="dimgray")  # fmt: skip


def fit_figure(doc: dict[str, Any], problems: list[str] | None = None):
    """The two-panel figure of a fit document (a matplotlib Figure, Agg canvas).

    A panel that fails is replaced by a line saying why, also appended to ``problems``.
    """
    problems = [] if problems is None else problems
    # A fixed layout: constrained layout would cost about half of the drawing time.
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    fig.subplots_adjust(left=0.055, right=0.985, bottom=0.1, top=0.88, wspace=0.36)
    ax1, ax2 = fig.subplots(1, 2)
    members = doc.get("members") or []
    cmap = matplotlib.colormaps["viridis"]
    ns = [m["N"] for m in members] or [1.0, 10.0]
    lo, hi = min(ns), max(ns)
    norm = LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 10)
    _draw_panel(_loss_panel, ax1, doc, cmap, norm, "loss panel", problems)
    _draw_panel(_allocation_panel, ax2, doc, cmap, norm, "allocation panel", problems)
    if members:
        from matplotlib.cm import ScalarMappable

        fig.colorbar(
            ScalarMappable(norm=norm, cmap=cmap),
            ax=ax1,
            label="parameters N (colour)",
            fraction=0.04,
            pad=0.02,
        )
    status = doc.get("status", "")
    headline = f"family {doc.get('family', '')}: {status}"
    if doc.get("phase"):
        headline += f", phase {doc['phase']}, check {doc.get('check_verdict', '')}"
    if problems:
        headline += f" ({len(problems)} panel(s) unavailable)"
    fig.suptitle(_plain(headline), fontsize=11)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """A figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_png(folder: Path, name: str, fig: Figure | None) -> bool:
    """Write ``fig`` as ``folder/name``; False (nothing written) when there is no figure."""
    if fig is None:
        return False
    (Path(folder) / name).write_bytes(png_bytes(fig))
    return True


def fit_figure_png(doc: dict[str, Any], problems: list[str] | None = None) -> bytes:
    """``fit_figure(doc, problems)`` as PNG bytes."""
    return png_bytes(fit_figure(doc, problems))
