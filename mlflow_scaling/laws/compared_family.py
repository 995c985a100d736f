"""One family of a comparison: its runs, and what ``compare`` fits and reads of them.

:class:`FamilyRuns` holds the runs (N, D, loss, optional measured compute C, run groups and
compute axis). :func:`fit_family` fits the robust law, bootstraps it (paired replicates, one
seed per family), measures its extrapolation error (:mod:`extrapolation`) and its measured
frontier, and asks whether the law describes that frontier (:mod:`law_fit`).
:func:`support_problem` says why a family cannot carry a verdict (fewer than ``MIN_SIZES``
sizes), and :func:`family_infos` what the comparison reports of each family (its phase and
check verdict at the target budget, the law, the points, law_fit and measured frontier).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .allocation import FLOPS_PER_PARAM_TOKEN
from .bootstrap import BootstrapFit, bootstrap_chinchilla
from .check import scaling_check
from .extrapolation import ExtrapolationCalibration, calibrate_extrapolation
from .fitting import ChinchillaFit, fit_chinchilla
from .frontier import _optimum
from .law_fit import family_frontier, law_fit_status
from .measured_frontier import MeasuredFrontier
from .scatter import count_sizes


@dataclass(frozen=True)
class FamilyRuns:
    """One family's runs: parameters N, tokens D, loss, optional compute C and run groups."""

    name: str
    n: np.ndarray
    d: np.ndarray
    loss: np.ndarray
    flops: np.ndarray | None = None
    groups: np.ndarray | None = None
    axis: Any = None

    def compute(self) -> np.ndarray:
        if self.flops is not None:
            return np.asarray(self.flops, dtype=float)
        if self.axis is not None:
            return np.asarray(self.axis.flops(self.n, self.d), dtype=float)
        return FLOPS_PER_PARAM_TOKEN * np.asarray(self.n, float) * np.asarray(self.d, float)


def _family_status(runs: FamilyRuns, fit: ChinchillaFit, target_flops: float, check: bool):
    """The family's phase (compute frontier) and scaling-check verdict for the target budget."""
    info: dict[str, Any] = {"family": runs.name, "runs": int(np.asarray(runs.n).size)}
    c = runs.compute()
    info["flops_range"] = [float(c.min()), float(c.max())]
    info["params"] = fit.law.to_dict()
    info["compute_axis"] = None if runs.axis is None else runs.axis.to_dict()
    info["points"] = {"flops": c.tolist(), "loss": np.asarray(runs.loss, float).tolist()}
    if not check:
        info["phase"] = info["check"] = None
        return info
    n_target = float(_optimum(fit.law, target_flops, runs.axis).n_opt[0])
    result = scaling_check(runs.n, runs.d, runs.loss, target_params=n_target, n_boot=0,
                           groups=runs.groups, flops=c, axis=runs.axis)  # fmt: skip
    info["phase"] = result.phase.phase
    info["check"] = result.verdict
    info["check_target_params"] = n_target
    info["check_failed"] = [c.name for c in result.failed]
    return info


MIN_SIZES = 4
"""A family with fewer distinct model sizes carries no verdict (the check's ``distinct_sizes``)."""


@dataclass(frozen=True)
class FittedFamily:
    """One family's fits: the robust law, its replicates, the extrapolation error, and what its
    runs measured."""

    runs: FamilyRuns
    fit: ChinchillaFit
    boot: BootstrapFit
    calibration: ExtrapolationCalibration
    frontier: MeasuredFrontier
    law_fit: dict


def fit_family(
    runs: FamilyRuns, k: int, n_boot: int, seed: int, huber_delta, level
) -> FittedFamily:
    try:
        fit = fit_chinchilla(runs.n, runs.d, runs.loss, huber_delta=huber_delta)
    except ValueError as exc:
        raise ValueError(f"family {runs.name!r}: {exc}") from None
    if not (fit.law.alpha > 0 and fit.law.beta > 0):
        raise ValueError(
            f"family {runs.name!r}: the fitted exponents are not positive "
            f"(alpha={fit.law.alpha:.4g}, beta={fit.law.beta:.4g}); no frontier to compare"
        )
    boot = bootstrap_chinchilla(runs.n, runs.d, runs.loss, groups=runs.groups, n_boot=n_boot,
                                seed=seed + k, fit=fit, huber_delta=huber_delta)  # fmt: skip
    frontier = family_frontier(runs.n, runs.d, runs.loss, runs.compute(), fit)
    cal = calibrate_extrapolation(runs.n, runs.d, runs.loss, fit=fit, axis=runs.axis,
                                  huber_delta=huber_delta)  # fmt: skip
    return FittedFamily(runs, fit, boot, cal, frontier,
                   law_fit_status(fit, boot, frontier, level))  # fmt: skip


def support_problem(runs: FamilyRuns) -> str | None:
    """Why ``runs`` cannot carry a verdict, or None."""
    sizes = count_sizes(runs.n)
    if sizes < MIN_SIZES:
        return (f"family {runs.name!r} has {sizes} distinct model sizes; a comparison verdict "
                f"needs {MIN_SIZES} (the check's distinct_sizes)")  # fmt: skip
    return None


def family_infos(fams, c_target: float, check: bool) -> list[dict]:
    out = []
    for f in fams:
        info = _family_status(f.runs, f.fit, c_target, check)
        info["law_fit"] = f.law_fit
        info["measured_frontier"] = f.frontier.to_dict()
        out.append(info)
    return out
