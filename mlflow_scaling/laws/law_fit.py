"""Does the fitted law describe its own family? Checked where it is measured: the frontier.

A law can fit most runs and still miss the runs that matter, the lowest loss at each budget.
At each point of the family's measured frontier (:mod:`measured_frontier`: isoFLOP minima, or
the lower envelope of the runs) the miss is

    m = log(L_measured / L̂),    allowed = z·sqrt(se_law² + se²)

with se_law the bootstrap's spread of the law there (a 68 % confidence band halved), se the
frontier point's own standard error, and z a Student quantile Bonferroni-corrected over the
frontier points. ``MISFIT_POINTS`` or more misses beyond ``allowed`` make the family a
``misfit``: one run far off is an outlier, a form that cannot follow the family misses
several. A misfit law is not used past the data: ``compare`` withholds its extrapolated verdict
and the scaling check fails its ``law_fit`` criterion.

Chosen on real sweeps (docs/decision-numbers.md): Porian et al.'s tuned constant-LR sweeps,
whose law puts its floor E above their own measured losses, miss by up to −9 %; on 20-run
families simulated from the law, a 3.3σ noise draw would flag a correct law if one point were
enough.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import N_LAW_PARAMS, BootstrapFit
from .fitting import ChinchillaFit
from .measured_frontier import MeasuredFrontier, measured_frontier, simultaneous_quantile
from .scatter import robust_scale

MISFIT_POINTS = 2
"""Frontier points missed beyond their band that make the law a misfit."""
OK, MISFIT = "ok", "misfit"


def family_frontier(n: ArrayLike, d: ArrayLike, loss: ArrayLike, flops: ArrayLike,
                    fit: ChinchillaFit) -> MeasuredFrontier:  # fmt: skip
    """The measured frontier, with the envelope's scatter from the fit's residuals: the robust
    scale 1.4826·MAD, corrected by sqrt(G/(G − 5)) for the law's 5 parameters."""
    n, d, loss = (np.asarray(v, dtype=float).ravel() for v in (n, d, loss))
    resid = np.log(loss) - np.log(fit.law.predict(n, d))
    noise = robust_scale(resid) * math.sqrt(resid.size / max(resid.size - N_LAW_PARAMS, 1))
    return measured_frontier(n, d, loss, flops, noise=noise)


def family_law_fit(n: ArrayLike, d: ArrayLike, loss: ArrayLike, flops: ArrayLike,
                   boot: BootstrapFit, level: float) -> dict:  # fmt: skip
    """:func:`law_fit_status` of the fit behind ``boot`` on the family's measured frontier."""
    return law_fit_status(boot.fit, boot, family_frontier(n, d, loss, flops, boot.fit), level)


def law_fit_status(fit: ChinchillaFit, boot: BootstrapFit, frontier: MeasuredFrontier,
                   level: float) -> dict:  # fmt: skip
    """``{status, points_missed, largest_miss, at_flops, allowed, frontier_kind}`` (module
    docstring); ``largest_miss`` and ``allowed`` are relative, at the worst point."""
    point = fit.law.predict(frontier.n, frontier.d)
    _, lo, hi = boot.predict_interval(frontier.n, frontier.d, level=0.6827, kind="confidence")
    se = np.log(hi / lo) / 2
    z = simultaneous_quantile(level, frontier.flops.size, frontier.dof)
    miss = np.log(frontier.loss / point)
    allowed = z * np.sqrt(se**2 + frontier.se**2)
    k = int(np.argmax(np.abs(miss) / allowed))
    missed = int(np.sum(np.abs(miss) > allowed))
    return {
        "status": MISFIT if missed >= MISFIT_POINTS else OK,
        "points_missed": missed,
        "largest_miss": float(np.expm1(miss[k])),
        "at_flops": float(frontier.flops[k]),
        "allowed": float(np.expm1(allowed[k])),
        "frontier_kind": frontier.kind,
    }
