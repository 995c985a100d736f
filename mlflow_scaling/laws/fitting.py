"""Approach 3: fit the Chinchilla law to (N, D, loss) points, robustly and fast.

The method is Epoch AI's correction of Hoffmann et al. (Besiroglu et al. 2024):

* parameters in log space, θ = (a, b, e, α, β) with A = e^a, B = e^b, E = e^e;
* prediction log L̂ = logsumexp(a − α log N, b − β log D, e);
* Huber loss on the log-loss residuals, **summed** over points (averaging makes the gradient
  so small that L-BFGS stops where it started). Epoch use δ = 1e-3 (:data:`EPOCH_HUBER_DELTA`,
  pass it to reproduce their optimum exactly); it is our default. ``huber_delta="auto"`` first
  fits at δ = 1e-3, then refits at δ = 1.345·σ̂, σ̂ the robust scale of that fit's residuals
  (:func:`scaled_huber_delta`). Auto won on simulated families (benchmarks/bench_huber_delta.py)
  but lost on real sweeps: over 89 fit-small/predict-large splits of 15 real sweeps
  (benchmarks/real_sweeps.py) the mean error is 5.33 % at 1e-3 against 5.73 % with auto, so
  the default went back to Epoch's δ;
* many starts from a grid (Epoch's 4,500 points), the best polished to convergence.

All starts are optimised together: a batched Levenberg–Marquardt iteration on the exact
Hessian (5×5 per start) runs across every start and every point as numpy array operations.
The few best distinct optima are then iterated to convergence and the winner is polished with
scipy's L-BFGS-B, which can only improve it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize

from .chinchilla import ChinchillaLaw, log_predict
from .grid import GRID_RANGES, epoch_grid, grid_in_data_units  # noqa: F401  (re-exported)
from .scatter import robust_scale
from .validation import chinchilla_points

EPOCH_HUBER_DELTA = 1e-3
HUBER_AUTO = "auto"
DEFAULT_HUBER_DELTA = EPOCH_HUBER_DELTA
"""Chosen on real sweeps (module docstring; docs/decision-numbers.md)."""
HUBER_TUNING = 1.345
"""δ = 1.345·σ gives Huber's estimator 95 % efficiency under Gaussian noise of scale σ."""
# Successive halving of the starts: (fraction of all starts kept, batched steps) per stage.
EXPLORE_SCHEDULE: tuple[tuple[float, int], ...] = ((1.0, 2), (0.25, 3), (0.0625, 6))


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss: ``r**2 / 2`` for ``|r| <= delta``, ``delta * (|r| - delta / 2)`` beyond.

    ``delta = inf`` gives plain least squares (``r**2 / 2``).
    """
    abs_r = np.abs(r)
    clipped = np.minimum(abs_r, delta)
    return clipped * (abs_r - 0.5 * clipped)


def chinchilla_objective(
    theta: ArrayLike,
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    huber_delta: float = EPOCH_HUBER_DELTA,
    reduction: str = "sum",
) -> float:
    """The fitting objective for one parameter vector (a, b, e, α, β).

    ``reduction="mean"`` reproduces the averaged objective behind Hoffmann et al.'s published
    values; it is here to demonstrate that trap, not to be used.
    """
    r = np.log(np.asarray(loss, float)) - log_predict(
        np.asarray(theta, float), np.log(np.asarray(n, float)), np.log(np.asarray(d, float))
    )
    h = huber(r, huber_delta)
    if reduction == "sum":
        return float(h.sum())
    if reduction == "mean":
        return float(h.mean())
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


@dataclass(frozen=True)
class ChinchillaFit:
    """The result of fitting the Chinchilla law: the law, its objective and how it was found."""

    law: ChinchillaLaw
    objective: float
    n_points: int
    n_starts: int
    huber_delta: float
    iterations: int
    converged: bool
    local_optima: tuple[tuple[float, ...], ...] = ()
    huber_rule: str = "fixed"

    def to_dict(self) -> dict:
        return {
            "law": "chinchilla",
            "params": self.law.to_dict(),
            "objective": self.objective,
            "n_points": self.n_points,
            "n_starts": self.n_starts,
            "huber_delta": self.huber_delta,
            "huber_rule": self.huber_rule,
            "iterations": self.iterations,
            "converged": self.converged,
        }


@dataclass(frozen=True)
class _Problem:
    """Points in standardised log coordinates, so the batched Newton steps are well scaled.

    Internally z1 = a' − α'·u with u = (log N − μ_N)/σ_N (and the same for D), which maps back
    to the user's coordinates by α = α'/σ_N, a = a' + α·μ_N.
    """

    u: np.ndarray
    v: np.ndarray
    t: np.ndarray
    mu: tuple[float, float]
    sigma: tuple[float, float]

    @classmethod
    def from_points(cls, n: np.ndarray, d: np.ndarray, loss: np.ndarray) -> _Problem:
        x, y = np.log(n), np.log(d)
        mu = (float(x.mean()), float(y.mean()))
        sigma = (float(x.std()) or 1.0, float(y.std()) or 1.0)
        return cls((x - mu[0]) / sigma[0], (y - mu[1]) / sigma[1], np.log(loss), mu, sigma)

    def take(self, index: np.ndarray) -> _Problem:
        """The same coordinates restricted to some points."""
        return _Problem(self.u[index], self.v[index], self.t[index], self.mu, self.sigma)

    def to_internal(self, theta: np.ndarray) -> np.ndarray:
        out = np.array(theta, dtype=float, copy=True)
        out[..., 0] = theta[..., 0] - theta[..., 3] * self.mu[0]
        out[..., 1] = theta[..., 1] - theta[..., 4] * self.mu[1]
        out[..., 3] = theta[..., 3] * self.sigma[0]
        out[..., 4] = theta[..., 4] * self.sigma[1]
        return out

    def to_user(self, phi: np.ndarray) -> np.ndarray:
        out = np.array(phi, dtype=float, copy=True)
        out[..., 3] = phi[..., 3] / self.sigma[0]
        out[..., 4] = phi[..., 4] / self.sigma[1]
        out[..., 0] = phi[..., 0] + out[..., 3] * self.mu[0]
        out[..., 1] = phi[..., 1] + out[..., 4] * self.mu[1]
        return out


def _softmax_terms(phi: np.ndarray, prob: _Problem):
    """Residuals r = t − log L̂ and the softmax weights of the three terms, per start and point."""
    z1 = phi[:, 0, None] - phi[:, 3, None] * prob.u
    z2 = phi[:, 1, None] - phi[:, 4, None] * prob.v
    z3 = np.broadcast_to(phi[:, 2, None], z1.shape)
    m = np.maximum(np.maximum(z1, z2), z3)
    e1, e2, e3 = np.exp(z1 - m), np.exp(z2 - m), np.exp(z3 - m)
    s = e1 + e2 + e3
    r = prob.t - (m + np.log(s))
    return r, e1 / s, e2 / s, e3 / s


def _objective(phi: np.ndarray, prob: _Problem, weights: np.ndarray, delta: float) -> np.ndarray:
    r = _softmax_terms(phi, prob)[0]
    return (weights * huber(r, delta)).sum(axis=1)


def _objective_rows(phi, weights, prob, delta):
    return _objective(phi, prob, weights, delta)


def _gradient_hessian_rows(phi, weights, prob, delta):
    return _gradient_hessian(phi, prob, weights, delta)


def _gradient_hessian(phi: np.ndarray, prob: _Problem, weights: np.ndarray, delta: float):
    """Objective, gradient (S, 5) and exact Hessian (S, 5, 5) of the weighted Huber sum."""
    r, w1, w2, w3 = _softmax_terms(phi, prob)
    inside = np.abs(r) <= delta
    psi = np.clip(r, -delta, delta) * weights
    f = (weights * huber(r, delta)).sum(axis=1)
    # g = ∂ log L̂ / ∂φ per point; ∂r/∂φ = −g.
    g = np.stack([w1, w2, w3, -prob.u * w1, -prob.v * w2], axis=2)
    grad = -np.einsum("sp,spi->si", psi, g)
    curv = psi + inside * weights
    hess = np.matmul(np.swapaxes(g * curv[:, :, None], 1, 2), g)
    # Second derivatives of logsumexp within one term: Σ ψ c_i c_j w_k for parameters of term k.
    pw1, pw2 = psi * w1, psi * w2
    s1, s1u, s1uu = pw1.sum(1), (pw1 * prob.u).sum(1), (pw1 * prob.u**2).sum(1)
    s2, s2v, s2vv = pw2.sum(1), (pw2 * prob.v).sum(1), (pw2 * prob.v**2).sum(1)
    s3 = (psi * w3).sum(1)
    hess[:, 0, 0] -= s1
    hess[:, 0, 3] += s1u
    hess[:, 3, 0] += s1u
    hess[:, 3, 3] -= s1uu
    hess[:, 1, 1] -= s2
    hess[:, 1, 4] += s2v
    hess[:, 4, 1] += s2v
    hess[:, 4, 4] -= s2vv
    hess[:, 2, 2] -= s3
    return f, grad, hess


_THREADS = max(1, min(8, os.cpu_count() or 1))
_MIN_ROWS_PER_THREAD = 256
# One batched evaluation holds about 20 float64 arrays of (starts × points); a chunk of starts
# keeps starts × points under this many pairs (4 MB per array), so memory does not grow with
# the number of points.
CHUNK_PAIRS = 1 << 19
# The successive-halving stages rank Epoch's 4,500 starts; with more points than this they rank
# them, and converge the best, on a fixed random subset of this many points ...
EXPLORE_MAX_POINTS = 4096
# ... and the best distinct optima on that subset that converge on all points.
FULL_DATA_STARTS = 4
# Bootstrap replicates × points that one core refits in about a minute (measured with
# benchmarks/bench_rows.py: ~1e-5 s per point-refit); callers refuse more, with a message.
MAX_BOOTSTRAP_WORK = 5_000_000


def _rows(weights: np.ndarray, index) -> np.ndarray:
    """Weights of some starts: shared (P,) weights are the same for every start."""
    return weights if weights.ndim == 1 else weights[index]


def _by_row_chunks(fn, phi: np.ndarray, weights: np.ndarray, *args):
    """Run ``fn(phi, weights, *args)`` on chunks of starts in threads and stitch the results.

    ``weights`` is (P,), shared by all starts, or (S, P). numpy releases the GIL inside its
    array kernels, so independent starts spread over threads use every core; chunks hold at
    most :data:`CHUNK_PAIRS` (start, point) pairs, so memory stays bounded.
    """
    n_rows, n_points = phi.shape[0], max(1, args[0].t.shape[0])
    per_chunk = min(
        max(_MIN_ROWS_PER_THREAD, -(-n_rows // _THREADS)), max(1, CHUNK_PAIRS // n_points)
    )
    bounds = list(range(0, n_rows, per_chunk)) + [n_rows]
    if len(bounds) <= 2:
        return fn(phi, weights, *args)

    def part(i: int):
        rows = slice(bounds[i], bounds[i + 1])
        return fn(phi[rows], _rows(weights, rows), *args)

    with ThreadPoolExecutor(min(_THREADS, len(bounds) - 1)) as pool:
        parts = list(pool.map(part, range(len(bounds) - 1)))
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))
    return np.concatenate(parts)


def _levenberg_marquardt(
    phi: np.ndarray,
    prob: _Problem,
    weights: np.ndarray,
    delta: float,
    max_iter: int,
    ftol: float = 1e-14,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Batched damped Newton: every row of ``phi`` is an independent start.

    ``weights`` is (P,) shared by all starts or (S, P), one weight vector per start (the
    bootstrap). The step solves (|H| + λ·s)Δ = −g in H's eigenbasis, so saddle directions are
    descended too; λ shrinks after a successful step and grows after a failed one. A start stops
    when its objective no longer decreases by more than ``ftol`` relatively.
    """
    phi = np.array(phi, dtype=float, copy=True)
    weights = np.asarray(weights, dtype=float)
    lam = np.full(phi.shape[0], 1e-3)
    f_best = _by_row_chunks(_objective_rows, phi, weights, prob, delta)
    active = np.isfinite(f_best)
    stalls = np.zeros(phi.shape[0], dtype=int)
    it = 0
    while it < max_iter and active.any():
        it += 1
        idx = np.flatnonzero(active)
        w_idx = _rows(weights, idx)
        f, grad, hess = _by_row_chunks(_gradient_hessian_rows, phi[idx], w_idx, prob, delta)
        ev, vec = np.linalg.eigh(hess)
        scale = np.abs(ev).max(axis=1, keepdims=True) + 1e-300
        coef = np.einsum("sji,sj->si", vec, grad) / (np.abs(ev) + lam[idx, None] * scale)
        step = -np.einsum("sij,sj->si", vec, coef)
        trial = phi[idx] + step
        f_trial = _by_row_chunks(_objective_rows, trial, w_idx, prob, delta)
        better = np.isfinite(f_trial) & (f_trial < f)
        phi[idx[better]] = trial[better]
        f_best[idx[better]] = f_trial[better]
        lam[idx] = np.where(better, np.maximum(lam[idx] / 3.0, 1e-12), lam[idx] * 5.0)
        gain = np.where(better, (f - f_trial) / np.maximum(np.abs(f), 1e-300), 0.0)
        stalls[idx] = np.where(gain > ftol, 0, stalls[idx] + 1)
        done = (stalls[idx] >= 6) | (lam[idx] > 1e10)
        active[idx[done]] = False
    return phi, f_best, it, active


