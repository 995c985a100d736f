"""The scaling check: do a family's small runs scale consistently enough to trust a big run?

Before a team gets a large cluster, its small runs (up to a few billion parameters) should
show clean scaling. :func:`scaling_check` measures eight criteria, each with its value and
threshold, and passes only when all that apply pass:

``distinct_sizes``
    model sizes (grouped up to ~2 % scatter) ≥ ``min_sizes`` (default 4);
``size_span_decades``
    log10(largest / smallest size) ≥ ``min_span_decades`` (default 1);
``phase``
    the compute frontier (the lower envelope of loss against compute, see
    :func:`detect_phases` with ``reduce="envelope"``) is in the ``scaling`` phase at its
    largest compute, not ``cold_start``, ``plateau`` or ``inverse_scaling`` (the loss itself
    rising along compute, which the envelope would show as flat);
``backtest``
    a Chinchilla fit without the largest size predicts that size's runs with a mean absolute
    relative error ≤ ``max_backtest_error`` (default 3 %);
``approaches_agree``
    where the runs form isoFLOP profiles (≥ 3 budgets with ≥ 3 sizes each), the allocation
    exponent a (N_opt ∝ C^a) of Approach 2 and of Approach 3 differ by at most
    ``max_exponent_gap`` (default 0.08); where they do not, the criterion does not apply;
``extrapolation``
    target size / largest trained size ≤ ``max_extrapolation`` (default 10, one decade);
``precision``
    half the prediction interval's width over the predicted loss at the target,
    (hi − lo)/2/L̂, ≤ ``max_halfwidth`` (default 5 %): a gate that books a cluster must know
    the answer that precisely. Without an interval (``n_boot=0``) it does not apply here; the
    refit adds it once its bootstrap has made the interval (:func:`precision_criterion`);
``law_fit``
    the law describes its own family: it misses fewer than 2 points of the family's measured
    frontier beyond their band (:mod:`law_fit`); a law that cannot follow the runs it was fitted
    on is not trusted past them. Like ``precision``, it needs the bootstrap.

It also predicts the loss at the target with a bootstrap prediction interval. Without
``target_tokens`` the target is trained compute-optimally by the fitted law.

Compute is the family's own axis (:mod:`compute_axis`): the runs' measured FLOPs when given
(``flops``), else 6ND. The phase of the frontier, the target's compute-optimal tokens and
Approach 3's allocation exponent (the slope of log N_opt against log C over the isoFLOP
budgets, comparable with Approach 2's) all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike

from .allocation import local_allocation_exponent, tokens_at_optimum
from .bootstrap import BootstrapFit, bootstrap_chinchilla
from .compute_axis import ComputeAxis
from .extrapolation import calibrate_extrapolation
from .fitting import DEFAULT_HUBER_DELTA, ChinchillaFit, fit_chinchilla
from .isoflop import fit_isoflop
from .law_fit import MISFIT, MISFIT_POINTS, OK, family_law_fit
from .phases import INVERSE_SCALING, PhaseReport, detect_phases
from .scatter import size_labels

PASS, FAIL = "pass", "fail"
DEFAULT_MAX_HALFWIDTH = 0.05
"""The precision criterion's bound on (hi − lo)/2 over the predicted loss at the target."""


@dataclass(frozen=True)
class Criterion:
    """One measured criterion. ``passed`` is None where the data does not allow it."""

    name: str
    value: float | str | None
    threshold: float | str
    passed: bool | None
    detail: str = ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class CheckResult:
    """The verdict, every criterion behind it, and the prediction at the target."""

    verdict: str
    phase: PhaseReport
    criteria: tuple[Criterion, ...]
    prediction: dict | None
    fit: ChinchillaFit | None = None
    settings: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if c.passed is False]

    def with_criteria(self, extra: Iterable[Criterion]) -> CheckResult:
        """This result with more criteria (e.g. downstream tasks) and the verdict redone."""
        criteria = self.criteria + tuple(extra)
        return replace(self, verdict=_verdict(criteria), criteria=criteria)

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "phase": self.phase.phase,
            "phases": self.phase.to_dict(),
            "criteria": [c.to_dict() for c in self.criteria],
            "prediction": self.prediction,
            "params": None if self.fit is None else self.fit.law.to_dict(),
            "settings": dict(self.settings),
        }


