"""Step 1 of the downstream chain: the task loss against (N, D), or against C on the frontier.

The loss on the task's correct answers (bits per byte) is fitted with the same engine as the
training loss (:mod:`fitting`): ``L(N, D) = E + A/N^α + B/D^β``. Where the runs do not span
both axes (one token count per size, or D ∝ N), N and D cannot be told apart and the task loss
is fitted against compute on the frontier instead: ``L(C) = E + A·C^(−α)`` (:mod:`power_law`).
Step 1 is fitted on each run's **final** point only: an intermediate checkpoint of a run with
a decaying learning rate is not the end of a shorter run (Chinchilla §3.1).

**Extrapolation error** (:func:`calibrate_loss_step`). A bootstrap over runs does not see the
error of the form itself, which grows with the distance δ (decades beyond the largest size and
compute fitted). For the (N, D) law it is the loss law's own calibration
(:func:`extrapolation.calibrate_extrapolation`: refits without the top ¼ and ½ decade,
``E[r²] = σ² + s²·δ²``); for the frontier law the same rule with holdouts in C. The chain draws
a log error ``s·δ·T`` (T a Student t with the calibration's degrees of freedom) per replicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .chinchilla import ChinchillaLaw, log_predict
from .compute_axis import ComputeAxis
from .extrapolation import (
    HOLDOUT_DECADES,
    METHOD_HOLDOUT,
    METHOD_PRIOR,
    PRIOR_GROWTH,
    calibrate_extrapolation,
    robust_scale,
)
from .fitting import (
    DEFAULT_HUBER_DELTA,
    EPOCH_HUBER_DELTA,
    HUBER_AUTO,
    ChinchillaFit,
    fit_chinchilla,
    refit_batch,
)
from .power_law import SaturatingPowerLaw, fit_saturating_power_law
from .scatter import size_labels

FlopsOf = Callable[[np.ndarray, np.ndarray], np.ndarray]
STEP1_CHINCHILLA = "chinchilla_ND"
STEP1_COMPUTE = "frontier_C"
STEP1_PARAMS = {STEP1_CHINCHILLA: 5, STEP1_COMPUTE: 3}


def spans_both_axes(n: ArrayLike, d: ArrayLike) -> bool:
    """Whether N and D vary independently enough for L(N, D): at least 5 runs, and at least
    two model sizes that were each trained on two or more token counts."""
    n = np.asarray(n, dtype=float).ravel()
    d = np.asarray(d, dtype=float).ravel()
    if n.size < 5:
        return False
    sizes = size_labels(n)
    tokens = size_labels(d)
    varied = [np.unique(tokens[sizes == s]).size >= 2 for s in np.unique(sizes)]
    return int(np.sum(varied)) >= 2


def _pareto(c: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Indices of the runs that beat every run of smaller compute (the compute frontier)."""
    order = np.lexsort((loss, c))
    best_before = np.concatenate([[np.inf], np.minimum.accumulate(loss[order])[:-1]])
    return np.sort(order[loss[order] < best_before])


@dataclass(frozen=True)
class LossCalibration:
    """Extrapolation error of step 1: ``s`` (growth_per_decade) log-error per decade beyond
    the largest size ``n_max`` and compute ``c_max`` fitted, with ``dof`` for a Student t."""

    method: str
    growth_per_decade: float
    dof: int
    n_max: float
    c_max: float

    def distance(self, n: ArrayLike, c: ArrayLike) -> np.ndarray:
        """δ = max(log10 N/N_max, log10 C/C_max, 0) in decades."""
        n, c = np.asarray(n, dtype=float), np.asarray(c, dtype=float)
        return np.maximum(np.maximum(np.log10(n / self.n_max), np.log10(c / self.c_max)), 0.0)

    def to_dict(self) -> dict:
        return {"method": self.method, "growth_per_decade": self.growth_per_decade,
                "dof": self.dof, "n_max": self.n_max, "c_max": self.c_max}  # fmt: skip


@dataclass(frozen=True)
class LossStep:
    """Step 1: the task loss as a function of (N, D), or of C on the frontier.

    ``law`` is a :class:`ChinchillaLaw` (``kind = "chinchilla_ND"``) or a
    :class:`SaturatingPowerLaw` in C (``kind = "frontier_C"``); ``residuals`` are the full
    fit's log residuals on the points it used (``used``); ``huber_delta`` the δ it was fitted
    with (``"auto"`` resolved), which the bootstrap reuses; ``fit`` the Chinchilla fit (for
    its extrapolation calibration), None on the frontier.
    """

    kind: str
    law: ChinchillaLaw | SaturatingPowerLaw
    residuals: np.ndarray
    used: np.ndarray
    huber_delta: float = EPOCH_HUBER_DELTA
    fit: ChinchillaFit | None = None

    def predict(self, n: ArrayLike, d: ArrayLike, c: ArrayLike) -> np.ndarray:
        if self.kind == STEP1_CHINCHILLA:
            assert isinstance(self.law, ChinchillaLaw)
            return self.law.predict(n, d)
        return np.asarray(self.law.predict(c), dtype=float)

    def along_ladder(
        self, n: np.ndarray, d: np.ndarray, flops_of: FlopsOf
    ) -> tuple[np.ndarray, np.ndarray]:
        """(compute, task loss) at the plans (n, d), placed on the family's compute axis."""
        c = np.asarray(flops_of(n, d), dtype=float)
        return c, self.predict(n, d, c)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "variable": "N, D" if self.kind == STEP1_CHINCHILLA else "C (compute frontier)",
            "params": self.law.to_dict(),
            "n_points": int(self.used.size),
        }