def _distinct(thetas: np.ndarray, objectives: np.ndarray, k: int, rtol: float = 1e-3):
    """Indices of up to ``k`` best rows that are not near-copies of a better row."""
    order = np.argsort(objectives)
    chosen: list[int] = []
    for i in order:
        if not np.isfinite(objectives[i]):
            break
        if all(not np.allclose(thetas[i], thetas[j], rtol=rtol, atol=1e-3) for j in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return np.array(chosen, dtype=int)


_LOG_FLOAT_MAX = float(np.log(np.finfo(float).max))


def _check_representable(theta: np.ndarray) -> None:
    """The fitted E, A, B must be doubles; beyond that no number this law gives means much."""
    for name, value in zip(("A", "B", "E"), theta[:3], strict=True):
        if value > _LOG_FLOAT_MAX:
            raise ValueError(
                f"the fitted {name} = e^{value:.1f} overflows double precision in these units; "
                "give N, D and the loss in units nearer 1 (e.g. parameters in millions)"
            )


def fit_chinchilla(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    *,
    huber_delta: float | str = DEFAULT_HUBER_DELTA,
    starts: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    explore: Sequence[tuple[float, int]] = EXPLORE_SCHEDULE,
    n_polish: int = 16,
    max_iter: int = 500,
) -> ChinchillaFit:
    """Fit L(N, D) = E + A/N^α + B/D^β by Epoch's method (see the module docstring).

    ``starts`` are rows (a, b, e, α, β), default :func:`epoch_grid`. Every start takes batched
    Levenberg–Marquardt steps together with all others, in the stages of ``explore``: each
    stage (fraction kept, steps) keeps that fraction of the starts, the best so far, and
    steps them on (successive halving). The ``n_polish`` best distinct starts are then
    iterated to convergence, and the best of those is polished by L-BFGS-B.
    ``weights`` multiply each point's Huber term (integer counts give a bootstrap resample).
    ``huber_delta`` is a number (default ``EPOCH_HUBER_DELTA``, which reproduces Epoch) or
    ``"auto"``, which scales δ to the residuals (module docstring).
    """
    if huber_delta == HUBER_AUTO:
        options = {"weights": weights, "explore": explore, "n_polish": n_polish,
                   "max_iter": max_iter}  # fmt: skip
        return _fit_auto_delta(n, d, loss, starts, options)
    if isinstance(huber_delta, str) or not huber_delta > 0:
        raise ValueError(f"huber_delta must be a positive number or 'auto', got {huber_delta!r}")
    n, d, loss, w = chinchilla_points(n, d, loss, weights)
    prob = _Problem.from_points(n, d, loss)
    theta0 = _starts(starts, n, d, loss)
    phi = prob.to_internal(theta0)
    phi, f, it1, ranking, w_rank = _explore(prob, phi, w, huber_delta, explore, n_polish, n.size)
    best = _distinct(phi, f, n_polish)
    it2 = 0
    if ranking is not prob:  # converge on the subset; all points then move the best few a little
        phi, f, it2, _ = _levenberg_marquardt(phi[best], ranking, w_rank, huber_delta, max_iter)
        f = _by_row_chunks(_objective_rows, phi, w, prob, huber_delta)
        best = _distinct(phi, f, FULL_DATA_STARTS)
    phi, f, it3, still_active = _levenberg_marquardt(phi[best], prob, w, huber_delta, max_iter)
    it2 += it3
    order = np.argsort(f)
    phi, f = phi[order], f[order]
    polished = _polish(phi[0], prob, w, huber_delta)
    if polished is not None and polished[1] < f[0]:
        phi[0], f[0] = polished
    theta = prob.to_user(phi)
    _check_representable(theta[0])
    return ChinchillaFit(
        law=ChinchillaLaw.from_log_params(theta[0]),
        objective=float(f[0]),
        n_points=int(n.size),
        n_starts=int(theta0.shape[0]),
        huber_delta=float(huber_delta),
        iterations=int(it1 + it2),
        converged=not bool(still_active[order[0]]),
        local_optima=tuple(tuple(float(v) for v in row) for row in theta),
    )


def _starts(starts, n, d, loss) -> np.ndarray:
    """The starts as rows (a, b, e, α, β): as given, else Epoch's grid in the data's units."""
    if starts is None:
        return grid_in_data_units(epoch_grid(), n, d, loss)
    return np.atleast_2d(np.asarray(starts, dtype=float))


def _fit_auto_delta(n, d, loss, starts, options: dict) -> ChinchillaFit:
    """``huber_delta="auto"``: a first fit at Epoch's δ, then (when the residuals ask for
    another δ) a second from the first's local optima."""
    first = fit_chinchilla(n, d, loss, huber_delta=EPOCH_HUBER_DELTA, starts=starts, **options)
    delta = scaled_huber_delta(first, n, d, loss)
    rule = f"auto: 1.345 x robust residual scale of a first fit at {EPOCH_HUBER_DELTA:g}"
    if delta == EPOCH_HUBER_DELTA:
        return replace(first, huber_rule=rule)
    second = fit_chinchilla(
        n, d, loss, huber_delta=delta, starts=np.array(first.local_optima), **options
    )
    return replace(second, huber_rule=rule, n_starts=first.n_starts)


def _explore(prob: _Problem, phi, w, delta: float, explore, n_polish: int, n_points: int):
    """Successive halving of the starts (each stage keeps a fraction, the best so far, and
    steps them on), ranked on at most EXPLORE_MAX_POINTS points (a fixed random subset).
    Returns the starts, their objectives, the iterations and the ranking problem."""
    n_starts = phi.shape[0]
    ranking, w_rank = prob, w
    if n_points > EXPLORE_MAX_POINTS:
        sub = np.sort(np.random.default_rng(0).choice(n_points, EXPLORE_MAX_POINTS, replace=False))
        ranking, w_rank = prob.take(sub), w[sub]
    f = _by_row_chunks(_objective_rows, phi, w_rank, ranking, delta)
    iterations = 0
    for fraction, steps in explore:
        keep = max(n_polish, int(np.ceil(fraction * n_starts)))
        order = np.argsort(np.where(np.isfinite(f), f, np.inf))[:keep]
        phi, f, it, _ = _levenberg_marquardt(phi[order], ranking, w_rank, delta, steps)
        iterations += it
    return phi, f, iterations, ranking, w_rank


def scaled_huber_delta(fit: ChinchillaFit, n: ArrayLike, d: ArrayLike, loss: ArrayLike) -> float:
    """δ = 1.345·σ̂ with σ̂ = 1.4826·MAD of the log residuals of ``fit`` (never below 1e-3).

    The classical tuning of Huber's loss to the data's own noise level, as an alternative to
    Epoch's fixed δ = 1e-3 (see benchmarks/bench_huber_delta.py for which predicts better).
    """
    r = np.log(np.asarray(loss, float)) - np.log(fit.law.predict(n, d))
    sigma = robust_scale(r)
    return max(HUBER_TUNING * sigma, EPOCH_HUBER_DELTA)


def _polish(phi0: np.ndarray, prob: _Problem, w: np.ndarray, delta: float):
    """L-BFGS-B from the best batched optimum, with the exact gradient; None if it fails."""

    def fun(p):
        f, g, _ = _gradient_hessian(p[None, :], prob, w[None, :], delta)
        return float(f[0]), g[0]

    try:
        res = minimize(
            fun, phi0, jac=True, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-14}
        )
    except (ValueError, FloatingPointError):
        return None
    if not np.isfinite(res.fun):
        return None
    return np.asarray(res.x), float(res.fun)


