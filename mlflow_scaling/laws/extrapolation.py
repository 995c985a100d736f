"""The error of extrapolating, estimated from the family itself, for honest prediction intervals.

A bootstrap over runs measures how much the fitted parameters move under resampling, *assuming
the law's form is right*. Beyond the largest trained size the form's own error takes over and
grows with the distance: in-sample residuals cannot see it. So we measure it the way it will be
used, by extrapolating inside the family, **by distance** along both axes a user extrapolates:

1. Hold out the runs in the top ``h`` decades of model size N, and separately of compute C,
   for each ``h`` in :data:`HOLDOUT_DECADES` (a quarter and half a decade), and refit the law
   on the rest, as long as at least ``min_train_sizes`` sizes and :data:`MIN_TRAIN_RUNS` runs
   remain (a holdout that repeats another's split is skipped).
2. Predict each held-out run; record its log residual r = log L − log L̂ and its distance beyond
   the training data, δ = max(log10 N/N_max, log10 C/C_max, 0) in decades (N_max, C_max: the
   largest size and compute that refit saw).
3. Model the residual variance as noise, plus an offset that every size the law has not seen
   carries, plus a term growing with distance: E[r²] = σ² + τ²·[δ > 0] + s²·δ². σ² is the
   in-sample residual variance of the full fit (a robust estimate, 1.4826·MAD). τ is the
   *size offset*: a law misses each model size by its own amount (the runs of one size share
   their error), so a size it was not fitted on is off by about τ even right past the data.
   s is the extra log-error per decade of extrapolation. Both come from non-negative least
   squares of r² − σ² on (1, δ²) over the held-out runs.
4. A target at distance δ > 0 from the full data gets an extra log half-width
   t_{ν, (1+level)/2}·sqrt(τ² + s²·δ²), added in quadrature to the bootstrap prediction
   interval's own half-widths (lower and upper separately). ν, the degrees of freedom of the
   Student t, is the number of distinct model sizes held out in any refit (a size's runs share
   their errors, and a size held out twice is still one size); few held-out sizes give a wide t
   and so a wide interval.

The rule was chosen on real sweeps (benchmarks/real_sweeps.py; docs/decision-numbers.md has the
table), not on simulation alone: holding out by distance on both axes replaced holding out the
1–3 largest sizes, which never tested extrapolation in compute and counted each (size, refit)
pair as a degree of freedom; the size offset τ replaced a growth-only model, whose line through
the origin made the held-out sizes' shared misses look like growth (too wide far out, too
narrow right past the data).

Where no refit is possible (too few sizes or runs), s cannot be measured: the calibration falls
back to a stated prior growth (:data:`PRIOR_GROWTH`, no size offset) with a Student t of
ν = runs − 5 degrees of freedom (the runs left over after fitting the law's 5 parameters), and
says so. A 6-run family therefore gets a very wide interval: it cannot know more.

Inside the trained range (δ = 0) the interval is the bootstrap's, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

from .compute_axis import ComputeAxis
from .fitting import DEFAULT_HUBER_DELTA, ChinchillaFit, fit_chinchilla
from .scatter import robust_scale, size_labels

METHOD_HOLDOUT = "holdout-growth"
METHOD_PRIOR = "prior-growth"
PRIOR_GROWTH = 0.05
"""Extra log-error per decade (one standard deviation) assumed where the family is too small
to measure its own: about 5 % per decade, 10 % at 95 % one decade out. A stated prior, not a
measurement."""
MIN_TRAIN_RUNS = 6
"""A refit keeps more runs than the law's 5 parameters (with 5 it only interpolates them)."""
HOLDOUT_DECADES = (0.25, 0.5)
"""Each refit holds out the runs in the top h decades of N, and separately of C."""


@dataclass(frozen=True)
class ExtrapolationCalibration:
    """How the error of extrapolating grows with distance, for this family."""

    method: str
    growth_per_decade: float
    dof: int
    noise: float
    n_max: float
    c_max: float
    axis: ComputeAxis
    holdouts: tuple[dict, ...] = ()
    reason: str = ""
    size_offset: float = 0.0

    def distance(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        """Decades beyond the trained data: max(log10 N/N_max, log10 C/C_max, 0)."""
        n = np.asarray(n, dtype=float)
        c = self.axis.flops(n, d)
        return np.maximum(np.maximum(np.log10(n / self.n_max), np.log10(c / self.c_max)), 0.0)

    def log_error(self, distance: ArrayLike) -> np.ndarray:
        """The standard deviation of the extrapolation's log-error at ``distance`` decades past
        the data: sqrt(τ²·[δ > 0] + s²·δ²); zero inside the trained range."""
        dist = np.asarray(distance, dtype=float)
        offset = np.where(dist > 0, self.size_offset, 0.0)
        return np.sqrt(offset**2 + (self.growth_per_decade * dist) ** 2)

    def quantile(self, level: float) -> float:
        """The Student t factor of a two-sided ``level`` interval, ν = :attr:`dof`."""
        return float(stats.t.ppf((1 + level) / 2, self.dof))

    def extra_half_width(self, n: ArrayLike, d: ArrayLike, level: float) -> np.ndarray:
        """The extra log half-width of a ``level`` interval for targets (n, d)."""
        return self.quantile(level) * self.log_error(self.distance(n, d))

    def widen(self, point, lo, hi, n, d, level: float):
        """Bootstrap bounds widened by the extrapolation error, in quadrature on log scale."""
        extra = self.extra_half_width(n, d, level)
        down = np.sqrt(np.log(point / lo) ** 2 + extra**2)
        up = np.sqrt(np.log(hi / point) ** 2 + extra**2)
        return point * np.exp(-down), point * np.exp(up)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "growth_per_decade": self.growth_per_decade,
            "size_offset": self.size_offset,
            "dof": self.dof,
            "noise": self.noise,
            "n_max": self.n_max,
            "c_max": self.c_max,
            "holdouts": list(self.holdouts),
            "reason": self.reason,
        }

    def describe(self) -> str:
        if self.method == METHOD_PRIOR:
            return (
                f"widened beyond the trained range by a prior "
                f"{self.growth_per_decade:.3g} log-error per decade, t with {self.dof} dof "
                f"({self.reason})"
            )
        return (
            f"widened beyond the trained range by a size offset of {self.size_offset:.3g} and "
            f"{self.growth_per_decade:.3g} log-error per decade, measured by refitting without "
            f"the largest sizes and budgets "
            f"({len(self.holdouts)} refits, t with {self.dof} dof: the sizes held out)"
        )


