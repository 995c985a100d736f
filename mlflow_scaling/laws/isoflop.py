"""Approach 2: isoFLOP profiles (Hoffmann et al. 2022, §3.2).

Runs are grouped by compute budget; within each budget the loss is fitted as a function of
log N and its minimum gives N_opt(C). Power laws N_opt ∝ C^a and D_opt ∝ C^b (with
D = C / (6N)) are then fitted across budgets.

Two ways to find each minimum: ``"parabola"`` (the paper's; biased when the sampled sizes sit
off-centre around the minimum) and ``"akima"`` (an Akima interpolant of loss in log N,
minimised on a fine grid, as Porian et al. 2024 do; it cannot extrapolate beyond the sampled
sizes). Every result says which was used, and flags minima outside the sampled range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy.interpolate import Akima1DInterpolator

from .compute_axis import ComputeAxis
from .scatter import cluster_log_values  # noqa: F401  (re-exported: its old home)

METHODS = ("parabola", "akima")
_LOG_FLOAT_MAX = float(np.log(np.finfo(float).max))


def group_by_budget(flops: ArrayLike, bandwidth_decades: float = 0.05) -> np.ndarray:
    """Label runs that share a compute budget (see :func:`cluster_log_values`)."""
    return cluster_log_values(flops, bandwidth_decades)


@dataclass(frozen=True)
class IsoFlopProfile:
    """One budget's profile: its runs and the size that minimises loss."""

    flops: float
    n_runs: int
    n_min: float
    n_max: float
    n_opt: float
    loss_opt: float
    inside: bool
    coefficients: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        return {
            "flops": self.flops,
            "n_runs": self.n_runs,
            "n_min": self.n_min,
            "n_max": self.n_max,
            "n_opt": self.n_opt,
            "loss_opt": self.loss_opt,
            "inside_sampled_range": self.inside,
        }


@dataclass(frozen=True)
class IsoFlopFit:
    """N_opt ∝ C^a and D_opt ∝ C^b across budgets, with the profiles behind them."""

    method: str
    a: float
    b: float
    n_coefficient: float
    d_coefficient: float
    profiles: tuple[IsoFlopProfile, ...]
    excluded: tuple[dict, ...] = field(default=())

    def n_opt(self, flops: ArrayLike) -> np.ndarray:
        return self.n_coefficient * np.asarray(flops, dtype=float) ** self.a

    def d_opt(self, flops: ArrayLike) -> np.ndarray:
        return self.d_coefficient * np.asarray(flops, dtype=float) ** self.b

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "a": self.a,
            "b": self.b,
            "n_coefficient": self.n_coefficient,
            "d_coefficient": self.d_coefficient,
            "profiles": [p.to_dict() for p in self.profiles],
            "excluded": list(self.excluded),
        }


def _profile_minimum(logn: np.ndarray, loss: np.ndarray, method: str):
    """(log N_opt, loss at it, coefficients) or a reason string when there is no minimum."""
    if method == "parabola":
        c2, c1, c0 = np.polyfit(logn, loss, 2)
        if not c2 > 0:
            return "the fitted parabola opens downwards (no minimum)"
        x = -c1 / (2 * c2)
        return x, c0 - c1 * c1 / (4 * c2), (float(c2), float(c1), float(c0))
    order = np.argsort(logn)
    xs, ys = logn[order], loss[order]
    keep = np.concatenate([[True], np.diff(xs) > 0])  # Akima needs strictly increasing x
    xs, ys = xs[keep], ys[keep]
    if xs.size < 3:
        return "fewer than 3 distinct sizes"
    grid = np.linspace(xs[0], xs[-1], 2001)
    values = Akima1DInterpolator(xs, ys)(grid)
    i = int(np.argmin(values))
    return grid[i], float(values[i]), ()


def _profile(n, flops, loss, sel, method: str, min_runs: int) -> IsoFlopProfile | dict:
    """One budget's profile and its minimum, or ``{"flops", "reason"}`` saying why not."""
    budget = float(np.exp(np.log(flops[sel]).mean()))
    sizes = np.unique(n[sel])
    if sizes.size < min_runs:
        return {"flops": budget, "reason": f"only {sizes.size} distinct sizes (< {min_runs})"}
    logn = np.log(n[sel])
    found = _profile_minimum(logn, loss[sel], method)
    if isinstance(found, str):
        return {"flops": budget, "reason": found}
    x, lmin, coef = found
    if not x < _LOG_FLOAT_MAX:  # a nearly flat parabola: its vertex is no size at all
        return {"flops": budget, "reason": f"the minimum lies at N = e^{x:.4g}, beyond any size"}
    return IsoFlopProfile(
        flops=budget,
        n_runs=int(sel.sum()),
        n_min=float(sizes.min()),
        n_max=float(sizes.max()),
        n_opt=float(np.exp(x)),
        loss_opt=float(lmin),
        inside=bool(logn.min() <= x <= logn.max()),
        coefficients=coef,
    )


def fit_isoflop(
    n: ArrayLike,
    flops: ArrayLike,
    loss: ArrayLike,
    *,
    method: str = "parabola",
    bandwidth_decades: float = 0.05,
    min_runs: int = 3,
    axis: ComputeAxis | None = None,
) -> IsoFlopFit:
    """Approach 2 on runs with sizes ``n``, budgets ``flops`` and final losses ``loss``.

    Budgets with fewer than ``min_runs`` distinct sizes, or whose loss has no minimum, are
    excluded and listed with the reason. Needs at least two usable budgets. D_opt = C / f(N_opt)
    on the family's compute ``axis`` (default 6ND).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    n, flops, loss = (np.asarray(v, dtype=float).ravel() for v in (n, flops, loss))
    labels = group_by_budget(flops, bandwidth_decades)
    profiles: list[IsoFlopProfile] = []
    excluded: list[dict] = []
    for label in np.unique(labels):
        found = _profile(n, flops, loss, labels == label, method, min_runs)
        (profiles if isinstance(found, IsoFlopProfile) else excluded).append(found)
    if len(profiles) < 2:
        first = (
            f"; first: {excluded[0]['reason']} at C={excluded[0]['flops']:.3g}" if excluded else ""
        )
        raise ValueError(
            f"isoFLOP fit needs at least 2 budgets with {min_runs}+ sizes and a minimum; "
            f"got {len(profiles)} ({len(excluded)} budgets excluded{first})"
        )
    logc = np.log([p.flops for p in profiles])
    logn_opt = np.log([p.n_opt for p in profiles])
    a, log_k = np.polyfit(logc, logn_opt, 1)
    axis = axis or ComputeAxis.six_nd()
    logd_opt = np.log(axis.tokens(np.exp(logn_opt), np.exp(logc)))
    b, log_kd = np.polyfit(logc, logd_opt, 1)
    return IsoFlopFit(
        method=method,
        a=float(a),
        b=float(b),
        n_coefficient=float(np.exp(log_k)),
        d_coefficient=float(np.exp(log_kd)),
        profiles=tuple(profiles),
        excluded=tuple(excluded),
    )
