"""Shift or slope: is the candidate the baseline moved by one compute multiplier, or does it
scale differently?

Two nested models of both families' runs together, fitted by least squares on log loss:

* **shift** (6 parameters): one law (E, A, B, α, β) for both, the candidate's A and B scaled by
  k = m^(−γ), γ = αβ/(α+β). Such a candidate reaches at every budget C the baseline's
  compute-optimal loss at m·C: one compute multiplier m at every scale (on the 6ND axis);
* **separate** (10 parameters): a law for each family.

The F statistic of the nested fits,

    F = ((RSS_shift − RSS_separate) / 4) / (RSS_separate / (n − 10)),

is referred to F(4, n − 10): a small p-value says one multiplier cannot describe both
families. The direction comes from the separate fits: the multiplier m(C) growing across the
trained budgets means the candidate's frontier falls faster (``steeper``: it scales better),
shrinking means ``shallower``.

m's interval is the shift fit's: log m ± t_{n−6}·se, se from the Gauss–Newton covariance
(JᵀJ)⁻¹·RSS/(n − 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.optimize import least_squares

from .chinchilla import ChinchillaLaw, log_predict

SAME_SLOPE, STEEPER, SHALLOWER = "same_slope", "steeper", "shallower"
SLOPE_TEST_LEVEL = 0.01
"""The slope test rejects one multiplier at p below this: "scales better" is a claim that books
clusters, so it needs stronger evidence than the usual 5 %."""
SHIFT_PARAMS, SEPARATE_PARAMS = 6, 10


@dataclass(frozen=True)
class ShiftTest:
    """The shift fit's multiplier and the slope test's outcome."""

    multiplier: float
    multiplier_lo: float
    multiplier_hi: float
    statistic: float
    p_value: float
    decision: str
    law: ChinchillaLaw

    def shift_dict(self) -> dict:
        return {"value": self.multiplier, "lo": self.multiplier_lo, "hi": self.multiplier_hi}

    def slope_dict(self) -> dict:
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "decision": self.decision,
            "test": "F test of one shared law shifted by m against two laws",
        }


def _theta(law: ChinchillaLaw) -> np.ndarray:
    return np.array([math.log(law.A), math.log(law.B), math.log(law.E), law.alpha, law.beta])


def _shift_residuals(phi, log_n, log_d, log_l, is_cand):
    a, b, e, alpha, beta, log_m = phi
    gamma = alpha * beta / (alpha + beta) if alpha + beta > 0 else 0.0
    s = -gamma * log_m * is_cand
    theta = np.column_stack(
        [a + s, b + s, np.full_like(s, e), np.full_like(s, alpha), np.full_like(s, beta)]
    )
    pred = np.logaddexp(np.logaddexp(theta[:, 0] - alpha * log_n, theta[:, 1] - beta * log_d), e)
    return log_l - pred


def _polish(theta: np.ndarray, log_n, log_d, log_l) -> tuple[np.ndarray, float]:
    def resid(t):
        return log_l - log_predict(t[None, :], log_n, log_d)[0]

    out = least_squares(resid, theta, method="lm")
    return out.x, float(np.sum(out.fun**2))


def shift_test(
    baseline: tuple[np.ndarray, np.ndarray, np.ndarray],
    candidate: tuple[np.ndarray, np.ndarray, np.ndarray],
    start: tuple[ChinchillaLaw, ChinchillaLaw],
    log_m_start: float,
    drift: float,
    level: float = 0.95,
) -> ShiftTest:
    """Fit both models to (n, d, loss) of each family; ``start`` holds the separate laws (the
    robust fits), ``log_m_start`` a first multiplier, ``drift`` the change of log m(C) across
    the trained budgets under the separate laws (its sign is the direction)."""
    logs = [tuple(np.log(np.asarray(v, dtype=float)) for v in fam) for fam in (baseline, candidate)]
    rss_sep, dof = 0.0, 0
    for (log_n, log_d, log_l), law in zip(logs, start, strict=True):
        _, rss = _polish(_theta(law), log_n, log_d, log_l)
        rss_sep += rss
        dof += log_n.size
    log_n, log_d, log_l = (np.concatenate([logs[0][i], logs[1][i]]) for i in range(3))
    is_cand = np.concatenate([np.zeros(logs[0][0].size), np.ones(logs[1][0].size)])
    best = None
    for law, sign in ((start[0], 0.0), (start[1], 1.0)):
        theta = _theta(law)
        gamma = law.alpha * law.beta / (law.alpha + law.beta)
        theta[:2] += sign * gamma * log_m_start  # the candidate's law, moved back to the base
        fit = least_squares(
            _shift_residuals,
            np.append(theta, log_m_start),
            method="lm",
            args=(log_n, log_d, log_l, is_cand),
        )
        if best is None or fit.cost < best.cost:
            best = fit
    rss_shift = float(np.sum(best.fun**2))
    df_shift, df_sep = dof - SHIFT_PARAMS, dof - SEPARATE_PARAMS
    statistic = max(rss_shift - rss_sep, 0.0) / (SEPARATE_PARAMS - SHIFT_PARAMS)
    statistic /= max(rss_sep, 1e-300) / df_sep
    p_value = float(stats.f.sf(statistic, SEPARATE_PARAMS - SHIFT_PARAMS, df_sep))
    jac = best.jac
    try:
        cov = np.linalg.inv(jac.T @ jac) * rss_shift / df_shift
        se = math.sqrt(max(cov[-1, -1], 0.0))
    except np.linalg.LinAlgError:
        se = math.inf
    t = float(stats.t.ppf((1 + level) / 2, df_shift))
    log_m = float(best.x[-1])
    decision = SAME_SLOPE
    if p_value < SLOPE_TEST_LEVEL:
        decision = STEEPER if drift > 0 else SHALLOWER
    return ShiftTest(
        multiplier=math.exp(log_m),
        multiplier_lo=math.exp(log_m - t * se),
        multiplier_hi=math.exp(min(log_m + t * se, 700.0)),
        statistic=float(statistic),
        p_value=p_value,
        decision=decision,
        law=ChinchillaLaw.from_log_params(best.x[:5]),
    )
