"""One cell of a hyperparameter sweep: the loss surface over (log η, log B) near its minimum.

A *cell* is a set of runs at equal model size N and tokens D (or equal compute C on an isoFLOP
grid) that differ only in the peak learning rate η and, where the sweep varies it, the global
batch B in tokens. Within a cell, with x = log η and y = log B, the loss near its minimum is

    L(x, y) = c0 + c1·x + c2·y + c3·x² + c4·y² + c5·x·y          (both axes varied)
    L(x)    = c0 + c1·x + c3·x²                                    (η only: no batch column)

fitted by least squares to the runs at the :data:`WINDOW` grid values nearest the best run on
each axis. With Hessian H (H = [[2c3, c5], [c5, 2c4]]) the optimum is the vertex
v = −H⁻¹·(c1, c2) and L* = L(v). Why a quadratic: Misfitting's grid has three learning rates
per cell, which fix exactly three coefficients; on its one cell with four rates the quadratic's
largest residual is 0.1 % of the loss (benchmarks/bench_hparams.py), below the 0.25 % band that
matters. A smoother asymmetric form needs more rates per cell than real grids hold.

**Near-optimal band.** Near v, L = L*·(1 + ½ΔᵀH_rel·Δ) with H_rel = H/L*. The set
L ≤ L*(1 + f) is an ellipse whose shadow on the η axis is
|Δx| ≤ sqrt(2f·(H_rel⁻¹)_xx): the band, reported for f = 0.25 % (DeepSeek's "near-optimal")
and 1 %.

**Interval.** A parametric bootstrap: each replicate adds Gaussian relative noise σ to the fitted
losses, refits, and takes the replicate surface's argmin over the grid's range (so flat or
non-convex replicates land on the edge instead of at infinity). σ is the residual scale pooled
over the sweep's cells that have runs to spare, shrunk toward the stated prior
:data:`PRIOR_NOISE` with :data:`PRIOR_DOF` pseudo-runs (:func:`pooled_noise`): Misfitting's grid
has one spare run in all, too few to trust alone. The interval is the replicates' percentiles.

**Named, not fitted.** An axis with fewer than :data:`MIN_VALUES` distinct values cannot be
fitted (``too_few``); a best run on the grid's smallest or largest value, or a vertex outside
the grid, is an edge (``edge_low``/``edge_high``): the optimum is then a bound, reported as the
best run's value with one side of the interval: past the edge run's geometric midpoint with its
neighbour (where a parabola whose lowest run is the edge run has its vertex), the other side
open. The laws across cells use these bounds as censored observations (:mod:`.hparam_laws`).
A surface that is not convex is ``not_convex``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_VALUES = 3
"""Distinct values an axis needs in a cell before its optimum can be fitted."""
WINDOW = 5
"""Grid values per axis kept around the best run: the quadratic holds near the minimum."""
PRIOR_NOISE = 0.003
"""Relative loss noise (one standard deviation) assumed when no cell has runs to spare."""
PRIOR_DOF = 5
"""Pseudo-runs of the prior in the pooled noise: σ² = (Σ RSS_rel + k·prior²) / (Σ dof + k)."""
BANDS = (0.0025, 0.01)
GRID_POINTS = 121
FITTED, EDGE_LOW, EDGE_HIGH, TOO_FEW, NOT_CONVEX = (
    "fitted",
    "edge_low",
    "edge_high",
    "too_few",
    "not_convex",
)


@dataclass(frozen=True)
class AxisOptimum:
    """The optimum along one axis (``lr`` or ``batch``) of one cell."""

    value: float
    lo: float | None
    hi: float | None
    bands: dict[float, tuple[float, float]] | None
    grid: tuple[float, ...]
    status: str

    @property
    def fitted(self) -> bool:
        return self.status == FITTED


@dataclass(frozen=True)
class CellFit:
    """A cell's runs, its fitted surface and its optimum on each axis (batch None: η only)."""

    n: float
    d: float
    c: float
    runs: int
    loss_opt: float
    lr: AxisOptimum
    batch: AxisOptimum | None
    hessian_rel: np.ndarray | None
    notes: tuple[str, ...] = ()

    def band(self, level: float) -> dict:
        def pair(ax):
            return None if ax is None or ax.bands is None else list(ax.bands[level])

        return {"lr": pair(self.lr), "batch": pair(self.batch)}

    def to_dict(self) -> dict:
        b = self.batch
        return {
            "N": self.n,
            "D": self.d,
            "lr_opt": self.lr.value,
            "lr_lo": self.lr.lo,
            "lr_hi": self.lr.hi,
            "batch_opt": None if b is None else b.value,
            "batch_lo": None if b is None else b.lo,
            "batch_hi": None if b is None else b.hi,
            "loss_opt": self.loss_opt,
            "band_025": self.band(BANDS[0]),
            "runs": self.runs,
        }


