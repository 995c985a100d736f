"""What a refit computes for one family, without MLflow: the laws, phases, check, predictions.

:func:`analyze_family` turns member points (and training curves, where there are some) into
the science part of ``scaling/fit.json``:

* ``approach3``: the Chinchilla law by Epoch's method with bootstrap intervals and the
  compute-optimal allocation for a ladder of budgets (:func:`summarize_chinchilla`);
* ``approach2``: isoFLOP profiles, where the runs form budgets of 3+ sizes;
* ``approach1``: the envelope of training curves, where runs logged curves;
* ``phases`` and ``check``: :func:`scaling_check` (its phase is that of the compute frontier);
* ``hparams``: where the peak learning rate or the batch varies within a cell of equal (N, D),
  the hyperparameter laws (:mod:`.hparam_analysis`); the Chinchilla law then sees each swept
  cell's best run only. Without a sweep the key is absent.
* ``data_constrained``: where runs logged their unique tokens and some repeat their data, the
  data-constrained law and the target's epochs (:mod:`.data_constrained`); there the phase
  is ``data_limited`` where the repetition terms explain the frontier's plateau, and the check
  has the ``epochs_worth_training`` criterion.

A family with too few usable runs, one model size or one token count is
``insufficient_data``, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..laws.allocation import local_allocation_exponent
from ..laws.check import (
    DEFAULT_MAX_HALFWIDTH,
    add_interval,
    interval_criteria,
    scaling_check,
)
from ..laws.compute_axis import ComputeAxis
from ..laws.envelope import training_curve_envelope
from ..laws.fitting import DEFAULT_HUBER_DELTA
from ..laws.isoflop import fit_isoflop, group_by_budget
from ..laws.scatter import count_sizes
from ..summary import summarize_chinchilla
from ..tracking import schema
from ..tracking.family_axis import family_axis, member_flops
from ..tracking.reading import Curve, MemberPoint
from ..tracking.task_checkpoints import History
from .data_constrained import data_constrained_analysis
from .hparam_analysis import hparam_section, hparam_target, split_sweep
from .tasks import analyze_tasks, unfitted_tasks

# 7: the data_limited phase and the epochs_worth_training criterion (issue 26)
# 6: learning-rate/batch sweeps: the law on each swept cell's best run, the hparams section;
#    the data_constrained section (families whose runs repeat their data, issue 26)
# 5: a size offset in the intervals, the law_fit criterion
# 4: Huber δ 1e-3 by default, intervals held out by distance, precision
ANALYSIS_VERSION = 7
"""Bump when the analysis changes what it writes: every family is then fitted again."""

DEFAULT_N_BOOT = 200
DEFAULT_MIN_POINTS = 5
DEFAULT_TARGET_FACTOR = 10.0
"""Without a target, the scaling check predicts a model this many times the largest run."""
EXTRAPOLATION_DECADES = 2

STATUS_FITTED = "fitted"
STATUS_INSUFFICIENT = schema.PHASE_INSUFFICIENT_DATA


@dataclass(frozen=True)
class RefitSettings:
    """How a family is fitted. Part of the settings digest: changing one refits every family."""

    n_boot: int = DEFAULT_N_BOOT
    level: float = 0.95
    seed: int = 0
    huber_delta: float | str = DEFAULT_HUBER_DELTA
    min_points: int = DEFAULT_MIN_POINTS
    budgets: tuple[float, ...] = ()
    target_params: float | None = None
    max_halfwidth: float = DEFAULT_MAX_HALFWIDTH
    """The check's precision bound (a fit run's ``scaling.max_halfwidth`` tag wins)."""
    curves: bool = True
    plan_gpu: str | None = None
    """Plan the family's target on this GPU (``scaling/plan.json``; a fit run's
    ``scaling.plan_gpu`` tag wins)."""

    def __post_init__(self) -> None:
        if self.n_boot < 0:
            raise ValueError(f"bootstrap count must be 0 or more, got {self.n_boot}")
        if not 0 < self.level < 1:
            raise ValueError(f"interval level must lie in (0, 1), got {self.level}")
        if self.min_points < 5:
            raise ValueError(
                f"min_points must be at least 5 (the law has 5 parameters), got {self.min_points}"
            )
        for b in self.budgets:
            if not (math.isfinite(b) and b > 0):
                raise ValueError(f"budgets must be positive and finite, got {b!r}")
        if self.target_params is not None and not (
            math.isfinite(self.target_params) and self.target_params > 0
        ):
            raise ValueError(f"target params must be positive and finite, got {self.target_params}")
        if not (math.isfinite(self.max_halfwidth) and self.max_halfwidth > 0):
            raise ValueError(f"max halfwidth must be positive and finite, got {self.max_halfwidth}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["budgets"] = list(self.budgets)
        if self.plan_gpu is None:  # absent unless asked: older settings digests stay valid
            out.pop("plan_gpu")
        return out


def budget_ladder(flops: np.ndarray, extra_decades: int = EXTRAPOLATION_DECADES) -> np.ndarray:
    """Half-decade budgets from below the smallest run to ``extra_decades`` past the largest."""
    lo = math.floor(math.log10(float(flops.min())) * 2) / 2
    hi = math.ceil(math.log10(float(flops.max())) * 2) / 2 + extra_decades
    return 10.0 ** np.arange(lo, hi + 0.25, 0.5)


def insufficient_reason(points: Sequence[MemberPoint], n_excluded: int, min_points: int) -> str:
    """Why the points cannot carry a fit, or '' when they can."""
    excluded = f" ({n_excluded} more excluded, see 'excluded')" if n_excluded else ""
    if len(points) < min_points:
        return f"{len(points)} usable runs{excluded}; at least {min_points} are needed"
    n = np.array([p.n for p in points])
    d = np.array([p.d for p in points])
    if count_sizes(n) < 2:
        return (
            f"all {len(points)} usable runs have one model size (N ≈ {np.median(n):.3g}); "
            "the law needs at least 2 sizes"
        )
    if count_sizes(d) < 2:
        return (
            f"all {len(points)} usable runs saw one token count (D ≈ {np.median(d):.3g}); "
            "the law needs at least 2"
        )
    return ""


def _part(name: str, compute, *args) -> dict:
    """One approach of the analysis; a failure is reported in its place, never fatal."""
    try:
        return compute(*args)
    except Exception as exc:
        return {"applicable": False, "reason": f"{name} failed: {type(exc).__name__}: {exc}"}


def _approach2(n: np.ndarray, c: np.ndarray, loss: np.ndarray, axis: ComputeAxis) -> dict:
    try:
        iso = fit_isoflop(n, c, loss, axis=axis)
    except ValueError as exc:
        return {"applicable": False, "reason": str(exc)}
    out = {"applicable": True, **iso.to_dict()}
    # Which runs make each profile (for the figure): the budget group with that mean compute.
    labels = group_by_budget(c)
    centres = {int(g): float(np.log(c[labels == g]).mean()) for g in np.unique(labels)}
    for row, profile in zip(out["profiles"], iso.profiles, strict=True):
        row["coefficients"] = list(profile.coefficients)
        row["group"] = min(centres, key=lambda g: abs(centres[g] - math.log(profile.flops)))
    out["budget_group"] = labels.tolist()
    return out


def _approach1(points: Sequence[MemberPoint], curves: Mapping[str, Curve]) -> dict:
    usable = [p for p in points if p.run_id in curves]
    if len(usable) < 2:
        return {
            "applicable": False,
            "reason": f"{len(usable)} member runs logged a training curve (loss and FLOPs at "
            "more than one step); the envelope needs curves of at least 2 sizes",
        }
    n = np.concatenate([np.full(curves[p.run_id].flops.size, p.n) for p in usable])
    flops = np.concatenate([curves[p.run_id].flops for p in usable])
    loss = np.concatenate([curves[p.run_id].loss for p in usable])
    ids = np.concatenate([np.full(curves[p.run_id].flops.size, i) for i, p in enumerate(usable)])
    try:
        env = training_curve_envelope(n, flops, loss, ids)
    except ValueError as exc:
        return {"applicable": False, "reason": str(exc), "n_curves": len(usable)}
    return {"applicable": True, "n_curves": len(usable), **env.to_dict()}


def analyze_family(
    points: Sequence[MemberPoint],
    settings: RefitSettings,
    *,
    n_excluded: int = 0,
    curves: Mapping[str, Curve] | None = None,
    target_params: float | None = None,
    task_histories: Mapping[str, History] | None = None,
) -> dict:
    """The science of one refit (module docstring), JSON-ready.

    Keys: ``status`` (``fitted`` or ``insufficient_data``), ``reason``, ``phase``,
    ``check_verdict``, ``approach3``, ``approach2``, ``approach1``, ``phases``, ``check``,
    ``budgets`` (the ladder rows: loss, N_opt, D_opt with intervals), ``metrics`` (the fit
    run's ``scaling.fit.*`` values) and, only where the runs sweep η or B, ``hparams``.
    """
    split = split_sweep(points)
    everyone, points = points, split.law_points
    reason = insufficient_reason(points, n_excluded, settings.min_points)
    if reason:
        if split.varied:
            reason += f" (the best run of each swept cell; {len(split.swept)} runs in the sweep)"
        out = _insufficient(points, reason)
        return _with_hparams(out, everyone, split, None, settings, target_params)
    n = np.array([p.n for p in points])
    d = np.array([p.d for p in points])
    axis = family_axis(points)
    # Members without logged FLOPs are placed on the family's axis too (one axis everywhere).
    c = member_flops(points, axis)
    loss = np.array([p.loss for p in points])
    target = target_params or settings.target_params or DEFAULT_TARGET_FACTOR * float(n.max())
    check, tasks = _check_with_tasks(points, n, d, c, loss, settings, target, axis,
                                     task_histories)  # fmt: skip
    summary, check = _law_summary(n, d, c, loss, settings, check, axis)
    # Only where runs repeat their data (else None, check unchanged: fit.json as before).
    repeats, check = data_constrained_analysis(points, c, settings, check)
    check_doc = check.to_dict()
    check_doc.pop("phases", None)  # the same report is kept once, under "phases"
    metrics = _fit_metrics(summary)
    out = {
        "status": STATUS_FITTED,
        "reason": None,
        "phase": check.phase.phase,
        "check_verdict": check.verdict,
        "compute_axis": axis.to_dict(),
        "approach3": summary,
        "approach2": _part("Approach 2", _approach2, n, c, loss, axis),
        "approach1": _part("Approach 1", _approach1, points, curves or {}),
        "phases": check.phase.to_dict(),
        "check": check_doc,
        "budgets": summary.get("budgets", []),
        "tasks": tasks.docs,
        "metrics": {
            k: float(v) for k, v in {**metrics, **tasks.metrics}.items() if math.isfinite(v)
        },  # fmt: skip
        "task_tags": tasks.tags,
    }
    if repeats is not None:
        out["data_constrained"] = repeats
    return _with_hparams(out, everyone, split, check.prediction, settings, target)


def _with_hparams(out: dict, points, split, prediction, settings: RefitSettings,
                  target: float | None = None) -> dict:  # fmt: skip
    """``out`` with the ``hparams`` section when the family holds a sweep (else unchanged)."""
    if split.varied:
        size = target or settings.target_params or DEFAULT_TARGET_FACTOR * max(p.n for p in points)
        at = hparam_target(points, prediction, size)
        out["hparams"] = hparam_section(points, split, at, n_boot=settings.n_boot,
                                        level=settings.level, seed=settings.seed)  # fmt: skip
    out["metrics"] = {**out["metrics"], **_section_metrics(out)}
    return out


def _section_metrics(out: dict) -> dict[str, float]:
    """The fit run's metrics of the ``hparams`` and ``data_constrained`` sections (their values
    at the target, and R*), so the MLflow UI can chart them across refits; finite ones only."""
    prediction = ((out.get("hparams") or {}).get("predictions") or [{}])[0]
    repeats = out.get("data_constrained") or {}
    identified = repeats.get("identified") is True
    params = repeats.get("params") or {}
    values = {
        schema.METRIC_FIT_LR: prediction.get("lr"),
        schema.METRIC_FIT_BATCH: prediction.get("batch_tokens"),
        schema.METRIC_FIT_R_STAR_D: params.get("r_star_d") if identified else None,
        schema.METRIC_FIT_R_STAR_N: params.get("r_star_n") if identified else None,
        schema.METRIC_FIT_EPOCHS_WORTH: repeats.get("epochs_worth_tenth") if identified else None,
    }
    return {k: float(v) for k, v in values.items()
            if isinstance(v, int | float) and math.isfinite(v)}  # fmt: skip


def _check_with_tasks(points, n, d, c, loss, settings: RefitSettings, target: float, axis,
                      histories: Mapping[str, History] | None = None):  # fmt: skip
    """The scaling check at ``target`` (no bootstrap: :func:`_law_summary` adds the interval)
    with one criterion per downstream task, and the tasks' analysis."""
    check = scaling_check(
        n,
        d,
        loss,
        target_params=target,
        flops=c,
        axis=axis,
        n_boot=0,
        level=settings.level,
        huber_delta=settings.huber_delta,
        seed=settings.seed,
    )
    task_target = check.prediction or {"N": target, "D": None}
    tasks = analyze_tasks(points, (task_target["N"], task_target["D"]), axis=axis,
                          n_boot=settings.n_boot, level=settings.level, seed=settings.seed,
                          huber_delta=settings.huber_delta, histories=histories)  # fmt: skip
    check = check.with_criteria(tasks.criteria)
    return check, tasks


