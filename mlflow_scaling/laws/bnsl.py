"""Smoothly broken power law (Broken Neural Scaling Law; Caballero et al. 2022).

    y = a + b * x**(-c0) * prod_i (1 + (x / d_i)**(1 / f_i))**(-c_i * f_i)

``a`` is the limit (irreducible term), ``b`` the scale, ``c0`` the slope of the first segment
in log-log space, and for each break ``i``: ``d_i`` its location on the x axis, ``c_i`` the change
of slope it brings (> 0 steepens, < 0 flattens) and ``f_i`` its sharpness (small is sharp).
Far past every break the reducible part falls as ``x**(-(c0 + sum c_i))``.

The fit follows the authors: least squares on ``log(y)``, started from the best points of a
brute-force grid. Here every grid point is evaluated at once with numpy (the scale ``b`` of
each start is set in closed form), and the best few are polished with
``scipy.optimize.least_squares`` using an analytic Jacobian, with ``d_i`` and ``f_i`` in log
space, ``b > 0`` and ``a >= 0``. (The authors' script fits ``log(y + 1)`` and scores with
``log(y)``; fitting ``log(y)`` reproduces their 4-digit-addition extrapolation, RMSLE 0.011.)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares
from scipy.special import expit

from .validation import positive_finite

__all__ = ["BrokenPowerLaw", "fit_broken_power_law"]

C0_BOUND = 10.0  # |c0| limit during the fit
C_BOUND = 50.0  # |c_i| limit during the fit
F_MIN, F_MAX = 0.01, 10.0  # sharpness range during the fit
BREAK_MARGIN_DECADES = 1.0  # breaks may sit this far outside the observed x range
_MAX_STARTS = 120_000
_MAX_GRID_POINTS = 48  # the grid is ranked on at most this many points
_GRID_SEED = 20221027  # only used to subsample grids larger than _MAX_STARTS


def _softplus(t: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, t)


@dataclass(frozen=True)
class BrokenPowerLaw:
    """A fitted smoothly broken power law; ``c``, ``d``, ``f`` hold one entry per break."""

    a: float
    b: float
    c0: float
    c: tuple[float, ...]
    d: tuple[float, ...]
    f: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.c) == len(self.d) == len(self.f)):
            raise ValueError(
                f"c, d and f need one entry per break; got {len(self.c)}, {len(self.d)}, "
                f"{len(self.f)}"
            )
        if self.b <= 0 or self.a < 0:
            raise ValueError(f"need b > 0 and a >= 0, got a={self.a!r}, b={self.b!r}")
        if any(v <= 0 for v in self.d + self.f):
            raise ValueError(f"break locations d and sharpnesses f must be > 0: {self.d}, {self.f}")

    @property
    def n_breaks(self) -> int:
        return len(self.c)

    @property
    def breaks(self) -> tuple[float, ...]:
        """Break locations ``d_i`` on the x axis, ascending."""
        return tuple(sorted(self.d))

    def _log_reducible(self, log_x: np.ndarray) -> np.ndarray:
        """``log(b * x**-c0 * prod(...))`` computed without overflow."""
        out = np.log(self.b) - self.c0 * log_x
        for c_i, d_i, f_i in zip(self.c, self.d, self.f, strict=True):
            out = out - c_i * f_i * _softplus((log_x - np.log(d_i)) / f_i)
        return out

    def predict(self, x: ArrayLike) -> np.ndarray:
        """``y`` at ``x`` (> 0)."""
        log_x = np.log(np.asarray(x, dtype=float))
        return self.a + np.exp(self._log_reducible(log_x))

    def local_slope(self, x: ArrayLike) -> np.ndarray:
        """``d log(y) / d log(x)`` at ``x``, analytic.

        The reducible part has slope ``-(c0 + sum_i c_i * sigmoid(log(x / d_i) / f_i))``; the
        limit ``a`` damps it by the share of the reducible part in ``y``.
        """
        log_x = np.log(np.asarray(x, dtype=float))
        slope = np.full_like(log_x, -self.c0)
        for c_i, d_i, f_i in zip(self.c, self.d, self.f, strict=True):
            slope = slope - c_i * expit((log_x - np.log(d_i)) / f_i)
        log_g = self._log_reducible(log_x)
        share = np.exp(log_g - np.logaddexp(np.log(self.a) if self.a > 0 else -np.inf, log_g))
        return slope * share

    def to_dict(self) -> dict[str, object]:
        return {
            "a": float(self.a),
            "b": float(self.b),
            "c0": float(self.c0),
            "c": [float(v) for v in self.c],
            "d": [float(v) for v in self.d],
            "f": [float(v) for v in self.f],
        }


# --- fitting -----------------------------------------------------------------------------
# Internal parameter vector for k breaks, on the centred axis u = log(x) - log(x0):
#   [a_s, beta, c0, c_1..c_k, delta_1..delta_k, phi_1..phi_k]
# with a = a_s * y_scale, log b = beta + c0 * log(x0), d_i = x0 * exp(delta_i), f_i = exp(phi_i).


def _log_reducible_batch(theta: np.ndarray, u: np.ndarray, k: int) -> np.ndarray:
    """Rows of ``theta`` (P, 3 + 3k) -> log of the reducible part at ``u``, shape (P, n)."""
    beta, c0 = theta[:, 1:2], theta[:, 2:3]
    out = beta - c0 * u
    for i in range(k):
        c_i = theta[:, 3 + i : 4 + i]
        delta_i = theta[:, 3 + k + i : 4 + k + i]
        f_i = np.exp(theta[:, 3 + 2 * k + i : 4 + 2 * k + i])
        out = out - c_i * f_i * _softplus((u - delta_i) / f_i)
    return out


def _log_pred(log_g: np.ndarray, a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        log_a = np.log(a)
    return np.logaddexp(log_a, log_g)


def _grid(u: np.ndarray, y: np.ndarray, k: int, fixed: Mapping[str, float]) -> np.ndarray:
    """Brute-force grid of starts (``beta`` still zero: it is set in closed form later)."""
    y_scale = y.max()
    floor_fracs = np.array([0.0, 0.3, 0.6, 0.8, 0.9, 0.97]) if k == 1 else np.array([0, 0.5, 0.9])
    a_s = floor_fracs * y.min() / y_scale
    c0 = np.array([-0.1, 0.0, 0.05, 0.15, 0.3, 0.6, 1.0])
    if k == 1:
        c_vals = np.array([-1.0, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
        n_d, f_vals = 8, np.array([0.05, 0.15, 0.4, 1.0])
    else:
        c_vals = np.array([-1.0, -0.3, -0.1, 0.1, 0.3, 1.0, 4.0])
        n_d, f_vals = 6, np.array([0.1, 0.5])
    if "a" in fixed:
        a_s = np.array([fixed["a"] / y_scale])
    if "c0" in fixed:
        c0 = np.array([fixed["c0"]])
    if "f" in fixed:
        f_vals = np.array([fixed["f"]])
    d_vals = np.linspace(u.min(), u.max(), n_d)

    d_sets = list(itertools.combinations(d_vals, k))  # ascending break locations
    c_sets = list(itertools.product(c_vals, repeat=k))
    f_sets = list(itertools.product(np.log(f_vals), repeat=k))
    idx = np.stack(
        np.meshgrid(
            np.arange(a_s.size),
            np.arange(c0.size),
            np.arange(len(c_sets)),
            np.arange(len(d_sets)),
            np.arange(len(f_sets)),
            indexing="ij",
        ),
        axis=-1,
    ).reshape(-1, 5)
    if idx.shape[0] > _MAX_STARTS:
        rng = np.random.default_rng(_GRID_SEED)
        idx = idx[np.sort(rng.choice(idx.shape[0], _MAX_STARTS, replace=False))]
    c_arr, d_arr, f_arr = np.array(c_sets), np.array(d_sets), np.array(f_sets)
    return np.column_stack(
        [
            a_s[idx[:, 0]],
            np.zeros(idx.shape[0]),
            c0[idx[:, 1]],
            c_arr[idx[:, 2]],
            d_arr[idx[:, 3]],
            f_arr[idx[:, 4]],
        ]
    )


def _set_scale(
    theta: np.ndarray, u: np.ndarray, y: np.ndarray, k: int, y_scale: float
) -> np.ndarray:
    """Closed-form ``beta`` per start: the mean log gap between ``y - a`` and the shape."""
    theta = theta.copy()
    theta[:, 1] = 0.0
    log_shape = _log_reducible_batch(theta, u, k)
    a = theta[:, :1] * y_scale
    gap = np.maximum(y[None, :] - a, 1e-3 * y[None, :])
    theta[:, 1] = np.mean(np.log(gap) - log_shape, axis=1)
    return theta


def _residuals(theta: np.ndarray, u: np.ndarray, log_y: np.ndarray, sw: np.ndarray, k: int, ys):
    log_g = _log_reducible_batch(theta[None, :], u, k)[0]
    return sw * (log_y - _log_pred(log_g, theta[0] * ys))


def _jacobian(theta: np.ndarray, u: np.ndarray, log_y: np.ndarray, sw: np.ndarray, k: int, ys):
    log_g = _log_reducible_batch(theta[None, :], u, k)[0]
    a = theta[0] * ys
    log_p = _log_pred(log_g, a)
    share = np.exp(log_g - log_p)  # d log y_hat / d log g
    jac = np.empty((u.size, theta.size))
    jac[:, 0] = ys * np.exp(-log_p)
    jac[:, 1] = share
    jac[:, 2] = -u * share
    for i in range(k):
        c_i, delta_i = theta[3 + i], theta[3 + k + i]
        f_i = np.exp(theta[3 + 2 * k + i])
        t = (u - delta_i) / f_i
        sp, sig = _softplus(t), expit(t)
        jac[:, 3 + i] = -f_i * sp * share
        jac[:, 3 + k + i] = c_i * sig * share
        jac[:, 3 + 2 * k + i] = -c_i * f_i * (sp - t * sig) * share
    return -sw[:, None] * jac


def _parametrisation(
    k: int, fixed: Mapping[str, float], final_slope: float | None, y_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Affine map ``theta = T @ free + offset`` from the free parameters to the full vector.

    Returns ``(T, offset, free_index)``; ``free_index`` lists the full-vector positions that
    are free (used for the bounds and the starting point).
    """
    n_full = 3 + 3 * k
    is_free = np.ones(n_full, dtype=bool)
    offset = np.zeros(n_full)
    if "a" in fixed:
        is_free[0], offset[0] = False, fixed["a"] / y_scale
    if "c0" in fixed:
        is_free[2], offset[2] = False, fixed["c0"]
    if "f" in fixed:
        is_free[3 + 2 * k :], offset[3 + 2 * k :] = False, np.log(fixed["f"])
    last_c = 3 + k - 1
    if final_slope is not None:
        is_free[last_c] = False
    free_index = np.flatnonzero(is_free)
    T = np.zeros((n_full, free_index.size))
    T[free_index, np.arange(free_index.size)] = 1.0
    if final_slope is not None:  # c_k = final_slope - c0 - sum(c_1..c_{k-1})
        offset[last_c] = final_slope - offset[2]
        for i in [2, *range(3, last_c)]:
            if is_free[i]:
                T[last_c, np.searchsorted(free_index, i)] = -1.0
    return T, offset, free_index


