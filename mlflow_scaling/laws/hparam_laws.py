"""Laws across cells: the optimal learning rate and batch as power laws, chosen by held-out error.

Two forms, each linear in logs, log y = x·θ:

* ``step_law`` (Li et al. 2025): η_opt = c·N^a·D^b, and B_opt = c·D^b (the batch on D alone);
* ``deepseek`` (DeepSeek LLM 2024): η_opt = c·C^a and B_opt = c·C^a, with C the cells' compute.

**Fit.** Least squares on the cells whose optimum on that axis was fitted. Cells whose optimum
is on the grid's edge only bound it (log y > b above the top edge, < b below the bottom one);
dropping them would bias the law towards the optima that happened to fall inside their grids
(on Misfitting, 43 of 79 cells sit on the largest learning rate tried). With such cells the fit
is the censored (Tobit) maximum likelihood with a common log-scatter σ:
Σ_fitted [log σ + ½((y − x·θ)/σ)²] − Σ_bounded log Φ(±(x·θ − b)/σ). On Misfitting's held-out
sizes this brought the mean loss gap at the predicted η from 0.21 % to 0.06 %
(benchmarks/bench_hparams.py, docs/hparams.md). Too few values and non-convex cells say nothing.

**Choice.** Leave-one-cell-out: refit without each cell, predict its log optimum; the RMS of
those log errors is ``loo_error``. The form with the smaller one is chosen (a form needs
more cells than coefficients, and its variables must vary across the cells).

**Interval at a target** (log scale, ``level``): the law's own standard error
se² = s²·x₀ᵀ(XᵀX)⁻¹x₀ (s² the residual variance over n − p dof), widened for extrapolation the
way the loss intervals are (:mod:`.extrapolation`): holding out the cells in the top h decades
of N and, separately, of C (h in :data:`~.extrapolation.HOLDOUT_DECADES`), refitting and
predicting them gives residuals r at distances δ (decades past the refit's largest N or C);
E[r²] = σ² + g²·δ² gives the growth g per decade (σ the full fit's robust residual scale).
The half-width is sqrt((t·se)² + (t'·g·δ)²), t with n − p dof, t' with the number of held-out
sizes. Where no holdout refit is possible, g is the stated prior :data:`PRIOR_GROWTH`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from .extrapolation import HOLDOUT_DECADES
from .scatter import robust_scale

STEP_LAW, DEEPSEEK = "step_law", "deepseek"
PRIOR_GROWTH = 0.2
"""Extra log-error per decade of extrapolation (one standard deviation) of an optimal
hyperparameter where the sweep is too small to measure its own: about 20 % per decade, a
stated prior (Step Law's and DeepSeek's fits differ by more across a decade of C)."""
FORM_VARIABLES = {
    ("lr", STEP_LAW): ("N", "D"),
    ("batch", STEP_LAW): ("D",),
    ("lr", DEEPSEEK): ("C",),
    ("batch", DEEPSEEK): ("C",),
}


def _design(variables: tuple[str, ...], n, d, c) -> np.ndarray:
    cols = {"N": n, "D": d, "C": c}
    return np.column_stack([np.ones(np.size(n))] + [np.log(cols[v]) for v in variables])


@dataclass(frozen=True)
class PowerLaw:
    """log y = log c + Σ exponent·log variable, fitted on ``n_cells`` cells."""

    target: str
    form: str
    variables: tuple[str, ...]
    theta: np.ndarray
    xtx_inv: np.ndarray
    scale: float
    n_cells: int
    loo_error: float
    growth: float
    growth_dof: int
    growth_method: str
    n_max: float
    c_max: float

    def log_predict(self, n, d, c) -> np.ndarray:
        return _design(self.variables, n, d, c) @ self.theta

    def interval(self, n, d, c, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, lo, hi) at targets, widened by the extrapolation distance (module doc)."""
        x0 = _design(self.variables, n, d, c)
        mean = x0 @ self.theta
        se = self.scale * np.sqrt(np.einsum("ij,jk,ik->i", x0, self.xtx_inv, x0))
        q = (1 + level) / 2
        dof = max(self.n_cells - self.theta.size, 1)
        dist = np.maximum(
            np.maximum(np.log10(np.asarray(n) / self.n_max), np.log10(np.asarray(c) / self.c_max)),
            0.0,
        )
        half = np.hypot(stats.t.ppf(q, dof) * se,
                        stats.t.ppf(q, self.growth_dof) * self.growth * dist)  # fmt: skip
        return np.exp(mean), np.exp(mean - half), np.exp(mean + half)

    def to_dict(self) -> dict:
        return {
            "form": self.form,
            "coef": float(np.exp(self.theta[0])),
            "exponents": {v: float(e) for v, e in zip(self.variables, self.theta[1:], strict=True)},
            "loo_error": self.loo_error,
        }