def _extrapolates(fit: ChinchillaFit) -> bool:
    """Whether the law has a finite floor and loss falling in both N and D."""
    law = fit.law
    values = np.array([law.E, law.A, law.B, law.alpha, law.beta], dtype=float)
    return bool(np.all(np.isfinite(values)) and law.alpha > 0 and law.beta > 0)


# Over 60 lines only by its documented keyword options and docstring; the body is short.
def scaling_check(
    n: ArrayLike,
    d: ArrayLike,
    loss: ArrayLike,
    *,
    target_params: float,
    target_tokens: float | None = None,
    flops: ArrayLike | None = None,
    axis: ComputeAxis | None = None,
    groups: ArrayLike | None = None,
    min_sizes: int = 4,
    min_span_decades: float = 1.0,
    max_backtest_error: float = 0.03,
    max_exponent_gap: float = 0.08,
    max_extrapolation: float = 10.0,
    max_halfwidth: float = DEFAULT_MAX_HALFWIDTH,
    n_boot: int = 400,
    level: float = 0.95,
    huber_delta: float | str = DEFAULT_HUBER_DELTA,
    seed: int = 0,
    phase_options: dict | None = None,
) -> CheckResult:
    """Run the scaling check on runs (N, D, loss); see the module docstring for criteria.

    ``flops`` are the runs' measured training FLOPs; ``axis`` the family's compute axis
    (default: learned from ``flops``, else 6ND).
    """
    n, d, loss = (np.asarray(v, dtype=float).ravel() for v in (n, d, loss))
    axis = _checked_axis(n, d, loss, flops, axis, target_params, target_tokens)
    settings = dict(target_params=float(target_params), target_tokens=target_tokens,
                    min_sizes=min_sizes, min_span_decades=min_span_decades,
                    max_backtest_error=max_backtest_error, max_exponent_gap=max_exponent_gap,
                    max_extrapolation=max_extrapolation, max_halfwidth=max_halfwidth,
                    n_boot=n_boot, level=level)  # fmt: skip
    flops = axis.flops(n, d) if flops is None else np.asarray(flops, dtype=float).ravel()
    sizes = size_labels(n)
    n_sizes = int(np.unique(sizes).size)
    span = float(np.log10(n.max() / n.min())) if n.size else 0.0
    criteria = [
        Criterion("distinct_sizes", n_sizes, min_sizes, n_sizes >= min_sizes),
        Criterion("size_span_decades", span, min_span_decades, span >= min_span_decades),
    ]

    phase = _frontier_phase(flops, loss, phase_options)
    criteria.append(
        Criterion("phase", phase.phase, "scaling", phase.phase == "scaling", phase.reason)
    )
    fit, fit_error = _fit_that_extrapolates(n, d, loss, huber_delta)
    criteria.append(_backtest_criterion(n, d, loss, sizes, max_backtest_error, huber_delta))
    criteria.append(_approaches_criterion(n, flops, loss, fit, max_exponent_gap, axis))
    criteria.append(extrapolation_criterion(target_params, n, max_extrapolation))
    prediction = None
    if fit is None:
        criteria.append(Criterion("fit", None, "a Chinchilla fit", False, fit_error))
    else:
        prediction = _target_prediction(fit, axis, target_params, target_tokens, level)
    if prediction and n_boot > 0:
        boot = bootstrap_chinchilla(
            n, d, loss, groups=groups, n_boot=n_boot, seed=seed, fit=fit, huber_delta=huber_delta,
        ).with_calibration(
            calibrate_extrapolation(n, d, loss, fit=fit, axis=axis, huber_delta=huber_delta)
        )  # fmt: skip
        add_interval(prediction, boot)
        criteria.extend(interval_criteria(prediction, boot, (n, d, loss, flops), max_halfwidth))
    return CheckResult(_verdict(criteria), phase, tuple(criteria), prediction, fit, settings)