def _free_residuals(theta_free, T, offset, u, log_y, sw, k, ys):
    return _residuals(T @ theta_free + offset, u, log_y, sw, k, ys)


def _free_jacobian(theta_free, T, offset, u, log_y, sw, k, ys):
    return _jacobian(T @ theta_free + offset, u, log_y, sw, k, ys) @ T


def fit_broken_power_law(
    x: ArrayLike,
    y: ArrayLike,
    n_breaks: int = 1,
    *,
    weights: ArrayLike | None = None,
    fixed: Mapping[str, float] | None = None,
    final_slope: float | None = None,
    n_polish: int = 4,
    max_nfev: int = 300,
) -> tuple[BrokenPowerLaw, float]:
    """Fit a smoothly broken power law with ``n_breaks`` breaks by least squares on ``log(y)``.

    All starts of a brute-force grid over ``(a, c0, c_i, d_i, f_i)`` (``b`` in closed form)
    are scored together; the ``n_polish`` best are refined with ``least_squares`` (at most
    ``max_nfev`` evaluations each) under the bounds ``a in [0, max(y)]``, ``|c0| <= 10``,
    ``|c_i| <= 50``, ``f_i in [0.01, 10]`` and ``d_i`` within one decade of the observed x
    range.

    ``fixed`` holds parameters at given values instead of fitting them: ``"a"`` (the limit,
    e.g. ``{"a": 0.0}``), ``"c0"`` (the first slope) and ``"f"`` (one sharpness for every
    break). ``final_slope`` ties the last break's slope change so that the reducible part ends
    with slope ``c0 + sum(c_i) = final_slope`` in log-log space (``final_slope=0``: the curve
    levels off above ``a``). Fewer free parameters make the law usable, and comparable by an
    information criterion, on fewer points.

    Returns the law (breaks in ascending order) and its objective: the weighted sum of squared
    log residuals, ``sum_i w_i * (log y_i - log y_hat_i)**2``.
    """
    x_arr, y_arr, w, k, fixed = _checked(x, y, n_breaks, weights, fixed, final_slope)

    log_x0 = float(np.mean(np.log(x_arr)))
    u = np.log(x_arr) - log_x0
    log_y = np.log(y_arr)
    y_scale = float(y_arr.max())
    sw = np.sqrt(w)

    T, offset, free_index = _parametrisation(k, fixed, final_slope, y_scale)
    starts, order = _ranked_starts(u, y_arr, log_y, w, k, fixed, final_slope, y_scale)

    best_theta, best_cost = _polished(
        starts, order[: max(1, n_polish)], free_index, T, offset, u, log_y, sw, k, y_scale,
        max_nfev,
    )  # fmt: skip
    return _to_law(best_theta, k, log_x0, y_scale), best_cost