@dataclass(frozen=True)
class LawCells:
    """The cells a law is fitted on: those with a fitted optimum (``values``), and the edge
    cells whose optimum is only bounded: above ``bounds`` where ``sides`` is +1, below where
    it is -1 (natural units; empty arrays when there are none)."""

    n: np.ndarray
    d: np.ndarray
    c: np.ndarray
    values: np.ndarray
    bn: np.ndarray
    bd: np.ndarray
    bc: np.ndarray
    bounds: np.ndarray
    sides: np.ndarray

    def subset(self, keep: np.ndarray, keep_bounds: np.ndarray) -> LawCells:
        return LawCells(self.n[keep], self.d[keep], self.c[keep], self.values[keep],
                        self.bn[keep_bounds], self.bd[keep_bounds], self.bc[keep_bounds],
                        self.bounds[keep_bounds], self.sides[keep_bounds])  # fmt: skip


def censored_fit(x, y, xb, b, side) -> np.ndarray:
    """Least squares on the fitted cells; with bounded cells, the censored (Tobit) maximum
    likelihood: Σ [log σ + ½ r²/σ²] − Σ log Φ(side·(x_b·θ − b)/σ), from the least squares."""
    theta = np.linalg.lstsq(x, y, rcond=None)[0]
    if b.size == 0:
        return theta
    start = np.log(max(float(np.std(y - x @ theta)), 0.05))

    def nll(p):
        th, sigma = p[:-1], np.exp(p[-1])
        r = (y - x @ th) / sigma
        return (
            y.size * p[-1] + 0.5 * r @ r - np.sum(stats.norm.logcdf(side * (xb @ th - b) / sigma))
        )

    bounds = [(None, None)] * theta.size + [(np.log(1e-4), None)]
    res = optimize.minimize(nll, np.r_[theta, start], method="L-BFGS-B", bounds=bounds)
    return res.x[:-1] if np.all(np.isfinite(res.x)) else theta


def _arrays(variables, cells: LawCells):
    x = _design(variables, cells.n, cells.d, cells.c)
    xb = _design(variables, cells.bn, cells.bd, cells.bc)
    return x, np.log(cells.values), xb, np.log(cells.bounds), cells.sides


def _loo_error(variables, cells: LawCells) -> float:
    x, y, xb, b, side = _arrays(variables, cells)
    errors = []
    for i in range(y.size):
        keep = np.arange(y.size) != i
        errors.append(y[i] - x[i] @ censored_fit(x[keep], y[keep], xb, b, side))
    return float(np.sqrt(np.mean(np.square(errors))))