def _insufficient(points: Sequence[MemberPoint], reason: str) -> dict:
    """The analysis of a family that cannot carry a fit: every part says why."""
    return {
        "status": STATUS_INSUFFICIENT,
        "reason": reason,
        "phase": schema.PHASE_INSUFFICIENT_DATA,
        "check_verdict": schema.CHECK_FAIL,
        "compute_axis": family_axis(points).to_dict(),
        "approach3": None,
        "approach2": {"applicable": False, "reason": reason},
        "approach1": {"applicable": False, "reason": reason},
        "phases": {"phase": schema.PHASE_INSUFFICIENT_DATA, "reason": reason, "segments": []},
        "check": {"verdict": schema.CHECK_FAIL, "reason": reason, "criteria": []},
        "budgets": [],
        "tasks": unfitted_tasks(points, reason),
        "metrics": {},
    }


def _law_summary(n, d, c, loss, settings: RefitSettings, check, axis: ComputeAxis):
    """Approach 3's summary (reusing the check's fit) and the check with its precision and
    law_fit criteria, once the bootstrap has put an interval on the prediction at the target."""
    budgets = np.asarray(settings.budgets or budget_ladder(c), dtype=float)
    try:
        summary, boot = summarize_chinchilla(
            n,
            d,
            loss,
            huber_delta=settings.huber_delta,
            n_boot=settings.n_boot,
            level=settings.level,
            budgets=budgets,
            seed=settings.seed,
            fit=check.fit,
            axis=axis,
        )
    except ValueError as exc:  # e.g. exponents with alpha + beta <= 0: no allocation exists
        summary, boot = {"error": str(exc)}, None
    prediction = check.prediction
    if prediction and boot is not None:
        add_interval(prediction, boot)
    if prediction:
        criteria = interval_criteria(prediction, boot, (n, d, loss, c), settings.max_halfwidth)
        check = check.with_criteria(criteria)
    summary["extrapolates"] = check.fit is not None
    if check.fit is not None and "allocation" in summary:
        # Approach 3's exponent on the family's axis, over the compute the runs span
        summary["allocation"]["a_on_axis"] = local_allocation_exponent(
            check.fit.law, [float(c.min()), float(c.max())], axis
        )
    return summary, check


def _fit_metrics(summary: dict) -> dict[str, float]:
    """The fit run's ``scaling.fit.*`` values of the law (E, A, B, alpha, beta, a, b)."""
    if "params" not in summary:
        return {}
    metrics = {schema.fit_metric(k): v for k, v in summary["params"].items()}
    metrics[schema.fit_metric("a")] = summary["allocation"]["a"]
    metrics[schema.fit_metric("b")] = summary["allocation"]["b"]
    return metrics