def _polished(starts, chosen, free_index, T, offset, u, log_y, sw, k, y_scale, max_nfev):
    """The best of the ``chosen`` starts after bounded least squares (trust region) on the
    free parameters, or the best start itself when no polish improves on it."""
    lower, upper = _bounds(u, k, free_index)
    best_theta = starts[chosen[0]]
    best_cost = float(np.sum(_residuals(best_theta, u, log_y, sw, k, y_scale) ** 2))
    for idx in chosen:
        x0 = np.clip(starts[idx][free_index], lower, upper)
        res = least_squares(
            _free_residuals,
            x0,
            jac=_free_jacobian,
            bounds=(lower, upper),
            args=(T, offset, u, log_y, sw, k, y_scale),
            method="trf",
            x_scale="jac",
            ftol=1e-8,
            xtol=1e-8,
            gtol=1e-8,
            max_nfev=max_nfev,
        )
        value = float(np.sum(res.fun**2))
        if np.isfinite(value) and value < best_cost:
            best_theta, best_cost = T @ res.x + offset, value

    return best_theta, best_cost


def _checked(x, y, n_breaks, weights, fixed, final_slope):
    """The inputs of :func:`fit_broken_power_law` as arrays, or ``ValueError`` naming the
    culprit: (x, y, weights, number of breaks, fixed parameters)."""
    if not isinstance(n_breaks, int | np.integer) or n_breaks < 1:
        raise ValueError(f"n_breaks must be a positive integer, got {n_breaks!r}")
    x_arr = np.asarray(x, dtype=float).ravel()
    y_arr = np.asarray(y, dtype=float).ravel()
    if x_arr.shape != y_arr.shape:
        raise ValueError(f"x has {x_arr.size} values but y has {y_arr.size}")
    positive_finite(x_arr, "x")
    positive_finite(y_arr, "y")
    if np.unique(x_arr).size < 2:
        raise ValueError("x must take at least 2 distinct values")
    w = np.ones_like(x_arr) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != x_arr.shape or np.any(~np.isfinite(w) | (w < 0)) or not np.any(w > 0):
        raise ValueError("weights must be finite, >= 0, not all zero, one per point")
    k = int(n_breaks)
    fixed = dict(fixed or {})
    unknown = set(fixed) - {"a", "c0", "f"}
    if unknown:
        raise ValueError(f"only 'a', 'c0' and 'f' can be fixed, got {sorted(unknown)}")
    if fixed.get("a", 0.0) < 0 or not np.isfinite(fixed.get("a", 0.0)):
        raise ValueError(f"fixed a must be finite and >= 0, got {fixed['a']!r}")
    if "f" in fixed and not F_MIN <= fixed["f"] <= F_MAX:
        raise ValueError(f"fixed f must lie in [{F_MIN}, {F_MAX}], got {fixed['f']!r}")
    if abs(fixed.get("c0", 0.0)) > C0_BOUND:
        raise ValueError(f"fixed c0 must lie in [-{C0_BOUND}, {C0_BOUND}], got {fixed['c0']!r}")
    if final_slope is not None and not np.isfinite(final_slope):
        raise ValueError(f"final_slope must be finite, got {final_slope!r}")
    return x_arr, y_arr, w, k, fixed


