"""The measured compute frontier: the best loss a family's own runs reached at each budget.

Before any law is fitted, the runs already say something about "which family is better at this
budget". Two shapes of data:

* **isoFLOP grid** (``kind="isoflop"``): runs grouped by budget (:func:`group_by_budget`); a
  budget with at least ``MIN_PROFILE_SIZES`` distinct sizes is a profile. Its frontier point is
  the profile's minimum: the vertex of a parabola in log N through the ``NOISE_POINTS`` runs
  nearest the lowest one (log loss), when it opens upwards and its vertex lies among them, with
  the vertex's standard error from the parabola's covariance; otherwise the lowest run, with the
  scatter of one run. That scatter σ is pooled over the profiles' parabola residuals: run-to-run
  noise plus whatever the parabola cannot follow, never the law's misfit.
* **otherwise** (``kind="envelope"``): the lower envelope of the runs in (C, loss): every run
  that no run with less compute beats, each with the given ``noise`` (the law fit's robust
  residual scale) as its standard error.

Between frontier points the frontier is read by linear interpolation of log L against log C;
outside the measured budgets it is undefined (NaN): a measured frontier never extrapolates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from .isoflop import group_by_budget
from .verdicts import BETTER, CROSSES, NO_DIFFERENCE, WITHHELD, WORSE

KIND_ISOFLOP, KIND_ENVELOPE = "isoflop", "envelope"
MIN_PROFILE_SIZES = 3
"""A budget is an isoFLOP profile with at least this many distinct sizes."""
MIN_PROFILES = 2
"""A family is an isoFLOP grid with at least this many profiles ..."""
MIN_GRID_SHARE = 0.5
"""... holding at least this share of its runs."""
LAW_PARAMS = 5
"""An envelope's noise comes from the law's residuals: runs − 5 degrees of freedom."""
NOISE_POINTS = 5
"""Runs nearest (in log N) to each profile's minimum used to estimate a point's scatter."""


@dataclass(frozen=True)
class MeasuredFrontier:
    """Frontier points (ascending compute), the log-scale standard error of each, and the
    scatter of one run."""

    kind: str
    flops: np.ndarray
    loss: np.ndarray
    n: np.ndarray
    d: np.ndarray
    se: np.ndarray
    noise: float
    dof: int
    """Degrees of freedom behind ``noise`` (for the Student t of a comparison)."""

    def log_loss_at(self, flops: ArrayLike) -> np.ndarray:
        """log L of the frontier at ``flops`` (interpolated in log-log; NaN outside)."""
        x = np.log(np.atleast_1d(np.asarray(flops, dtype=float)))
        lx, ly = np.log(self.flops), np.log(self.loss)
        inside = (x >= lx[0] - 1e-9) & (x <= lx[-1] + 1e-9)
        return np.where(inside, np.interp(x, lx, ly), np.nan)

    def se_at(self, flops: ArrayLike) -> np.ndarray:
        """The standard error of :meth:`log_loss_at` (interpolated like it)."""
        x = np.log(np.atleast_1d(np.asarray(flops, dtype=float)))
        return np.interp(x, np.log(self.flops), self.se)

    @property
    def span(self) -> tuple[float, float]:
        return float(self.flops[0]), float(self.flops[-1])

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "flops": self.flops.tolist(),
            "loss": self.loss.tolist(),
            "n": self.n.tolist(),
            "d": self.d.tolist(),
            "se": self.se.tolist(),
            "noise": self.noise,
        }


def _profiles(n: np.ndarray, flops: np.ndarray) -> list[np.ndarray]:
    labels = group_by_budget(flops)
    return [
        np.flatnonzero(labels == k)
        for k in np.unique(labels)
        if np.unique(n[labels == k]).size >= MIN_PROFILE_SIZES
    ]


def _profile_scatter(n, loss, profiles: list[np.ndarray]) -> tuple[float, int]:
    """Pooled residual scale of parabolas in log N through the runs nearest each minimum."""
    rss, dof = 0.0, 0
    for idx in profiles:
        x, y = np.log(n[idx]), np.log(loss[idx])
        near = np.argsort(np.abs(x - x[np.argmin(y)]), kind="stable")[:NOISE_POINTS]
        if np.unique(x[near]).size < 4:
            continue
        coef = np.polyfit(x[near], y[near], 2)
        rss += float(np.sum((y[near] - np.polyval(coef, x[near])) ** 2))
        dof += near.size - 3
    return (math.sqrt(rss / dof) if dof else math.nan), dof


def _envelope(flops: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Indices of the runs that no run with less (or equal) compute beats, by compute."""
    order = np.lexsort((loss, flops))
    best = np.minimum.accumulate(loss[order])
    first = np.concatenate([[True], loss[order][1:] < best[:-1]])
    return order[first]