def _holdouts(n: np.ndarray, c: np.ndarray, labels: np.ndarray, min_train_sizes: int):
    """(axis, decades, training mask) of each distinct by-distance holdout that leaves enough."""
    seen: set[bytes] = set()
    for axis, x in (("N", n), ("C", c)):
        for h in HOLDOUT_DECADES:
            train = x <= x.max() * 10.0 ** (-h) * (1 + 1e-9)
            key = train.tobytes()
            if train.all() or key in seen:
                continue
            if np.unique(labels[train]).size < min_train_sizes or train.sum() < MIN_TRAIN_RUNS:
                continue
            seen.add(key)
            yield axis, h, train


def _offset_and_growth(excess: np.ndarray, dist: np.ndarray) -> tuple[float, float]:
    """(τ², s²) ≥ 0 of E[r² − σ²] = τ² + s²·δ² over held-out runs, by non-negative least
    squares. A held-out run at δ = 0 (inside both ranges, rare) informs neither term."""
    past = dist > 0
    design = np.column_stack([past.astype(float), dist**2])
    coef, _ = optimize.nnls(design, excess)
    return float(coef[0]), float(coef[1])


def _held_out(n, d, c, loss, labels, split, huber_delta) -> dict | None:
    """One holdout: refit on its training runs and measure the held-out runs' log residuals r,
    their distances past that training data, and their sizes; None when the refit fails."""
    along, h, train = split
    try:
        refit = fit_chinchilla(n[train], d[train], loss[train], huber_delta=huber_delta)
    except ValueError:
        return None
    test = ~train
    r = np.log(loss[test]) - np.log(refit.law.predict(n[test], d[test]))
    dist = np.maximum(
        np.maximum(np.log10(n[test] / n[train].max()), np.log10(c[test] / c[train].max())), 0
    )
    summary = {
        "axis": along,
        "held_out_decades": h,
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "max_distance_decades": float(dist.max()),
        "rms_log_error": float(np.sqrt(np.mean(r**2))),
    }
    return {"r": r, "dist": dist, "sizes": labels[test], "summary": summary}


def calibrate_extrapolation(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    *,
    fit: ChinchillaFit,
    axis: ComputeAxis | None = None,
    huber_delta: float | str = DEFAULT_HUBER_DELTA,
    min_train_sizes: int = 3,
) -> ExtrapolationCalibration:
    """Measure the growth of the extrapolation error (module docstring) on runs (n, d, loss)."""
    n, d, loss = (np.asarray(v, dtype=float).ravel() for v in (n, d, loss))
    axis = axis or ComputeAxis.six_nd()
    c = axis.flops(n, d)
    full_resid = np.log(loss) - np.log(fit.law.predict(n, d))
    noise = robust_scale(full_resid)
    labels = size_labels(n)
    n_sizes = int(labels.max()) + 1 if labels.size else 0
    base = {"noise": noise, "n_max": float(n.max()), "c_max": float(c.max()), "axis": axis}
    held = [h for h in (_held_out(n, d, c, loss, labels, split, huber_delta)
                        for split in _holdouts(n, c, labels, min_train_sizes)) if h]  # fmt: skip
    if not held:
        reason = (
            f"{n_sizes} model sizes and {n.size} runs: no refit without the largest sizes or "
            f"budgets keeps {min_train_sizes} sizes and {MIN_TRAIN_RUNS} runs"
        )
        return ExtrapolationCalibration(
            method=METHOD_PRIOR,
            growth_per_decade=PRIOR_GROWTH,
            dof=max(n.size - 5, 1),
            reason=reason,
            **base,
        )
    r = np.concatenate([h["r"] for h in held])
    dist = np.concatenate([h["dist"] for h in held])
    dof = int(np.unique(np.concatenate([h["sizes"] for h in held])).size)
    tau2, s2 = _offset_and_growth(r**2 - noise**2, dist)
    return ExtrapolationCalibration(
        method=METHOD_HOLDOUT,
        growth_per_decade=float(np.sqrt(s2)),
        size_offset=float(np.sqrt(tau2)),
        dof=max(dof, 1),
        holdouts=tuple(h["summary"] for h in held),
        **base,
    )
