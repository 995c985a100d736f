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
  by the rest of the analysis, and left out of this law), named, never guessed.

A run shorter than one epoch (U > D) saw D fresh tokens: its U enters the law as min(U, D).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..laws.data_constrained_fit import REPEAT_TOL, DataConstrainedFit, fit_data_constrained
from ..laws.fitting import DEFAULT_HUBER_DELTA
from ..tracking.reading import MemberPoint


def repeats_data(points: Sequence[MemberPoint]) -> bool:
    """Whether a member with U repeats its data (the section's condition)."""
    return any(p.unique_tokens is not None and p.d / p.unique_tokens - 1.0 > REPEAT_TOL
               for p in points)  # fmt: skip


def data_constrained_section(
    points: Sequence[MemberPoint], settings: Any, prediction: Mapping[str, Any] | None
) -> dict | None:
    """The section (module docstring), or None when no member with U repeats its data.

    ``settings`` is the refit's :class:`~.analysis.RefitSettings`; ``prediction`` the scaling
    check's prediction at its target (``N``, ``D``), or None."""
    if not repeats_data(points):
        return None
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
    return {
        **fit.to_dict(),
        "fresh_law": fit.chinchilla.law.to_dict(),
        "unique_tokens": family_u,
        "target": _target(fit, prediction, family_u),
        "runs_without_unique_tokens": without,
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