def refit_batch(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    weights: np.ndarray,
    starts: ArrayLike,
    *,
    huber_delta: float = EPOCH_HUBER_DELTA,
    max_iter: int = 300,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit many weighted variants of one data set at once (the bootstrap's workhorse).

    ``weights`` is (R, P): one weight vector per replicate. Every replicate is started from
    every row of ``starts`` (K, 5); the best of its K results is returned. Returns the
    parameter rows (R, 5) as (a, b, e, α, β) and their objectives (R,).
    """
    n, d, loss, _ = chinchilla_points(n, d, loss)
    prob = _Problem.from_points(n, d, loss)
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    weights = np.asarray(weights, dtype=float)
    r, k = weights.shape[0], starts.shape[0]
    phi_start = prob.to_internal(starts)
    out_theta, out_f = np.empty((r, 5)), np.empty(r)
    # Replicates are independent: refit them in blocks so the (replicates × starts, points)
    # weight matrix stays bounded (8 × CHUNK_PAIRS pairs per block).
    block = max(1, 8 * CHUNK_PAIRS // (k * n.size))
    for lo in range(0, r, block):
        hi = min(r, lo + block)
        phi0 = np.tile(phi_start, (hi - lo, 1))
        w = np.repeat(weights[lo:hi], k, axis=0)
        phi, f, _, _ = _levenberg_marquardt(phi0, prob, w, huber_delta, max_iter)
        phi, f = phi.reshape(hi - lo, k, 5), f.reshape(hi - lo, k)
        pick = np.argmin(np.where(np.isfinite(f), f, np.inf), axis=1)
        rows = np.arange(hi - lo)
        out_theta[lo:hi], out_f[lo:hi] = prob.to_user(phi[rows, pick]), f[rows, pick]
    return out_theta, out_f