def _profile_point(x: np.ndarray, y: np.ndarray, sigma: float) -> tuple[float, float, float]:
    """(log N, log loss, its standard error) of one profile's minimum (module docstring)."""
    near = np.argsort(np.abs(x - x[np.argmin(y)]), kind="stable")[:NOISE_POINTS]
    if np.unique(x[near]).size >= 4:
        design = np.vander(x[near], 3)
        coef = np.linalg.lstsq(design, y[near], rcond=None)[0]
        if coef[0] > 0:
            x0 = -coef[1] / (2 * coef[0])
            if x[near].min() <= x0 <= x[near].max():
                v = np.array([x0 * x0, x0, 1.0])
                var = sigma**2 * v @ np.linalg.inv(design.T @ design) @ v
                return float(x0), float(np.polyval(coef, x0)), float(math.sqrt(max(var, 0.0)))
    i = int(np.argmin(y))
    return float(x[i]), float(y[i]), sigma


def _grid_frontier(n, d, loss, flops, profiles, noise: float) -> MeasuredFrontier:
    sigma, dof = _profile_scatter(n, loss, profiles)
    if not math.isfinite(sigma):
        sigma, dof = noise, max(n.size - LAW_PARAMS, 1)
    rows = []
    for idx in profiles:
        x, y = np.log(n[idx]), np.log(loss[idx])
        x0, y0, se = _profile_point(x, y, sigma)
        order = np.argsort(x)
        log_d = float(np.interp(x0, x[order], np.log(d[idx])[order]))
        rows.append((math.exp(np.log(flops[idx]).mean()), math.exp(y0), math.exp(x0),
                     math.exp(log_d), se))  # fmt: skip
    c, best, nn, dd, se = (np.array(v) for v in zip(*sorted(rows), strict=True))
    return MeasuredFrontier(KIND_ISOFLOP, c, best, nn, dd, se, float(sigma), dof)


def measured_frontier(
    n: ArrayLike, d: ArrayLike, loss: ArrayLike, flops: ArrayLike, *, noise: float
) -> MeasuredFrontier:
    """The family's measured frontier (module docstring); ``noise`` is the scatter of an
    envelope's points, and of a grid's when its profiles cannot estimate one."""
    n, d, loss, flops = (np.asarray(v, dtype=float).ravel() for v in (n, d, loss, flops))
    profiles = _profiles(n, flops)
    gridded = sum(idx.size for idx in profiles)
    if len(profiles) >= MIN_PROFILES and gridded >= MIN_GRID_SHARE * n.size:
        return _grid_frontier(n, d, loss, flops, profiles, noise)
    keep = _envelope(flops, loss)
    se = np.full(keep.size, float(noise))
    return MeasuredFrontier(KIND_ENVELOPE, flops[keep], loss[keep], n[keep], d[keep], se,
                            float(noise), max(n.size - LAW_PARAMS, 1))  # fmt: skip


def simultaneous_quantile(level: float, count: int, dof: int) -> float:
    """Student t quantile for ``count`` two-sided tests at once (Bonferroni) at ``level``, with
    ``dof`` degrees of freedom behind the estimated scale."""
    return float(stats.t.ppf(1 - (1 - level) / (2 * count), max(dof, 1)))


# --- two measured frontiers ---------------------------------------------------------------------


@dataclass(frozen=True)
class MeasuredComparison:
    """The candidate's measured frontier against the baseline's, inside both trained ranges.

    Each row's ``diff`` is log L_baseline − log L_candidate (> 0: the candidate is lower) and
    ``threshold`` the size a difference must exceed to count: t·sqrt(se_b² + se_c²), t the
    two-sided Student quantile at ``level`` (the smaller family's degrees of freedom behind its
    scatter) with a Bonferroni correction over the rows (so a
    pair from one law shows no difference at any row with probability about ``level``).
    """

    verdict: str
    note: str
    crossover: float | None
    rows: list[dict]
    overlap: tuple[float, float] | None
    crossing_between: tuple[float, float] | None = None
    """For ``crosses``: the budgets one row outside the last measured on one side and the first
    measured on the other (the stretch the crossing must lie in, with a row of slack)."""

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "note": self.note,
            "crossover_flops": self.crossover,
            "overlap": None if self.overlap is None else list(self.overlap),
            "rows": self.rows,
        }