def _ranked_starts(u, y_arr, log_y, w, k: int, fixed, final_slope, y_scale: float):
    """The brute-force grid's starts and their order by objective, ranked on at most
    ``_MAX_GRID_POINTS`` points spread along x (the polish then uses all)."""
    grid = _grid(u, y_arr, k, fixed)
    if final_slope is not None:
        grid[:, 3 + k - 1] = final_slope - grid[:, 2] - grid[:, 3 : 3 + k - 1].sum(axis=1)
        grid = np.unique(grid, axis=0)
    sub = np.argsort(u, kind="stable")
    if sub.size > _MAX_GRID_POINTS:
        sub = sub[np.round(np.linspace(0, sub.size - 1, _MAX_GRID_POINTS)).astype(int)]
    starts = _set_scale(grid, u[sub], y_arr[sub], k, y_scale)
    log_pred = _log_pred(_log_reducible_batch(starts, u[sub], k), starts[:, :1] * y_scale)
    cost = np.sum(w[sub] * (log_y[sub] - log_pred) ** 2, axis=1)
    cost[~np.isfinite(cost)] = np.inf
    order = np.argsort(cost, kind="stable")
    return starts, order


def _bounds(u, k: int, free_index):
    """Bounds of the free parameters: a in [0, 1]·max(y), |c0| <= C0_BOUND, |c_i| <= C_BOUND,
    breaks within BREAK_MARGIN_DECADES of the observed x, sharpness in [F_MIN, F_MAX]."""
    margin = BREAK_MARGIN_DECADES * np.log(10.0)
    lower = np.concatenate(
        [[0.0, -np.inf, -C0_BOUND], np.full(k, -C_BOUND), np.full(k, u.min() - margin),
         np.full(k, np.log(F_MIN))]
    )  # fmt: skip
    upper = np.concatenate(
        [[1.0, np.inf, C0_BOUND], np.full(k, C_BOUND), np.full(k, u.max() + margin),
         np.full(k, np.log(F_MAX))]
    )  # fmt: skip
    lower, upper = lower[free_index], upper[free_index]
    return lower, upper


def _to_law(theta: np.ndarray, k: int, log_x0: float, y_scale: float) -> BrokenPowerLaw:
    c = theta[3 : 3 + k]
    d = np.exp(theta[3 + k : 3 + 2 * k] + log_x0)
    f = np.exp(theta[3 + 2 * k : 3 + 3 * k])
    order = np.argsort(d)
    return BrokenPowerLaw(
        a=float(max(theta[0], 0.0) * y_scale),
        b=float(np.exp(theta[1] + theta[2] * log_x0)),
        c0=float(theta[2]),
        c=tuple(float(v) for v in c[order]),
        d=tuple(float(v) for v in d[order]),
        f=tuple(float(v) for v in f[order]),
    )