def _growth(variables, cells: LawCells, theta) -> tuple[float, int, str]:
    """(growth per decade, dof, method) from by-distance holdouts (module docstring)."""
    x, y, xb, b, side = _arrays(variables, cells)
    noise = robust_scale(y - x @ theta)
    r, dist, held, seen = [], [], [], set()
    for axis, axis_b in ((cells.n, cells.bn), (cells.c, cells.bc)):
        for h in HOLDOUT_DECADES:
            cut = axis.max() * 10.0 ** (-h) * (1 + 1e-9)
            train, train_b = axis <= cut, axis_b <= cut
            key = train.tobytes()
            if train.all() or key in seen or train.sum() <= x.shape[1]:
                continue
            if np.linalg.matrix_rank(x[train]) < x.shape[1]:
                continue
            seen.add(key)
            test = ~train
            fit = censored_fit(x[train], y[train], xb[train_b], b[train_b], side[train_b])
            r.append(y[test] - x[test] @ fit)
            n_max, c_max = cells.n[train].max(), cells.c[train].max()
            beyond = np.maximum(np.log10(cells.n[test] / n_max), np.log10(cells.c[test] / c_max))
            dist.append(np.maximum(beyond, 0))
            held.append(cells.n[test])
    if not r:
        return PRIOR_GROWTH, max(y.size - x.shape[1], 1), "prior"
    r, dist = np.concatenate(r), np.concatenate(dist)
    w = dist**2
    g2 = float(np.sum((r**2 - noise**2) * w) / max(np.sum(w**2), 1e-300))
    return float(np.sqrt(max(g2, 0.0))), max(np.unique(np.concatenate(held)).size, 1), "holdout"


def fit_form(target: str, form: str, cells: LawCells) -> PowerLaw | str:
    """The law of one form, or why it cannot be fitted on these cells."""
    variables = FORM_VARIABLES[(target, form)]
    x, y, xb, b, side = _arrays(variables, cells)
    p = x.shape[1]
    if y.size < p + 1:
        return f"{y.size} cells with a fitted optimum; the {form} form needs at least {p + 1}"
    if np.linalg.matrix_rank(x) < p:
        return f"the cells do not vary {' and '.join(variables)} independently"
    theta = censored_fit(x, y, xb, b, side)
    resid = y - x @ theta
    scale = float(np.sqrt(np.sum(resid**2) / (y.size - p)))
    growth, growth_dof, method = _growth(variables, cells, theta)
    return PowerLaw(target, form, variables, theta, np.linalg.inv(x.T @ x), scale, y.size,
                    _loo_error(variables, cells), growth, growth_dof, method,
                    float(cells.n.max()), float(cells.c.max()))  # fmt: skip


@dataclass(frozen=True)
class ChosenLaw:
    """The chosen law for one hyperparameter, with the other form (or why none was fitted)."""

    target: str
    law: PowerLaw | None
    candidates: tuple[PowerLaw, ...]
    reasons: tuple[str, ...]

    def to_dict(self) -> dict | None:
        return None if self.law is None else self.law.to_dict()

    def describe(self) -> str:
        if self.law is None:
            return f"{self.target}: no law ({'; '.join(self.reasons)})"
        others = [f"{p.form} {p.loo_error:.3g}" for p in self.candidates if p is not self.law]
        others += list(self.reasons)
        return (
            f"{self.target}: {self.law.form} chosen, leave-one-cell-out log error "
            f"{self.law.loo_error:.3g}"
            + (f" (vs {'; '.join(others)})" if others else "")
            + f"; extrapolation growth {self.law.growth:.3g}/decade ({self.law.growth_method})"
        )


def choose_law(target: str, cells: LawCells) -> ChosenLaw:
    """Both forms fitted where possible; the one with the smaller leave-one-cell-out error."""
    fits, reasons = [], []
    for form in (STEP_LAW, DEEPSEEK):
        result = fit_form(target, form, cells)
        if isinstance(result, str):
            reasons.append(f"{form}: {result}")
        else:
            fits.append(result)
    best = min(fits, key=lambda p: (p.loo_error, p.theta.size), default=None)
    return ChosenLaw(target, best, tuple(fits), tuple(reasons))


def law_dict_value(law: dict, n, d) -> np.ndarray:
    """A law in its :meth:`PowerLaw.to_dict` form (``coef``, ``exponents`` over N, D or
    C = 6ND) at (N, D): what readers of ``fit.json`` evaluate it with."""
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    variables = {"N": n, "D": d, "C": 6.0 * n * d}
    out = np.full(np.broadcast(n, d).shape, float(law["coef"]))
    for name, exponent in law["exponents"].items():
        out = out * variables[name] ** float(exponent)
    return out