def _checked_axis(n, d, loss, flops, axis, target_params, target_tokens) -> ComputeAxis:
    """The family's compute axis (learned from ``flops``, else 6ND, unless given), after
    refusing runs of unequal lengths and a target that is not positive or overflows."""
    if axis is None:
        axis = ComputeAxis.six_nd() if flops is None else ComputeAxis.from_runs(n, flops, d)
    if not (n.size == d.size == loss.size):
        raise ValueError(f"N, D and loss must have equal lengths ({n.size}, {d.size}, {loss.size})")
    if not (np.isfinite(target_params) and target_params > 0):
        raise ValueError(f"target params must be positive and finite, got {target_params!r}")
    if target_tokens is not None:
        _target_flops(axis, target_params, target_tokens)
    return axis


def _frontier_phase(flops, loss, phase_options: dict | None) -> PhaseReport:
    """The phase of the compute frontier; where the envelope (which cannot rise) is not
    scaling, a loss rising along compute is reported as ``inverse_scaling``."""
    phase = detect_phases(flops, loss, **{"reduce": "envelope", **(phase_options or {})})
    if phase.phase != "scaling":
        rising = detect_phases(flops, loss, **{**(phase_options or {}), "reduce": "min"})
        phase = rising if rising.phase == INVERSE_SCALING else phase
    return phase


def _fit_that_extrapolates(n, d, loss, huber_delta) -> tuple[ChinchillaFit | None, str]:
    """(fit, "") or (None, why): a law whose exponents are not positive cannot extrapolate."""
    try:
        fit = fit_chinchilla(n, d, loss, huber_delta=huber_delta)
    except ValueError as exc:
        return None, str(exc)
    if not _extrapolates(fit):
        return None, (
            f"the fitted exponents are not positive (alpha={fit.law.alpha:.4g}, "
            f"beta={fit.law.beta:.4g}): these runs show no scaling to extrapolate"
        )
    return fit, ""


def _target_prediction(fit: ChinchillaFit, axis: ComputeAxis, params: float,
                       tokens: float | None, level: float) -> dict:  # fmt: skip
    """The law's loss at the target; without ``tokens`` the target is trained
    compute-optimally by the fitted law, on the family's axis. No interval yet."""
    given = bool(tokens)
    if not given:
        tokens = float(tokens_at_optimum(fit.law, params, axis))
    return {
        "N": float(params), "D": float(tokens), "level": level,
        "C": _target_flops(axis, params, tokens),
        "loss": float(fit.law.predict(params, tokens)),
        "lo": None, "hi": None,
        "tokens": "given" if given else "compute_optimal",
    }  # fmt: skip


def add_interval(prediction: dict, boot: BootstrapFit) -> None:
    """Put ``boot``'s prediction interval (and how it was made) on ``prediction``."""
    _, lo, hi = boot.predict_interval(prediction["N"], prediction["D"], level=prediction["level"])
    prediction["lo"], prediction["hi"] = float(lo[0]), float(hi[0])
    prediction["interval"] = boot.interval_method()
    prediction["uncertainty"] = boot.uncertainty_dict()


def _target_flops(axis: ComputeAxis, params: float, tokens: float) -> float:
    """The target's training FLOPs; a ValueError naming the overflow when they pass 1.8e308."""
    with np.errstate(over="ignore", invalid="ignore"):
        flops = float(np.asarray(axis.flops(params, tokens)).ravel()[0])
    if not np.isfinite(flops):
        raise ValueError(
            f"training FLOPs overflow at the target N = {params:.3g}, D = {tokens:.3g} "
            "(C is beyond 1.8e308)"
        )
    return flops


def extrapolation_criterion(
    target_params: float, n: ArrayLike, max_extrapolation: float
) -> Criterion:
    """Target size / largest trained size, at most ``max_extrapolation``."""
    if not np.size(n):
        return Criterion("extrapolation", float("inf"), max_extrapolation, False, "no runs")
    largest = float(np.max(n))
    ratio = float(target_params / largest)
    detail = f"target {target_params:.3g} params / largest trained {largest:.3g}"
    return Criterion("extrapolation", ratio, max_extrapolation, ratio <= max_extrapolation, detail)