def fit_loss_step(
    n: ArrayLike,
    d: ArrayLike,
    c: ArrayLike,
    loss: ArrayLike,
    *,
    huber_delta: float | str = DEFAULT_HUBER_DELTA,
) -> LossStep:
    """Step 1 (module docstring): Chinchilla in (N, D) where the runs span both axes, else the
    saturating power law in C fitted to the compute frontier (at least 3 points)."""
    n, d, c, loss = (np.asarray(v, dtype=float).ravel() for v in (n, d, c, loss))
    if spans_both_axes(n, d):
        fit = fit_chinchilla(n, d, loss, huber_delta=huber_delta)
        res = np.log(loss) - log_predict(fit.law.log_params, np.log(n), np.log(d))
        return LossStep(STEP1_CHINCHILLA, fit.law, res.ravel(), np.arange(n.size),
                        fit.huber_delta, fit)  # fmt: skip
    used = _pareto(c, loss)
    if used.size < 3:
        raise ValueError(
            f"the task loss needs 3 runs on the compute frontier (the runs do not span N and D "
            f"separately); found {used.size}"
        )
    delta = EPOCH_HUBER_DELTA if huber_delta == HUBER_AUTO else float(huber_delta)
    law, _ = fit_saturating_power_law(c[used], loss[used], huber_delta=delta)
    res = np.log(loss[used]) - np.log(law.predict(c[used]))
    return LossStep(STEP1_COMPUTE, law, res, used, delta)


def loss_replicates(
    step: LossStep,
    n: np.ndarray,
    d: np.ndarray,
    c: np.ndarray,
    loss: np.ndarray,
    weights: np.ndarray,
) -> list[LossStep]:
    """Step 1 refitted on every bootstrap draw (rows of ``weights``), started from the fit."""
    if step.kind == STEP1_CHINCHILLA:
        assert isinstance(step.law, ChinchillaLaw)
        starts = step.law.log_params[None, :]
        thetas, _ = refit_batch(n, d, loss, weights, starts, huber_delta=step.huber_delta)
        return [
            LossStep(
                step.kind,
                ChinchillaLaw.from_log_params(t),
                step.residuals,
                step.used,
                step.huber_delta,
            )  # fmt: skip
            for t in thetas
        ]
    out = []
    used = step.used
    for w in weights:
        wu = w[used]
        if np.count_nonzero(wu) < 2 or np.unique(c[used][wu > 0]).size < 2:
            out.append(step)  # a draw without two frontier points cannot refit; keep the fit
            continue
        law, _ = fit_saturating_power_law(c[used], loss[used], weights=wu,
                                          huber_delta=step.huber_delta)  # fmt: skip
        out.append(LossStep(step.kind, law, step.residuals, used, step.huber_delta))
    return out


def no_calibration(n: np.ndarray, c: np.ndarray) -> LossCalibration:
    """No extrapolation error (a fit without intervals has no use for one)."""
    return LossCalibration("none", 0.0, 1, float(np.max(n)), float(np.max(c)))


def calibrate_loss_step(
    step: LossStep, n: np.ndarray, d: np.ndarray, c: np.ndarray, loss: np.ndarray
) -> LossCalibration:
    """Step 1's extrapolation error (module docstring), measured on the family."""
    if step.kind == STEP1_CHINCHILLA and step.fit is not None:
        axis = ComputeAxis.from_runs(n, c, d)
        cal = calibrate_extrapolation(n, d, loss, fit=step.fit, axis=axis,
                                      huber_delta=step.huber_delta)  # fmt: skip
        return LossCalibration(cal.method, cal.growth_per_decade, cal.dof, float(n.max()),
                               float(c.max()))  # fmt: skip
    used = step.used
    cu, lu = c[used], loss[used]
    noise = robust_scale(step.residuals)
    residuals, distances = [], []
    for h in HOLDOUT_DECADES:
        train = cu <= cu.max() * 10.0 ** (-h) * (1 + 1e-9)
        if train.sum() < 4 or train.all():  # 3 parameters: keep one point to spare
            continue
        law, _ = fit_saturating_power_law(cu[train], lu[train], huber_delta=step.huber_delta)
        test = ~train
        residuals.append(np.log(lu[test]) - np.log(law.predict(cu[test])))
        distances.append(np.log10(cu[test] / cu[train].max()))
    if not residuals:
        return LossCalibration(METHOD_PRIOR, PRIOR_GROWTH, max(used.size - 3, 1),
                               float(n.max()), float(c.max()))  # fmt: skip
    r, dist = np.concatenate(residuals), np.concatenate(distances)
    weight = dist**2
    s2 = float(np.sum((r**2 - noise**2) * weight) / max(np.sum(weight**2), 1e-300))
    return LossCalibration(METHOD_HOLDOUT, float(np.sqrt(max(s2, 0.0))), max(r.size, 1),
                           float(n.max()), float(c.max()))  # fmt: skip


def rising_task_loss(step1: LossStep) -> str | None:
    """Why the fitted task loss rises with scale (a negative exponent), or None."""
    law = step1.law
    exponents = {"alpha": law.alpha, "beta": getattr(law, "beta", 0.0)}
    negative = {k: v for k, v in exponents.items() if v < 0}
    if not negative:
        return None
    shown = ", ".join(f"{k} = {v:.3g}" for k, v in negative.items())
    return f"the task loss rises with scale (step-1 {shown}): inverse scaling"