def _crossing(c: np.ndarray, diff: np.ndarray, first: int, second: int) -> float:
    """Where ``diff`` crosses zero between rows ``first`` and ``second``: the root of a straight
    line in log C through the rows from one to the other (noise-robust, unlike the first sign
    change), kept inside that stretch."""
    x, y = np.log(c[first : second + 1]), diff[first : second + 1]
    slope, icept = np.polyfit(x, y, 1)
    root = -icept / slope if slope != 0 else x.mean()
    return float(math.exp(np.clip(root, x[0], x[-1])))


def _verdict(c: np.ndarray, diff: np.ndarray, sign: np.ndarray, rows: list[dict]):
    """The measured comparison's verdict from the signs of the differences at the budgets
    ``c`` (1: the candidate lower beyond the noise, -1: higher, 0: within it)."""
    better, worse = np.flatnonzero(sign > 0), np.flatnonzero(sign < 0)
    span = (float(c[0]), float(c[-1]))
    if better.size and worse.size:
        early, late = (better, worse) if better[0] < worse[0] else (worse, better)
        second = int(late[0])
        first = int(early[early < second].max())
        cross = _crossing(c, diff, first, second)
        return MeasuredComparison(
            CROSSES,
            "measured lower at some budgets and higher at others",
            cross,
            rows,
            span,
            (float(c[max(first - 1, 0)]), float(c[min(second + 1, c.size - 1)])),
        )
    if not (better.size or worse.size):
        return MeasuredComparison(
            NO_DIFFERENCE,
            "no measured difference beyond the noise at any common budget",
            None,
            rows,
            span,
        )
    side, word = (BETTER, "lower") if better.size else (WORSE, "higher")
    if (diff[-1] > 0) == (side == BETTER):
        return MeasuredComparison(
            side,
            f"measured {word} than the baseline, beyond the noise "
            f"at {max(better.size, worse.size)} of {c.size} common "
            "budgets",
            None,
            rows,
            span,
        )
    return MeasuredComparison(
        NO_DIFFERENCE,
        f"{side} only at smaller budgets; at the largest "
        "common budget the difference is within the noise",
        None,
        rows,
        span,
    )


def compare_measured(
    baseline: MeasuredFrontier, candidate: MeasuredFrontier, *, level: float = 0.95
) -> MeasuredComparison:
    """Compare two measured frontiers at every frontier budget inside both spans."""
    lo = max(baseline.span[0], candidate.span[0])
    hi = min(baseline.span[1], candidate.span[1])
    if lo > hi * (1 + 1e-9):
        note = (
            f"the compute ranges do not overlap (baseline {baseline.span[0]:.3g}.."
            f"{baseline.span[1]:.3g}, candidate {candidate.span[0]:.3g}.."
            f"{candidate.span[1]:.3g} FLOPs): nothing was measured at a common budget"
        )
        return MeasuredComparison(WITHHELD, note, None, [], None)
    both = np.concatenate([baseline.flops, candidate.flops])
    labels = group_by_budget(both)  # one row per budget the two families share up to scatter
    c = np.array([math.exp(np.log(both[labels == k]).mean()) for k in np.unique(labels)])
    c = np.clip(c[(c >= lo * (1 - 0.02)) & (c <= hi * (1 + 0.02))], lo, hi)
    diff = baseline.log_loss_at(c) - candidate.log_loss_at(c)
    z = simultaneous_quantile(level, c.size, min(baseline.dof, candidate.dof))
    threshold = z * np.hypot(baseline.se_at(c), candidate.se_at(c))
    sign = np.where(diff > threshold, 1, np.where(diff < -threshold, -1, 0))
    rows = [
        {
            "flops": float(c[i]),
            "loss_baseline": float(np.exp(baseline.log_loss_at(c[i])[0])),
            "loss_candidate": float(np.exp(candidate.log_loss_at(c[i])[0])),
            "diff": float(diff[i]),
            "threshold": float(threshold[i]),
            "sign": int(sign[i]),
        }
        for i in range(c.size)
    ]
    return _verdict(c, diff, sign, rows)