def interval_criteria(prediction: dict, boot: BootstrapFit | None, runs: tuple,
                      max_halfwidth: float) -> list[Criterion]:  # fmt: skip
    """The criteria that need the bootstrap: ``precision`` of ``prediction`` (n/a without an
    interval) and, when ``boot`` is given, ``law_fit`` of its fit on the family's measured
    frontier; ``runs`` = (N, D, loss, FLOPs)."""
    criteria = [precision_criterion(prediction, max_halfwidth)]
    if boot is not None:
        criteria.append(law_fit_criterion(family_law_fit(*runs, boot, prediction["level"])))
    return criteria


def precision_criterion(prediction: dict, max_halfwidth: float) -> Criterion:
    """``precision``: (hi − lo)/2 over the predicted loss at the target ≤ ``max_halfwidth``."""
    lo, hi, loss = prediction.get("lo"), prediction.get("hi"), prediction["loss"]
    if lo is None or hi is None or not np.isfinite(hi):
        return Criterion("precision", None, max_halfwidth, None, "no prediction interval")
    half = float((hi - lo) / 2 / loss)
    level = int(round(100 * prediction.get("level", 0.95)))
    detail = (f"{level}% interval {lo:.4g}..{hi:.4g} around {loss:.4g}: "
              f"±{100 * half:.1f}% at the target")  # fmt: skip
    return Criterion("precision", half, max_halfwidth, half <= max_halfwidth, detail)


def law_fit_criterion(status: dict) -> Criterion:
    """The check's ``law_fit`` criterion: the law misses fewer than ``MISFIT_POINTS`` points of
    its family's measured frontier."""
    detail = (
        f"{status['points_missed']} of the measured frontier's points missed; the largest miss "
        f"{status['largest_miss']:+.1%} at {status['at_flops']:.3g} FLOPs (allowed "
        f"±{status['allowed']:.1%})"
    )
    if status["status"] == MISFIT:
        detail += ": the law does not describe its own family, its predictions are not trusted"
    return Criterion("law_fit", status["points_missed"], MISFIT_POINTS - 1,
                     status["status"] == OK, detail)  # fmt: skip


def _verdict(criteria) -> str:
    """Pass when no criterion that applies failed."""
    return PASS if all(c.passed is not False for c in criteria) else FAIL


def _backtest_criterion(n, d, loss, sizes, max_error, huber_delta) -> Criterion:
    name = "backtest"
    if sizes.size == 0 or np.unique(sizes).size < 2:
        return Criterion(name, None, max_error, False, "needs at least 2 model sizes")
    largest = sizes == sizes.max()
    try:
        fit = fit_chinchilla(n[~largest], d[~largest], loss[~largest], huber_delta=huber_delta)
    except ValueError as exc:
        return Criterion(name, None, max_error, False, f"fit without the largest size: {exc}")
    predicted = fit.law.predict(n[largest], d[largest])
    error = float(np.mean(np.abs(predicted - loss[largest]) / loss[largest]))
    return Criterion(
        name,
        error,
        max_error,
        error <= max_error,
        f"fitted on {int((~largest).sum())} runs, predicted {int(largest.sum())} runs of the "
        f"largest size (~{np.exp(np.log(n[largest]).mean()):.3g} params)",
    )


def _approaches_criterion(n, flops, loss, fit, max_gap, axis) -> Criterion:
    name = "approaches_agree"
    if fit is None:
        return Criterion(name, None, max_gap, None, "no Approach 3 fit")
    try:
        iso = fit_isoflop(n, flops, loss, axis=axis)
    except ValueError as exc:
        return Criterion(name, None, max_gap, None, f"not applicable: {exc}")
    if len(iso.profiles) < 3:
        return Criterion(
            name, None, max_gap, None, f"not applicable: {len(iso.profiles)} isoFLOP budgets (< 3)"
        )
    a3 = local_allocation_exponent(fit.law, [p.flops for p in iso.profiles], axis)
    gap = abs(iso.a - a3)
    return Criterion(
        name,
        float(gap),
        max_gap,
        bool(gap <= max_gap),
        f"Approach 2 a = {iso.a:.3f} ({len(iso.profiles)} budgets), Approach 3 a = {a3:.3f}",
    )
