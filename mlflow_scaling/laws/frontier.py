"""A family's compute frontier, its inverse, and the compute multiplier between two families.

Each family f has a fitted law L_f(N, D) and a compute axis C = φ_f(N)·D (6ND unless measured).
Its **frontier** is the best loss a budget buys,

    L*_f(C) = min_N L_f(N, C/φ_f(N)),

monotone decreasing in C. The **compute multiplier** at budget C is

    m(C) = L*_b⁻¹(L*_c(C)) / C,

the compute the baseline b needs to reach the candidate c's loss, per unit of the candidate's
compute: m > 1 means the candidate is worth m× more compute, m < 1 that it costs compute.
L*_b⁻¹ is found numerically: L*_b on a log grid of budgets (GRID_PER_DECADE per decade), then
log C interpolated linearly against log L (the frontier is smooth, so this is accurate to a
fraction of a percent). A loss the baseline never reaches (below its floor E) gives the top
of the grid, i.e. m ≈ 10^GRID_MARGIN_DECADES: "more than any budget in sight".

The **local slope** s_f(C) = d log L*_f / d log C (a central difference) says how fast each
frontier still falls. The **crossover** is where m crosses 1. Every function takes batched laws
((R, 1) parameters) too, pairing replicates row by row.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .allocation import compute_optimal
from .chinchilla import ChinchillaLaw

GRID_PER_DECADE = 24
GRID_MARGIN_DECADES = 6.0
"""The inverse frontier is searched this many decades around the budgets asked about."""
LOG_M_TOLERANCE = 1e-3
"""|log m| below this counts as m = 1 when looking for a crossing (the grid inversion is
accurate to about 1e-4)."""
SLOPE_STEP = 0.05
"""Half-width, in natural-log units of C, of the central difference for the local slope."""


def frontier_loss(law: ChinchillaLaw, flops: ArrayLike, axis: Any = None) -> np.ndarray:
    """L*(C): the compute-optimal loss at each budget on the family's compute axis.

    ``law`` may be a batch ((R, 1) parameters): the result is then (R, len(flops)).
    ``axis`` None is 6ND.
    """
    return _optimum(law, flops, axis).loss


def _optimum(law: ChinchillaLaw, flops: ArrayLike, axis: Any = None):
    return compute_optimal(law, flops, axis=axis)


def _log_grid(lo: float, hi: float) -> np.ndarray:
    a = math.log10(lo) - GRID_MARGIN_DECADES
    b = math.log10(hi) + GRID_MARGIN_DECADES
    return 10.0 ** np.linspace(a, b, int(math.ceil((b - a) * GRID_PER_DECADE)) + 1)


def inverse_frontier(
    law: ChinchillaLaw, target_loss: ArrayLike, grid: np.ndarray, axis: Any = None
) -> np.ndarray:
    """The budget at which the frontier of ``law`` reaches ``target_loss``, clipped to ``grid``.

    For a batched law, ``target_loss`` is (R, K): row r is inverted with replicate r.
    """
    curve = np.atleast_2d(frontier_loss(law, grid, axis))  # (R, G), decreasing along G
    t = np.asarray(target_loss, dtype=float)
    flat = t.ndim == 1
    t = np.atleast_2d(t)
    log_c, log_l, log_t = np.log(grid), np.log(curve), np.log(t)
    # i = how many grid points are still above the target: the target lies in [i-1, i].
    i = (log_l[:, None, :] > log_t[:, :, None]).sum(axis=-1)
    j = np.clip(i, 1, grid.size - 1)
    rows = np.arange(log_l.shape[0])[:, None]
    l0, l1 = log_l[rows, j - 1], log_l[rows, j]
    frac = np.where(l1 != l0, (log_t - l0) / np.where(l1 != l0, l1 - l0, 1.0), 0.0)
    out = np.exp(log_c[j - 1] + np.clip(frac, 0.0, 1.0) * (log_c[j] - log_c[j - 1]))
    out = np.where(i == 0, grid[0], np.where(i >= grid.size, grid[-1], out))
    return out[0] if flat else out


def compute_multiplier(
    baseline: ChinchillaLaw,
    candidate: ChinchillaLaw,
    flops: ArrayLike,
    *,
    baseline_axis: Any = None,
    candidate_axis: Any = None,
    grid: np.ndarray | None = None,
) -> np.ndarray:
    """m(C) = L*_b⁻¹(L*_c(C)) / C for each budget (batched laws pair replicates row by row)."""
    c = np.atleast_1d(np.asarray(flops, dtype=float))
    grid = _log_grid(c.min(), c.max()) if grid is None else grid
    target = frontier_loss(candidate, c, candidate_axis)
    return inverse_frontier(baseline, target, grid, baseline_axis) / c


def local_slope(law: ChinchillaLaw, flops: ArrayLike, axis: Any = None) -> np.ndarray:
    """d log L*/d log C at each budget, by a central difference of half-width SLOPE_STEP."""
    c = np.atleast_1d(np.asarray(flops, dtype=float))
    up = np.log(frontier_loss(law, c * math.exp(SLOPE_STEP), axis))
    down = np.log(frontier_loss(law, c * math.exp(-SLOPE_STEP), axis))
    return (up - down) / (2 * SLOPE_STEP)


def _sign(log_m: np.ndarray) -> np.ndarray:
    """Sign of log m along the last axis; within the inversion's accuracy of 0 a point keeps
    the sign before it (0 at the start), so identical frontiers never cross."""
    sign = np.atleast_2d(np.where(np.abs(log_m) < LOG_M_TOLERANCE, 0.0, np.sign(log_m)))
    last = np.maximum.accumulate(np.where(sign != 0, np.arange(sign.shape[1]), 0), axis=1)
    filled = np.take_along_axis(sign, last, axis=1)
    return filled.reshape(np.shape(log_m))


def _scan(lo: float, hi: float) -> np.ndarray:
    count = int(math.log10(hi / lo) * GRID_PER_DECADE) + 2
    return 10.0 ** np.linspace(math.log10(lo), math.log10(hi), count)


def replicate_crossovers(
    baseline: ChinchillaLaw,
    candidate: ChinchillaLaw,
    lo: float,
    hi: float,
    *,
    baseline_axis: Any = None,
    candidate_axis: Any = None,
) -> np.ndarray:
    """For batched laws: each replicate pair's first crossing of m = 1 in [lo, hi] (NaN: none).

    The crossing is interpolated linearly in (log C, log m) between scan points.
    """
    scan = _scan(lo, hi)
    log_m = np.log(compute_multiplier(baseline, candidate, scan, grid=_log_grid(lo, hi),
                                      baseline_axis=baseline_axis,
                                      candidate_axis=candidate_axis))  # fmt: skip
    log_m = np.atleast_2d(log_m)
    sign = _sign(log_m)
    change = sign[:, :-1] * sign[:, 1:] < 0
    k = change.argmax(axis=1)
    rows = np.arange(log_m.shape[0])
    m0, m1 = log_m[rows, k], log_m[rows, k + 1]
    x0, x1 = np.log(scan[k]), np.log(scan[k + 1])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x = x0 - m0 * (x1 - x0) / (m1 - m0)  # (meaningless in rows without a crossing)
        return np.where(change.any(axis=1), np.exp(x), np.nan)


def find_crossover(
    baseline: ChinchillaLaw,
    candidate: ChinchillaLaw,
    lo: float,
    hi: float,
    *,
    baseline_axis: Any = None,
    candidate_axis: Any = None,
) -> float | None:
    """The smallest budget in [lo, hi] where the multiplier crosses 1, or None."""
    found = replicate_crossovers(baseline, candidate, lo, hi, baseline_axis=baseline_axis,
                                 candidate_axis=candidate_axis)  # fmt: skip
    value = float(np.ravel(found)[0])
    return value if math.isfinite(value) else None