def features(x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    """Design columns of the quadratic: (1, x, x²) or (1, x, y, x², y², xy)."""
    if y is None:
        return np.stack([np.ones_like(x), x, x**2], axis=-1)
    return np.stack([np.ones_like(x), x, y, x**2, y**2, x * y], axis=-1)


def _hessian(coef: np.ndarray) -> np.ndarray:
    if coef.size == 3:
        return np.array([[2 * coef[2]]])
    return np.array([[2 * coef[3], coef[5]], [coef[5], 2 * coef[4]]])


def _window(values: np.ndarray, best: float) -> np.ndarray:
    """Mask of the runs at the :data:`WINDOW` distinct values nearest ``best``."""
    grid = np.unique(values)
    keep = grid[np.argsort(np.abs(grid - best), kind="stable")[:WINDOW]]
    return np.isin(values, keep)


@dataclass(frozen=True)
class Surface:
    """A cell's quadratic fit in (x, y) = (log η, log B), before any bootstrap."""

    x: np.ndarray
    y: np.ndarray | None
    loss: np.ndarray
    coef: np.ndarray
    rss_rel: float
    dof: int
    raw: tuple[np.ndarray, ...]
    """The kept runs' learning rates (and batches) as given, for values reported as runs'."""


def fit_surface(lr: np.ndarray, batch: np.ndarray | None, loss: np.ndarray) -> Surface:
    """Least squares quadratic on the runs near the best one (module docstring)."""
    x, y = np.log(lr), None if batch is None else np.log(batch)
    best = int(np.argmin(loss))
    keep = _window(x, x[best])
    if y is not None:
        keep &= _window(y, y[best])
    x, loss = x[keep], loss[keep]
    y = None if y is None else y[keep]
    raw = (lr[keep],) if batch is None else (lr[keep], batch[keep])
    design = features(x, y)
    coef = np.linalg.lstsq(design, loss, rcond=None)[0]
    resid = (loss - design @ coef) / loss
    distinct = np.unique(np.column_stack([x] if y is None else [x, y]), axis=0).shape[0]
    dof = max(distinct - design.shape[1], 0)
    return Surface(x, y, loss, coef, float(np.sum(resid**2)) if dof else 0.0, dof, raw)


def pooled_noise(surfaces: list[Surface]) -> tuple[float, str]:
    """σ² = (Σ RSS_rel + k·prior²) / (Σ dof + k): the cells' spare runs, shrunk to the prior."""
    dof = sum(s.dof for s in surfaces)
    rss = sum(s.rss_rel for s in surfaces)
    sigma = float(np.sqrt((rss + PRIOR_DOF * PRIOR_NOISE**2) / (dof + PRIOR_DOF)))
    return sigma, (
        f"{dof} spare runs over the cells, with the prior {PRIOR_NOISE:g} as {PRIOR_DOF} more"
    )


def _grid_argmin(coefs: np.ndarray, xs: np.ndarray, ys: np.ndarray | None) -> np.ndarray:
    """(R, k) argmin of each replicate surface over the grid's box (k = 1 or 2 axes)."""
    if ys is None:
        gx, gy = xs, None
        points = xs[:, None]
    else:
        gx, gy = (a.ravel() for a in np.meshgrid(xs, ys, indexing="ij"))
        points = np.column_stack([gx, gy])
    values = coefs @ features(gx, gy).T
    return points[np.argmin(values, axis=1)]


def _status(values: np.ndarray, best: float, vertex: float, convex: bool) -> str:
    grid = np.unique(values)
    if grid.size < MIN_VALUES:
        return TOO_FEW
    if not convex:
        return NOT_CONVEX
    if best <= grid[0] or vertex < grid[0]:
        return EDGE_LOW
    if best >= grid[-1] or vertex > grid[-1]:
        return EDGE_HIGH
    return FITTED


def _axis_optimum(k, surface, vertex, best, replicates, hessian_rel, convex, level):
    """The optimum on axis ``k`` (0: lr, 1: batch), in natural units."""
    values = surface.x if k == 0 else surface.y
    grid = tuple(float(v) for v in np.unique(surface.raw[k]))
    status = _status(values, best[k], vertex[k], convex)
    if status != FITTED:
        at = float(surface.raw[k][int(np.argmin(surface.loss))])
        lo = float(np.sqrt(grid[-1] * grid[-2])) if status == EDGE_HIGH else None
        hi = float(np.sqrt(grid[0] * grid[1])) if status == EDGE_LOW else None
        return AxisOptimum(at, lo, hi, None, grid, status)
    q = (1 - level) / 2
    lo, hi = np.quantile(replicates[:, k], [q, 1 - q])
    inverse = np.linalg.inv(hessian_rel)[k, k]
    bands = {f: _band(vertex[k], 2 * f * inverse) for f in BANDS}
    return AxisOptimum(float(np.exp(vertex[k])), float(np.exp(lo)), float(np.exp(hi)), bands,
                       grid, status)  # fmt: skip


def _band(center: float, half_sq: float) -> tuple[float, float]:
    half = float(np.sqrt(half_sq))
    return float(np.exp(center - half)), float(np.exp(center + half))


def _vertex(surface: Surface) -> tuple[np.ndarray, np.ndarray, bool]:
    """(vertex, Hessian, convex) of the fitted quadratic."""
    hess = _hessian(surface.coef)
    grad0 = surface.coef[1:2] if hess.shape[0] == 1 else surface.coef[1:3]
    convex = bool(np.all(np.linalg.eigvalsh(hess) > 0))
    vertex = -np.linalg.solve(hess, grad0) if convex else np.full(hess.shape[0], np.nan)
    return vertex, hess, convex


def optimise_cell(
    surface: Surface,
    *,
    noise: float,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> tuple[float, tuple[AxisOptimum, AxisOptimum | None], np.ndarray | None]:
    """(loss_opt, (lr, batch) optima, relative Hessian or None) of one fitted cell."""
    vertex, hess, convex = _vertex(surface)
    i_best = int(np.argmin(surface.loss))
    best = np.array([surface.x[i_best]] + ([] if surface.y is None else [surface.y[i_best]]))
    inside = convex and _inside(surface, vertex)
    point = vertex
    loss_opt = float(surface.loss[i_best])
    if inside:
        loss_opt = float((features(*_split(point)) @ surface.coef)[0])
    hess_rel = hess / loss_opt if convex else None
    design = features(surface.x, surface.y)
    fitted = design @ surface.coef
    draws = fitted * (1 + noise * rng.standard_normal((n_boot, fitted.size)))
    coefs = np.linalg.lstsq(design, draws.T, rcond=None)[0].T
    axes = [np.linspace(v.min(), v.max(), GRID_POINTS) for v in _present(surface)]
    reps = _grid_argmin(coefs, axes[0], axes[1] if len(axes) > 1 else None)
    optima = [
        _axis_optimum(k, surface, vertex, best, reps, hess_rel, convex, level)
        for k in range(best.size)
    ]
    return loss_opt, (optima[0], optima[1] if len(optima) > 1 else None), hess_rel


def _present(surface: Surface) -> list[np.ndarray]:
    return [surface.x] if surface.y is None else [surface.x, surface.y]


def _split(point: np.ndarray):
    return (point[:1], None) if point.size == 1 else (point[:1], point[1:2])


def _inside(surface: Surface, vertex: np.ndarray) -> bool:
    return all(v.min() <= p <= v.max() for v, p in zip(_present(surface), vertex, strict=True))
