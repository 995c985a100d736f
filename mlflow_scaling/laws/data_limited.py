"""When repeated data explains a plateau: the ``data_limited`` phase and the epochs criterion.

A family that trains many epochs over one corpus sees its compute frontier flatten for a reason
of its own: the runs at large compute repeat their tokens, and a repeated token is worth less
than a fresh one (:mod:`data_constrained`). :func:`data_limited` tells that plateau from the
others with a concrete rule. The frontier's phase (the scaling check's, along compute) is
``data_limited`` instead of ``plateau`` when all of these hold:

1. the frontier is in a ``plateau`` at its largest compute (its last segment, from x_min on);
2. the data-constrained law is identified (some run repeats its data) and R*_D is not at its
   bound (a bound means the runs show no discount at all);
3. at least :data:`MIN_PLATEAU_RUNS` runs whose compute lies in the plateau's stretch repeat
   their data, and on them the law discounts most of what they saw: the median effective
   share of their tokens, D'/D, is at most :data:`MAX_EFFECTIVE_SHARE` (½: more than half of
   their tokens are worth nothing as fresh data);
4. the repetition terms explain those runs: the median |log L − log L̂| of the plateau's runs
   under the data-constrained law is at most :data:`MAX_MISFIT_RATIO` (½) of the same under the
   fresh-data law fitted to the same runs (every token counted as new).

The reason names R*_D, the plateau runs' epochs and D'/D, and both misfits. A plateau that fails
any of these stays ``plateau`` (with :func:`data_limited`'s ``reason`` saying which failed).

:func:`epochs_criterion` is the check's ``epochs_worth_training`` criterion: the target's epochs
at the family's unique tokens, D/U, at most the 10 %-epoch count 1 + R*_D·ln 10 (beyond it one
more epoch is worth less than a tenth of fresh data, so the fresh-data plan behind the target
cannot be trained on this corpus). It fails the check like any other criterion, and does not
apply (``passed`` None) when the law is not identified or the target has no tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from .check import CheckResult, Criterion
from .data_constrained_fit import REPEAT_TOL, DataConstrainedFit

DATA_LIMITED = "data_limited"
PLATEAU = "plateau"
MIN_PLATEAU_RUNS = 2
MAX_EFFECTIVE_SHARE = 0.5
MAX_MISFIT_RATIO = 0.5
EPOCHS_CRITERION = "epochs_worth_training"


@dataclass(frozen=True)
class DataLimited:
    """Whether the frontier's plateau is data-limited, why, and the numbers behind it."""

    data_limited: bool
    reason: str
    plateau_runs: int = 0
    repeated_runs: int = 0
    epochs: tuple[float, ...] = ()
    effective_share: float | None = None
    fresh_misfit: float | None = None
    constrained_misfit: float | None = None

    def to_dict(self) -> dict:
        return {
            "data_limited": self.data_limited,
            "reason": self.reason,
            "plateau_runs": self.plateau_runs,
            "repeated_runs": self.repeated_runs,
            "epochs": list(self.epochs),
            "effective_share": self.effective_share,
            "fresh_misfit": self.fresh_misfit,
            "constrained_misfit": self.constrained_misfit,
            "rule": {
                "min_plateau_runs": MIN_PLATEAU_RUNS,
                "max_effective_share": MAX_EFFECTIVE_SHARE,
                "max_misfit_ratio": MAX_MISFIT_RATIO,
            },  # fmt: skip
        }


