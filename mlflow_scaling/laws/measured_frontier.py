"""The measured compute frontier: the best loss a family's own runs reached at each budget.

Before any law is fitted, the runs already say something about "which family is better at this
budget". Two shapes of data:

* **isoFLOP grid** (``kind="isoflop"``): runs grouped by budget (:func:`group_by_budget`); a
  budget with at least ``MIN_PROFILE_SIZES`` distinct sizes is a profile, and its lowest
  measured loss is the frontier point. The scatter of one point is estimated from how far the
  runs near each minimum sit from a parabola in log N through them (pooled over profiles):
  run-to-run noise plus whatever the parabola cannot follow, never the law's misfit.
* **otherwise** (``kind="envelope"``): the lower envelope of the runs in (C, loss): every run
  that no run with less compute beats. Its scatter is the given ``noise`` (the law fit's robust
  residual scale).

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
NOISE_POINTS = 5
"""Runs nearest (in log N) to each profile's minimum used to estimate a point's scatter."""


@dataclass(frozen=True)
class MeasuredFrontier:
    """Frontier points (ascending compute) and the log-scale scatter of one point."""

    kind: str
    flops: np.ndarray
    loss: np.ndarray
    n: np.ndarray
    d: np.ndarray
    noise: float

    def log_loss_at(self, flops: ArrayLike) -> np.ndarray:
        """log L of the frontier at ``flops`` (interpolated in log-log; NaN outside)."""
        x = np.log(np.atleast_1d(np.asarray(flops, dtype=float)))
        lx, ly = np.log(self.flops), np.log(self.loss)
        inside = (x >= lx[0] - 1e-9) & (x <= lx[-1] + 1e-9)
        return np.where(inside, np.interp(x, lx, ly), np.nan)

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
            "noise": self.noise,
        }


def _profiles(n: np.ndarray, flops: np.ndarray) -> list[np.ndarray]:
    labels = group_by_budget(flops)
    return [
        np.flatnonzero(labels == k)
        for k in np.unique(labels)
        if np.unique(n[labels == k]).size >= MIN_PROFILE_SIZES
    ]


def _profile_scatter(n: np.ndarray, loss: np.ndarray, profiles: list[np.ndarray]) -> float:
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
    return math.sqrt(rss / dof) if dof else math.nan


def _envelope(flops: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Indices of the runs that no run with less (or equal) compute beats, by compute."""
    order = np.lexsort((loss, flops))
    best = np.minimum.accumulate(loss[order])
    first = np.concatenate([[True], loss[order][1:] < best[:-1]])
    return order[first]


def measured_frontier(
    n: ArrayLike, d: ArrayLike, loss: ArrayLike, flops: ArrayLike, *, noise: float
) -> MeasuredFrontier:
    """The family's measured frontier (module docstring); ``noise`` is used for envelopes and
    as the floor of a grid's estimated scatter."""
    n, d, loss, flops = (np.asarray(v, dtype=float).ravel() for v in (n, d, loss, flops))
    profiles = _profiles(n, flops)
    gridded = sum(idx.size for idx in profiles)
    if len(profiles) >= MIN_PROFILES and gridded >= MIN_GRID_SHARE * n.size:
        best = np.array([idx[np.argmin(loss[idx])] for idx in profiles])
        budgets = np.array([math.exp(np.log(flops[idx]).mean()) for idx in profiles])
        order = np.argsort(budgets)
        scatter = _profile_scatter(n, loss, profiles)
        if not math.isfinite(scatter):
            scatter = noise
        return MeasuredFrontier(
            KIND_ISOFLOP,
            budgets[order],
            loss[best][order],
            n[best][order],
            d[best][order],
            float(scatter),
        )
    keep = _envelope(flops, loss)
    return MeasuredFrontier(KIND_ENVELOPE, flops[keep], loss[keep], n[keep], d[keep], float(noise))


# --- two measured frontiers ---------------------------------------------------------------------


@dataclass(frozen=True)
class MeasuredComparison:
    """The candidate's measured frontier against the baseline's, inside both trained ranges.

    Each row's ``diff`` is log L_baseline − log L_candidate (> 0: the candidate is lower) and
    ``threshold`` the size a difference must exceed to count: z·sqrt(σ_b² + σ_c²), z the
    two-sided normal quantile at ``level`` with a Bonferroni correction over the rows (so a
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
    z = float(stats.norm.ppf(1 - (1 - level) / (2 * c.size)))
    threshold = z * math.hypot(baseline.noise, candidate.noise)
    sign = np.where(diff > threshold, 1, np.where(diff < -threshold, -1, 0))
    rows = [
        {
            "flops": float(c[i]),
            "loss_baseline": float(np.exp(baseline.log_loss_at(c[i])[0])),
            "loss_candidate": float(np.exp(candidate.log_loss_at(c[i])[0])),
            "diff": float(diff[i]),
            "threshold": threshold,
            "sign": int(sign[i]),
        }
        for i in range(c.size)
    ]
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
