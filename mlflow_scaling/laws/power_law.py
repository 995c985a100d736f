"""One-axis saturating power law ``L(x) = E + A * x**(-alpha)``, fitted the robust way.

The axis ``x`` is any one of the scaling axes: parameters N, tokens D or compute C.

The fit follows the recipe the Chinchilla/Epoch fits use for the two-axis law (Hoffmann et al.
2022, App. D; Besiroglu et al. 2024): predict in log space,
``log L_hat = logaddexp(log A - alpha * log x, log E)``, and minimise the **sum** (not the mean)
of a Huber loss on the log residuals ``log L - log L_hat``. All grid starts are evaluated
together with numpy; the best few are polished with L-BFGS-B (with ``huber_delta=inf``, plain
least squares, with ``least_squares``) and the best polished one wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares, minimize

from .fitting import CHUNK_PAIRS, huber
from .validation import positive_finite

__all__ = ["SaturatingPowerLaw", "fit_saturating_power_law", "huber"]

ALPHA_MAX = 10.0
_ALPHA_GRID = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
# Starting floors E as fractions of the smallest observed loss.
_FLOOR_FRACTIONS = np.array([1e-4, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99])
# Multipliers on the data-implied amplitude A for each (alpha, E) start.
_AMPLITUDE_FACTORS = np.log(np.array([1 / 3, 1.0, 3.0]))
_N_POLISHED = 4


@dataclass(frozen=True)
class SaturatingPowerLaw:
    """``L(x) = E + A * x**(-alpha)``: irreducible term E, amplitude A, exponent alpha."""

    E: float
    A: float
    alpha: float

    def _reducible(self, x: ArrayLike) -> np.ndarray:
        log_x = np.log(np.asarray(x, dtype=float))
        with np.errstate(divide="ignore"):  # A = 0 is a flat law
            return np.exp(np.log(self.A) - self.alpha * log_x)

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Loss predicted at ``x`` (> 0)."""
        return self.E + self._reducible(x)

    def local_slope(self, x: ArrayLike) -> np.ndarray:
        """``d log L / d log x`` at ``x``: ``-alpha * (L - E) / L`` (0 where the law is flat)."""
        reducible = self._reducible(x)
        if self.E == 0:
            return np.full_like(reducible, -self.alpha)
        return -self.alpha * reducible / (self.E + reducible)

    def to_dict(self) -> dict[str, float]:
        return {"E": float(self.E), "A": float(self.A), "alpha": float(self.alpha)}