def data_limited(
    check: CheckResult, fit: DataConstrainedFit, n: ArrayLike, d: ArrayLike, u: ArrayLike,
    loss: ArrayLike, flops: ArrayLike,
) -> DataLimited:  # fmt: skip
    """Apply the rule (module docstring) to the runs (N, D, U, loss, compute) of ``fit``.

    ``check`` is the family's scaling check (its phase is the compute frontier's); ``flops``
    are the runs' compute on the same axis as that phase.
    """
    phase = check.phase
    if phase.phase != PLATEAU or not phase.segments:
        return DataLimited(False, f"the frontier is {phase.phase}, not a plateau")
    if not fit.identified or "r_star_d" in fit.at_bound:
        return DataLimited(False, "the repetition terms are not identified (or R*_D is at its "
                           "bound: the runs show no discount)")  # fmt: skip
    n, d, u, loss, c = (np.asarray(v, dtype=float).ravel() for v in (n, d, u, loss, flops))
    start = phase.segments[-1].x_min
    in_plateau = c >= start * (1 - 1e-9)
    repeated = in_plateau & (d / u - 1.0 > REPEAT_TOL)
    base = {"plateau_runs": int(in_plateau.sum()), "repeated_runs": int(repeated.sum()),
            "epochs": tuple(float(e) for e in np.sort(d[repeated] / u[repeated]))}  # fmt: skip
    if base["repeated_runs"] < MIN_PLATEAU_RUNS:
        return DataLimited(False, f"{base['repeated_runs']} runs in the plateau (from "
                           f"{start:.3g} FLOPs) repeat their data; at least "
                           f"{MIN_PLATEAU_RUNS} are needed", **base)  # fmt: skip
    _, d_eff = fit.law.effective(n[repeated], d[repeated], u[repeated])
    share = float(np.median(d_eff / d[repeated]))
    fresh = _misfit(loss[in_plateau], fit.chinchilla.law.predict(n[in_plateau], d[in_plateau]))
    constrained = _misfit(loss[in_plateau], fit.law.predict(n[in_plateau], d[in_plateau],
                                                            u[in_plateau]))  # fmt: skip
    numbers = DataLimited(False, "", effective_share=share, fresh_misfit=fresh,
                          constrained_misfit=constrained, **base)  # fmt: skip
    said = (f"R*_D = {fit.law.r_star_d:.3g} (one more epoch worth < 10 % after "
            f"{fit.epochs_worth_tenth:.3g}); the plateau's {base['repeated_runs']} repeated runs "
            f"({_epochs_text(base['epochs'])} epochs) count D'/D = {share:.2f} of their tokens "
            f"as fresh; median |log residual| {constrained:.3g} against {fresh:.3g} for the "
            "fresh-data law")  # fmt: skip
    if share > MAX_EFFECTIVE_SHARE:
        return replace(numbers, reason=f"not data-limited: {said} (D'/D above "
                       f"{MAX_EFFECTIVE_SHARE})")  # fmt: skip
    if constrained > MAX_MISFIT_RATIO * fresh:
        return replace(numbers, reason=f"not data-limited: {said} (not under {MAX_MISFIT_RATIO}"
                       " of it)")  # fmt: skip
    return replace(numbers, data_limited=True,
                   reason=f"the plateau is explained by repeated data: {said}")  # fmt: skip


def _misfit(loss: np.ndarray, predicted: np.ndarray) -> float:
    """Median |log L − log L̂|."""
    return float(np.median(np.abs(np.log(loss) - np.log(np.asarray(predicted, dtype=float)))))


def _epochs_text(epochs: tuple[float, ...]) -> str:
    lo, hi = min(epochs), max(epochs)
    return f"{lo:.3g}" if np.isclose(lo, hi) else f"{lo:.3g}–{hi:.3g}"


def with_data_limited(check: CheckResult, verdict: DataLimited) -> CheckResult:
    """``check`` with its phase (and the ``phase`` criterion) ``data_limited`` when
    ``verdict`` says so; otherwise ``check`` unchanged. The plateau's own reason is kept."""
    if not verdict.data_limited:
        return check
    phase = replace(check.phase, phase=DATA_LIMITED,
                    reason=f"{verdict.reason} (plateau: {check.phase.reason})")  # fmt: skip
    criteria = tuple(
        replace(c, value=DATA_LIMITED, detail=phase.reason) if c.name == "phase" else c
        for c in check.criteria
    )
    return replace(check, phase=phase, criteria=criteria)


def epochs_criterion(target: dict | None, fit: DataConstrainedFit) -> Criterion:
    """``epochs_worth_training``: the target's epochs D/U at most 1 + R*_D·ln 10 (module
    docstring). ``target`` holds ``epochs`` and ``unique_tokens`` (the section's target)."""
    if not target or target.get("epochs") is None:
        return Criterion(EPOCHS_CRITERION, None, "-", None, "no target tokens")
    epochs = float(target["epochs"])
    if not fit.identified:
        return Criterion(EPOCHS_CRITERION, epochs, "-", None,
                         "no run repeats its data: the 10 %-epoch count is unknown")  # fmt: skip
    worth = float(fit.epochs_worth_tenth)
    passed = bool(epochs <= worth)
    detail = (
        f"the target's D = {float(target['D']):.3g} tokens is {epochs:.3g} epochs of the family's "
        f"U = {float(target['unique_tokens']):.3g} unique tokens; one more epoch is worth "
        f"< 10 % of fresh data after {worth:.3g} (1 + R*_D·ln 10, R*_D = {fit.law.r_star_d:.3g})"
    )
    if not passed:
        detail += ": the fresh-data plan cannot be trained on this corpus"
    return Criterion(EPOCHS_CRITERION, epochs, worth, passed, detail)


__all__ = ["DATA_LIMITED", "DataLimited", "data_limited", "epochs_criterion",
           "with_data_limited"]  # fmt: skip
