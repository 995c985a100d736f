"""The refit's ``data_constrained`` section: what repeated epochs are worth to a family.

Present only when some member logged ``scaling.unique_tokens`` and at least one such run
repeats its data (D/U − 1 > :data:`~..laws.data_constrained_fit.REPEAT_TOL`); otherwise
``fit.json`` is exactly as without it. The section holds:

* the data-constrained law (:func:`~..laws.data_constrained_fit.fit_data_constrained`) of the
  members with U, with bootstrap intervals over runs (the refit's ``n_boot``, ``level`` and
  ``seed``): R*_D, R*_N, the epoch count after which one more epoch is worth less than 10 % of
  fresh data, whether the terms were identified (the fit's ``to_dict``);
* ``fresh_law``: the Chinchilla law of the same runs, every token counted as fresh;
* ``unique_tokens``: the family's U, the largest any member logged (its corpus);
* ``target``: for the scaling check's target (N, D), the epochs it needs at that U, whether
  that is more than worth training (beyond the 10 % epoch count), and its loss under both laws;
* ``runs_without_unique_tokens``: members that did not log U (they are fitted as fresh data
  by the rest of the analysis, and left out of this law), named, never guessed;
* ``phase``: whether the compute frontier's plateau is ``data_limited`` (explained by the
  repetition terms), with the rule's numbers (:func:`~..laws.data_limited.data_limited`).

The refit (:func:`data_constrained_analysis`) also changes the check: its phase becomes
``data_limited`` where the rule says so, and it gets the ``epochs_worth_training`` criterion.

A run shorter than one epoch (U > D) saw D fresh tokens: its U enters the law as min(U, D).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..laws.check import CheckResult
from ..laws.data_constrained_fit import REPEAT_TOL, DataConstrainedFit, fit_data_constrained
from ..laws.data_limited import data_limited, epochs_criterion, with_data_limited
from ..laws.fitting import DEFAULT_HUBER_DELTA
from ..tracking.reading import MemberPoint


def repeats_data(points: Sequence[MemberPoint]) -> bool:
    """Whether a member with U repeats its data (the section's condition)."""
    return any(p.unique_tokens is not None and p.d / p.unique_tokens - 1.0 > REPEAT_TOL
               for p in points)  # fmt: skip


def data_constrained_analysis(
    points: Sequence[MemberPoint], flops: np.ndarray, settings: Any, check: CheckResult
) -> tuple[dict | None, CheckResult]:
    """The section and the check with what repeated data says about it: the frontier's phase
    ``data_limited`` where the repetition terms explain its plateau, and the
    ``epochs_worth_training`` criterion at the check's target (:mod:`~..laws.data_limited`).

    ``flops`` are the points' compute on the family's axis (one per point). Families whose
    runs do not repeat their data get (None, ``check``) unchanged."""
    if not repeats_data(points):
        return None, check
    fitted = _fit(points, settings)
    if isinstance(fitted, dict):
        return fitted, check
    section = _section(fitted, check.prediction)
    used = np.array([p.unique_tokens is not None for p in points])
    verdict = data_limited(check, fitted.fit, fitted.n, fitted.d, fitted.u, fitted.loss,
                           np.asarray(flops, dtype=float)[used])  # fmt: skip
    section["phase"] = verdict.to_dict()
    check = with_data_limited(check, verdict)
    check = check.with_criteria([epochs_criterion(section["target"], fitted.fit)])
    return section, check


@dataclass(frozen=True)
class _Fitted:
    """The law of the members with U, their arrays, the family's U and who lacked one."""

    fit: DataConstrainedFit
    n: np.ndarray
    d: np.ndarray
    u: np.ndarray
    loss: np.ndarray
    family_u: float
    without: list


def _fit(points: Sequence[MemberPoint], settings: Any) -> _Fitted | dict:
    """The data-constrained law of the members with U, or the section's ``error`` document."""
    used = [p for p in points if p.unique_tokens is not None]
    without = [{"run_id": p.run_id, "run_name": p.run_name} for p in points
               if p.unique_tokens is None]  # fmt: skip
    n, d, loss = (np.array([getattr(p, k) for p in used]) for k in ("n", "d", "loss"))
    u = np.minimum(np.array([p.unique_tokens for p in used], dtype=float), d)
    delta = settings.huber_delta
    delta = DEFAULT_HUBER_DELTA if isinstance(delta, str) else float(delta)
    try:
        fit = fit_data_constrained(n, d, u, loss, runs=[p.run_id for p in used],
                                   huber_delta=delta, n_boot=settings.n_boot,
                                   level=settings.level, seed=settings.seed)  # fmt: skip
    except Exception as exc:  # one part of the analysis: reported in its place, never fatal
        return {"error": f"the data-constrained law failed: {type(exc).__name__}: {exc}",
                "runs_without_unique_tokens": without}  # fmt: skip
    family_u = max(float(p.unique_tokens) for p in used)  # type: ignore[arg-type]
    return _Fitted(fit, n, d, u, loss, family_u, without)


def _section(fitted: _Fitted, prediction: Mapping[str, Any] | None) -> dict:
    fit = fitted.fit
    return {
        **fit.to_dict(),
        "fresh_law": fit.chinchilla.law.to_dict(),
        "unique_tokens": fitted.family_u,
        "target": _target(fit, prediction, fitted.family_u),
        "runs_without_unique_tokens": fitted.without,
    }


def _target(fit: DataConstrainedFit, prediction: Mapping[str, Any] | None, u: float):
    """The check's target at the family's U: epochs needed and whether they are worth it."""
    if not prediction or prediction.get("D") is None:
        return None
    n, d = float(prediction["N"]), float(prediction["D"])
    epochs = d / u
    worth = fit.epochs_worth_tenth if fit.identified else None
    return {
        "N": n,
        "D": d,
        "unique_tokens": u,
        "epochs": epochs,
        "more_than_worth_training": None if worth is None else bool(epochs > worth),
        "loss": float(fit.predict(n, d, min(u, d))),
        "fresh_loss": float(fit.chinchilla.law.predict(n, d)),
    }
