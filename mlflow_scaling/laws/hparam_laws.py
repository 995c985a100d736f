"""Laws across cells: the optimal learning rate and batch as power laws, chosen by held-out error.

Two forms, each linear in logs and fitted by least squares on the cells whose optimum on that
axis was fitted (not an edge, not too few values):

* ``step_law`` (Li et al. 2025): η_opt = c·N^a·D^b, and B_opt = c·D^b (the batch on D alone);
* ``deepseek`` (DeepSeek LLM 2024): η_opt = c·C^a and B_opt = c·C^a, with C the cells' compute.

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
from scipy import stats

from .extrapolation import HOLDOUT_DECADES, robust_scale

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


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(x, y, rcond=None)[0]


def _loo_error(x: np.ndarray, y: np.ndarray) -> float:
    errors = []
    for i in range(y.size):
        keep = np.arange(y.size) != i
        errors.append(y[i] - x[i] @ _lstsq(x[keep], y[keep]))
    return float(np.sqrt(np.mean(np.square(errors))))


def _growth(x, y, n, c, theta) -> tuple[float, int, str]:
    """(growth per decade, dof, method) from by-distance holdouts (module docstring)."""
    noise = robust_scale(y - x @ theta)
    r, dist, held, seen = [], [], [], set()
    for axis in (n, c):
        for h in HOLDOUT_DECADES:
            train = axis <= axis.max() * 10.0 ** (-h) * (1 + 1e-9)
            key = train.tobytes()
            if train.all() or key in seen or train.sum() <= x.shape[1]:
                continue
            if np.linalg.matrix_rank(x[train]) < x.shape[1]:
                continue
            seen.add(key)
            test = ~train
            r.append(y[test] - x[test] @ _lstsq(x[train], y[train]))
            beyond_n = np.log10(n[test] / n[train].max())
            dist.append(np.maximum(np.maximum(beyond_n, np.log10(c[test] / c[train].max())), 0))
            held.append(n[test])
    if not r:
        return PRIOR_GROWTH, max(y.size - x.shape[1], 1), "prior"
    r, dist = np.concatenate(r), np.concatenate(dist)
    w = dist**2
    g2 = float(np.sum((r**2 - noise**2) * w) / max(np.sum(w**2), 1e-300))
    return float(np.sqrt(max(g2, 0.0))), max(np.unique(np.concatenate(held)).size, 1), "holdout"


def fit_form(target: str, form: str, n, d, c, values) -> PowerLaw | str:
    """The law of one form, or why it cannot be fitted on these cells."""
    variables = FORM_VARIABLES[(target, form)]
    x, y = _design(variables, n, d, c), np.log(values)
    p = x.shape[1]
    if y.size < p + 1:
        return f"{y.size} cells with a fitted optimum; the {form} form needs at least {p + 1}"
    if np.linalg.matrix_rank(x) < p:
        return f"the cells do not vary {' and '.join(variables)} independently"
    theta = _lstsq(x, y)
    resid = y - x @ theta
    dof = y.size - p
    scale = float(np.sqrt(np.sum(resid**2) / dof))
    growth, growth_dof, method = _growth(x, y, n, c, theta)
    return PowerLaw(target, form, variables, theta, np.linalg.inv(x.T @ x), scale, y.size,
                    _loo_error(x, y), growth, growth_dof, method, float(n.max()),
                    float(c.max()))  # fmt: skip


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


def choose_law(target: str, n, d, c, values) -> ChosenLaw:
    """Both forms fitted where possible; the one with the smaller leave-one-cell-out error."""
    fits, reasons = [], []
    for form in (STEP_LAW, DEEPSEEK):
        result = fit_form(target, form, n, d, c, values)
        if isinstance(result, str):
            reasons.append(f"{form}: {result}")
        else:
            fits.append(result)
    best = min(fits, key=lambda p: (p.loo_error, p.theta.size), default=None)
    return ChosenLaw(target, best, tuple(fits), tuple(reasons))