def _validated(
    x: ArrayLike, loss: ArrayLike, weights: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x_arr = np.asarray(x, dtype=float).ravel()
    y_arr = np.asarray(loss, dtype=float).ravel()
    if x_arr.shape != y_arr.shape:
        raise ValueError(f"x has {x_arr.size} values but loss has {y_arr.size}")
    if x_arr.size < 3:
        raise ValueError(f"need at least 3 points to fit 3 parameters, got {x_arr.size}")
    positive_finite(x_arr, "x")
    positive_finite(y_arr, "loss")
    if np.unique(x_arr).size < 2:
        raise ValueError("x must take at least 2 distinct values")
    if weights is None:
        w = np.ones_like(x_arr)
    else:
        w = np.asarray(weights, dtype=float).ravel()
        if w.shape != x_arr.shape:
            raise ValueError(f"weights has {w.size} values but x has {x_arr.size}")
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if bad.size:
            raise ValueError(
                f"weights must be finite and >= 0; index {bad[0]} has {float(w[bad[0]])!r}"
            )
        if not np.any(w > 0):
            raise ValueError("all weights are zero")
    return x_arr, y_arr, w


def _by_row_chunks(fn, n_rows: int, n_points: int) -> np.ndarray:
    """``fn(rows)`` over slices of rows, each with rows × points <= CHUNK_PAIRS, stitched."""
    step = max(1, CHUNK_PAIRS // max(1, n_points))
    return np.concatenate([fn(slice(i, i + step)) for i in range(0, n_rows, step)])


def _objective_batch(
    theta: np.ndarray, u: np.ndarray, log_y: np.ndarray, w: np.ndarray, delta: float
) -> np.ndarray:
    """Summed weighted Huber objective for a batch of parameter rows ``(a, alpha, e)``."""

    def rows(sl: slice) -> np.ndarray:
        a, alpha, e = theta[sl, :1], theta[sl, 1:2], theta[sl, 2:3]
        log_pred = np.logaddexp(a - alpha * u, e)
        return (w * huber(log_y - log_pred, delta)).sum(axis=1)

    return _by_row_chunks(rows, theta.shape[0], u.size)


def _objective_and_grad(
    theta: np.ndarray, u: np.ndarray, log_y: np.ndarray, w: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    a, alpha, e = theta
    t_power = a - alpha * u
    log_pred = np.logaddexp(t_power, e)
    r = log_y - log_pred
    value = float(np.sum(w * huber(r, delta)))
    # d huber / d r = clip(r, -delta, delta); d r / d log_pred = -1.
    dr = -w * np.clip(r, -delta, delta)
    share_power = np.exp(t_power - log_pred)  # softmax weight of the power-law term
    grad = np.array(
        [
            np.sum(dr * share_power),
            np.sum(dr * share_power * -u),
            np.sum(dr * (1.0 - share_power)),
        ]
    )
    return value, grad


def _grid_starts(u: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Data-driven grid of ``(a, alpha, e)`` starts (a is log A on the centred axis)."""
    alpha, frac, factor = np.meshgrid(
        _ALPHA_GRID, _FLOOR_FRACTIONS, _AMPLITUDE_FACTORS, indexing="ij"
    )
    alpha, frac, factor = alpha.ravel(), frac.ravel(), factor.ravel()
    floor = frac * y.min()

    def median_amplitude(sl: slice) -> np.ndarray:
        # Amplitude implied by each point once the floor is removed; its median is the start.
        excess = np.maximum(y[None, :] - floor[sl, None], 1e-12 * y.max())
        return np.median(np.log(excess) + alpha[sl, None] * u[None, :], axis=1)

    a = _by_row_chunks(median_amplitude, floor.size, y.size) + factor
    return np.column_stack([a, alpha, np.log(floor)])


def _polish_least_squares(
    theta0: np.ndarray,
    u: np.ndarray,
    log_y: np.ndarray,
    w: np.ndarray,
    bounds: list[tuple[float | None, float | None]],
) -> np.ndarray:
    sw = np.sqrt(w)

    def residuals(theta: np.ndarray) -> np.ndarray:
        a, alpha, e = theta
        return sw * (log_y - np.logaddexp(a - alpha * u, e))

    def jacobian(theta: np.ndarray) -> np.ndarray:
        a, alpha, e = theta
        t_power = a - alpha * u
        share = np.exp(t_power - np.logaddexp(t_power, e))
        return -sw[:, None] * np.column_stack([share, -u * share, 1.0 - share])

    lower = np.array([-np.inf if lo is None else lo for lo, _ in bounds])
    upper = np.array([np.inf if hi is None else hi for _, hi in bounds])
    res = least_squares(
        residuals,
        np.clip(theta0, lower, upper),
        jac=jacobian,
        bounds=(lower, upper),
        method="trf",
        x_scale="jac",
        ftol=1e-10,
        xtol=1e-10,
        gtol=1e-10,
        max_nfev=200,
    )
    return res.x


def fit_saturating_power_law(
    x: ArrayLike,
    loss: ArrayLike,
    weights: ArrayLike | None = None,
    huber_delta: float = 1e-3,
) -> tuple[SaturatingPowerLaw, float]:
    """Fit ``L = E + A * x**(-alpha)`` robustly in log space.

    Minimises ``sum_i w_i * Huber_delta(log L_i - logaddexp(log A - alpha log x_i, log E))``.
    ``huber_delta = inf`` is plain least squares on log residuals. ``alpha`` is kept in
    ``[0, 10]``; ``E`` and ``A`` are positive by construction.

    Returns the fitted law and the objective value at the optimum.
    """
    x_arr, y_arr, w = _validated(x, loss, weights)
    if not huber_delta > 0:
        raise ValueError(f"huber_delta must be > 0, got {huber_delta!r}")
    log_x = np.log(x_arr)
    log_x0 = float(np.mean(log_x))  # centre the axis: conditions A on any scale of x
    u = log_x - log_x0
    log_y = np.log(y_arr)

    starts = _grid_starts(u, y_arr)
    values = _objective_batch(starts, u, log_y, w, huber_delta)
    order = np.argsort(values, kind="stable")

    e_low = float(np.log(y_arr.min())) - 40.0  # E may be ~0: log E is bounded, not E
    bounds = [(None, None), (0.0, ALPHA_MAX), (e_low, None)]
    best_theta, best_value = starts[order[0]], float(values[order[0]])
    for idx in order[:_N_POLISHED]:
        if np.isinf(huber_delta):  # plain least squares: Gauss-Newton converges far faster
            theta = _polish_least_squares(starts[idx], u, log_y, w, bounds)
            value = float(_objective_batch(theta[None, :], u, log_y, w, huber_delta)[0])
            if np.isfinite(value) and value < best_value:
                best_theta, best_value = theta, value
            continue
        res = minimize(
            _objective_and_grad,
            starts[idx],
            args=(u, log_y, w, huber_delta),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-13, "gtol": 1e-10, "maxiter": 500},
        )
        if np.isfinite(res.fun) and res.fun < best_value:
            best_theta, best_value = res.x, float(res.fun)

    a, alpha, e = (float(v) for v in best_theta)
    law = SaturatingPowerLaw(E=float(np.exp(e)), A=float(np.exp(a + alpha * log_x0)), alpha=alpha)
    return law, best_value
