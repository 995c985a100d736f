"""Compute-optimal allocation and return from a fitted Chinchilla law, on the family's axis.

With C = k·N·D (k = 6 by default), minimising E + A/N^α + B/D^β gives, in closed form,
G = (αA / (βB))^(1/(α+β)), N_opt = G·(C/k)^a, D_opt = (C/k)^b / G with a = β/(α+β),
b = α/(α+β).

On a measured axis C = f(N)·D (:mod:`compute_axis`) there is no closed form: for each budget
we minimise L(N, C/f(N)) over log N, one-dimensional and numeric (a log grid, then golden
section inside the best cell). Setting dL/dN = 0 with D = C/f(N) gives, with
s = d log f / d log N,

    D*(N) = (β·B·s·N^α / (α·A))^(1/β),

the tokens at which a model of size N is compute-optimal; for f = 6N (s = 1) it reduces to the
closed form above. :func:`budget_for_size` uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .chinchilla import PARAM_NAMES, ChinchillaLaw
from .compute_axis import KIND_6ND, ComputeAxis

FLOPS_PER_PARAM_TOKEN = 6.0


@dataclass(frozen=True)
class Allocation:
    """The best split of compute budget(s) ``flops`` and the loss it reaches."""

    flops: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    loss: np.ndarray

    @property
    def tokens_per_param(self) -> np.ndarray:
        return self.d_opt / self.n_opt

    def rows(self) -> list[dict[str, float]]:
        """One plain dict per budget, for tables and JSON."""
        return [
            {
                "flops": float(c),
                "n_opt": float(n),
                "d_opt": float(d),
                "tokens_per_param": float(d / n),
                "loss": float(lo),
            }
            for c, n, d, lo in zip(self.flops, self.n_opt, self.d_opt, self.loss, strict=True)
        ]


def allocation_exponents(law: ChinchillaLaw) -> tuple[float, float]:
    """(a, b) with N_opt ∝ C^a and D_opt ∝ C^b."""
    total = np.asarray(law.alpha + law.beta)
    if not np.all(total > 0):
        raise ValueError(f"allocation needs alpha + beta > 0, got {law.alpha} + {law.beta}")
    return law.beta / total, law.alpha / total


def _split_constant(law: ChinchillaLaw):
    """G = (αA / (βB))^(1/(α+β)), so that N_opt = G·(C/k)^a and D_opt = (C/k)^b / G."""
    return (law.alpha * law.A / (law.beta * law.B)) ** (1.0 / (law.alpha + law.beta))


def _is_6nd(axis: ComputeAxis | None) -> bool:
    return axis is None or axis.kind == KIND_6ND


def tokens_at_optimum(law: ChinchillaLaw, n: ArrayLike, axis: ComputeAxis | None = None):
    """D*(N): the tokens at which a model of size ``n`` is compute-optimal on ``axis``."""
    n = np.asarray(n, dtype=float)
    s = 1.0 if _is_6nd(axis) else axis.log_slope(n)
    return (law.beta * law.B * s * n**law.alpha / (law.alpha * law.A)) ** (1.0 / law.beta)


def budget_for_size(
    law: ChinchillaLaw,
    n: ArrayLike,
    flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN,
    axis: ComputeAxis | None = None,
) -> np.ndarray:
    """The compute budget C at which a model of size ``n`` is compute-optimal (N_opt(C) = n)."""
    allocation_exponents(law)  # refuses laws without an optimum
    n = np.asarray(n, dtype=float)
    if _is_6nd(axis):
        return flops_per_param_token * n * tokens_at_optimum(law, n)
    return axis.flops(n, tokens_at_optimum(law, n, axis))


def compute_optimal(
    law: ChinchillaLaw,
    flops: ArrayLike,
    flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN,
    axis: ComputeAxis | None = None,
) -> Allocation:
    """N_opt, D_opt and the loss reached for each compute budget in ``flops``.

    ``axis`` (default 6ND) is the family's compute axis; on a measured axis the optimum is
    found numerically (module docstring). The law's parameters may be arrays of shape (R, 1)
    (a batch of bootstrap laws); the results then have shape (R, len(flops)).
    """
    c = np.atleast_1d(np.asarray(flops, dtype=float))
    if np.any(~np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"compute budgets must be positive and finite, got {c.tolist()}")
    a, b = allocation_exponents(law)
    g = _split_constant(law)
    base = c / flops_per_param_token
    n_opt = g * base**a
    if not _is_6nd(axis):
        n_opt = _numeric_n_opt(law, c, axis, first_guess=n_opt)
        d_opt = axis.tokens(n_opt, c)
    else:
        d_opt = base**b / g
    return Allocation(flops=c, n_opt=n_opt, d_opt=d_opt, loss=law.predict(n_opt, d_opt))


_GRID_DECADES = 4.0  # search ±4 decades of N around the 6ND optimum
_GRID_POINTS = 161
_GOLDEN_STEPS = 40


def _numeric_n_opt(law, c: np.ndarray, axis: ComputeAxis, first_guess: np.ndarray):
    """argmin over N of L(N, C/f(N)) per budget (and per law of a batch)."""
    params = [np.asarray(getattr(law, k), dtype=float) for k in PARAM_NAMES]
    shape = np.broadcast(*params, c).shape
    params = [np.broadcast_to(p, shape)[..., None] for p in params]
    cc = np.broadcast_to(c, shape)[..., None]
    e, big_a, big_b, alpha, beta = params

    def loss_at(log_n):
        n = np.exp(log_n)
        return e + big_a * n ** (-alpha) + big_b * (cc / axis.flops_per_token(n)) ** (-beta)

    centre = np.log(np.broadcast_to(first_guess, shape))[..., None]
    step = _GRID_DECADES * np.log(10) / ((_GRID_POINTS - 1) / 2)
    grid = centre + step * np.arange(-(_GRID_POINTS // 2), _GRID_POINTS // 2 + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        values = loss_at(grid)
    best = np.nanargmin(np.where(np.isfinite(values), values, np.inf), axis=-1)
    mid = np.take_along_axis(grid, best[..., None], axis=-1)
    lo, hi = mid - step, mid + step
    ratio = (np.sqrt(5) - 1) / 2
    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f1, f2 = loss_at(x1), loss_at(x2)
    for _ in range(_GOLDEN_STEPS):
        left = f1 < f2
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        x2n = np.where(left, x1, lo + ratio * (hi - lo))
        x1n = np.where(left, hi - ratio * (hi - lo), x2)
        x1, x2 = x1n, x2n
        f1, f2 = loss_at(x1), loss_at(x2)
    return np.exp(0.5 * (lo + hi))[..., 0]


def local_allocation_exponent(
    law: ChinchillaLaw, flops: ArrayLike, axis: ComputeAxis | None = None
) -> float:
    """The slope a of log N_opt against log C over the budgets ``flops`` (a fitted line).

    For 6ND it is β/(α+β) exactly; on a measured axis it drifts with C, and this is the
    exponent comparable to an isoFLOP (Approach 2) fit over the same budgets.
    """
    c = np.atleast_1d(np.asarray(flops, dtype=float))
    if _is_6nd(axis) or c.size < 2 or np.ptp(np.log(c)) == 0:
        return float(allocation_exponents(law)[0])
    n_opt = compute_optimal(law, c, axis=axis).n_opt
    return float(np.polyfit(np.log(c), np.log(n_opt), 1)[0])


def plan_loss(law: ChinchillaLaw, n: ArrayLike, d: ArrayLike) -> np.ndarray:
    """The loss of any plan (N parameters trained on D tokens)."""
    return law.predict(n, d)


def tokens_for_budget(
    n: ArrayLike,
    flops: ArrayLike,
    flops_per_param_token: float = FLOPS_PER_PARAM_TOKEN,
    axis: ComputeAxis | None = None,
) -> np.ndarray:
    """D = C / f(N): the tokens a model of size N can see with budget C (f = k·N for 6ND)."""
    if not _is_6nd(axis):
        return axis.tokens(n, flops)
    return np.asarray(flops, dtype=float) / (flops_per_param_token * np.asarray(n, dtype=float))
