"""Does the idea scale? Two families compared over what they measured, then by their laws.

The answer has two scopes, never mixed (docs/reference.md, "Does the idea scale?"):

* **Over the trained range** (``verdict``, ``verdict_scope = "trained"``): the families'
  measured frontiers (:mod:`measured_frontier`: isoFLOP minima or the lower envelope of their
  runs) at every budget both reached: ``better``, ``worse``, ``crosses``, ``no_difference`` or
  ``withheld`` (ranges that do not overlap, or a family with fewer than ``MIN_SIZES`` sizes).
* **Past it** (``verdict_extrapolated`` up to ``extrapolated_to``): the laws' compute multiplier
  m(C) (:mod:`frontier`), with intervals from paired bootstrap replicates of both families,
  percentile intervals widened about the point estimate by sqrt(G/(G − 5)) for the smaller
  family's G runs (:func:`small_sample_widening`), and past the trained range by both families'
  extrapolation error (:mod:`extrapolation`). It is ``withheld`` when either law misses its own
  measured frontier (:func:`law_fit_status`): a law that cannot describe its family says
  nothing past it.

**Shift or slope** (:mod:`shift_test`): one law shifted by a single compute multiplier against
two laws; where one multiplier is enough (``same_slope``), the per-budget multiplier is the
shift fit's m. ``crossover_share`` is the fraction of replicate pairs whose laws cross between
the smallest shared budget and two decades past the largest run, and ``crossover_interval``
the percentile interval of their crossings (when at least MIN_BOOT of them cross).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import N_LAW_PARAMS, BootstrapFit
from .chinchilla import ChinchillaLaw
from .compared_family import (  # noqa: F401  (FamilyRuns, MIN_SIZES: re-exported)
    MIN_SIZES,
    FamilyRuns,
    FittedFamily,
    family_infos,
    fit_family,
    support_problem,
)
from .fitting import DEFAULT_HUBER_DELTA, ChinchillaFit
from .frontier import (  # noqa: F401  (re-exported: the comparison's building blocks)
    GRID_MARGIN_DECADES,
    GRID_PER_DECADE,
    LOG_M_TOLERANCE,
    SLOPE_STEP,
    _log_grid,
    _optimum,
    compute_multiplier,
    find_crossover,
    frontier_loss,
    inverse_frontier,
    local_slope,
    replicate_crossovers,
)
from .measured_frontier import (
    compare_measured,
)
from .shift_test import SAME_SLOPE, shift_test
from .verdicts import BETTER, CROSSES, NO_DIFFERENCE, VERDICTS, WITHHELD, WORSE  # noqa: F401

LADDER_PAST_DECADES = 1.0
"""The default budgets end this many decades past the larger family's largest run."""
CROSSOVER_PAST_DECADES = 2.0
"""The crossover is searched up to this many decades past the largest run."""
MIN_BOOT = 10
MAX_PAST_DECADES = 2.0
"""Budgets further than this past the trained range get no extrapolated verdict."""

CURVE_POINTS = 41
"""Budgets of the smooth curves (``curves``) drawn in the figure."""


def decide(lo: ArrayLike, hi: ArrayLike) -> tuple[str, str]:
    """The verdict and a note, from the multiplier's interval per budget (ascending budgets)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    above, below = lo > 1, hi < 1
    if above.any() and below.any():
        return CROSSES, "the interval lies above 1 at some budgets and below 1 at others"
    if above[-1]:
        return BETTER, "the interval lies above 1 at the largest budget"
    if below[-1]:
        return WORSE, "the interval lies below 1 at the largest budget"
    if not (above.any() or below.any()):
        return NO_DIFFERENCE, "the interval contains 1 at every budget"
    side = "better" if above.any() else "worse"
    return NO_DIFFERENCE, (
        f"{side} only at smaller budgets; at the largest budget the interval contains 1"
    )


# --- comparing two families ----------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """The comparison of a candidate family against a baseline (module docstring).

    ``verdict`` covers the trained range (``verdict_scope`` = ``trained``): the measured
    frontiers. ``verdict_extrapolated`` covers the budgets past it, from the laws, up to
    ``extrapolated_to``; it is ``withheld`` (with ``extrapolated_note``) where either law
    misses its own measured frontier.
    """

    verdict: str
    note: str
    crossover_flops: float | None
    crossover_range: tuple[float, float]
    crossover_interval: tuple[float, float] | None
    crossover_share: float
    baseline: dict
    candidate: dict
    budgets: list[dict]
    level: float
    n_boot: int
    measured: dict = field(default_factory=dict)
    shift_multiplier: dict | None = None
    slope_test: dict | None = None
    verdict_extrapolated: str = WITHHELD
    extrapolated_note: str = ""
    extrapolated_to: float | None = None
    warnings: list[str] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)
    fits: tuple[ChinchillaFit, ChinchillaFit] | None = None

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "verdict_scope": "trained",
            "note": self.note,
            "verdict_extrapolated": self.verdict_extrapolated,
            "extrapolated_note": self.extrapolated_note,
            "extrapolated_to": self.extrapolated_to,
            "shift_multiplier": self.shift_multiplier,
            "slope_test": self.slope_test,
            "measured": self.measured,
            "trained_range": self.measured.get("overlap"),
            "crossover_flops": self.crossover_flops,
            "crossover_range": list(self.crossover_range),
            "crossover_interval": None
            if self.crossover_interval is None
            else list(self.crossover_interval),
            "crossover_share": self.crossover_share,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "budgets": self.budgets,
            "level": self.level,
            "n_boot": self.n_boot,
            "warnings": list(self.warnings),
            "curves": self.curves,
        }


def budget_ladder(baseline_flops: np.ndarray, candidate_flops: np.ndarray) -> np.ndarray:
    """From the smallest budget both families cover to 10× past the larger one's largest run.

    Budgets are spaced about half a decade apart (at least 5 of them).
    """
    lo = max(float(baseline_flops.min()), float(candidate_flops.min()))
    hi = max(float(baseline_flops.max()), float(candidate_flops.max())) * 10**LADDER_PAST_DECADES
    count = max(5, int(math.ceil(2 * math.log10(hi / lo))) + 1)
    return 10.0 ** np.linspace(math.log10(lo), math.log10(hi), count)


def _valid_replicates(boot: BootstrapFit) -> np.ndarray:
    t = boot.thetas
    return np.all(np.isfinite(t), axis=1) & (t[:, 3] > 0) & (t[:, 4] > 0)


def _batch(laws: ChinchillaLaw, keep: np.ndarray) -> ChinchillaLaw:
    return ChinchillaLaw(E=laws.E[keep], A=laws.A[keep], B=laws.B[keep],
                         alpha=laws.alpha[keep], beta=laws.beta[keep])  # fmt: skip


def small_sample_widening(n_runs: int) -> float:
    """sqrt(G / (G − p)) for G runs and the law's p = 5 parameters.

    Resampling G runs spreads a fitted quantity by about (G − p)/G of its true variance (as
    the residuals of a least-squares fit do), so percentile intervals come out too narrow for
    small families: each interval is widened by this factor about its point estimate.
    """
    if n_runs <= N_LAW_PARAMS:
        raise ValueError(f"the comparison needs more than {N_LAW_PARAMS} runs per family, "
                         f"got {n_runs}")  # fmt: skip
    return math.sqrt(n_runs / (n_runs - N_LAW_PARAMS))


def _interval(point, samples, q, widen: float, log: bool):
    """Percentile interval of ``samples`` widened by ``widen`` about ``point`` (in log space
    for positive quantities)."""
    lo, hi = np.quantile(samples, q, axis=0)
    if log:
        centre = np.log(point)
        return (np.exp(centre + widen * (np.log(lo) - centre)),
                np.exp(centre + widen * (np.log(hi) - centre)))  # fmt: skip
    return point + widen * (lo - point), point + widen * (hi - point)


def _evaluate(pair, c: np.ndarray, grid: np.ndarray, q, axes: dict, widen: float):
    """Every per-budget quantity at budgets ``c``: points from the fits, intervals from the
    paired replicates (``pair`` = baseline law, candidate law, and their replicate batches)."""
    law_b, law_c, rep_b, rep_c = pair
    ax_b, ax_c = axes["baseline_axis"], axes["candidate_axis"]
    out = {"flops": c}
    out["loss_baseline"] = frontier_loss(law_b, c, ax_b)
    out["loss_candidate"] = frontier_loss(law_c, c, ax_c)
    out["multiplier"] = compute_multiplier(law_b, law_c, c, grid=grid, **axes)
    reps = compute_multiplier(rep_b, rep_c, c, grid=grid, **axes)
    out["lo"], out["hi"] = _interval(out["multiplier"], reps, q, widen, log=True)
    for key, rep, ax in (("baseline", rep_b, ax_b), ("candidate", rep_c, ax_c)):
        out[f"loss_{key}_lo"], out[f"loss_{key}_hi"] = _interval(
            out[f"loss_{key}"], frontier_loss(rep, c, ax), q, widen, log=True)  # fmt: skip
    out["slope_baseline"] = local_slope(law_b, c, ax_b)
    out["slope_candidate"] = local_slope(law_c, c, ax_c)
    return out


def _shift(
    fams: tuple[FittedFamily, FittedFamily], c_trained: np.ndarray, axes: dict, level: float
):
    law_b, law_c = fams[0].fit.law, fams[1].fit.law
    m = compute_multiplier(law_b, law_c, c_trained, **axes)
    data = [(f.runs.n, f.runs.d, f.runs.loss) for f in fams]
    return shift_test(data[0], data[1], (law_b, law_c), float(np.log(m).mean()),
                      float(np.log(m[-1]) - np.log(m[0])), level=level)  # fmt: skip


def _model_rows(table: dict, shift, trained_top: float, fams, level: float) -> list[dict]:
    """Per-budget rows of the modelled multiplier: the shift fit's where the slopes agree, the
    separate laws' otherwise; past the trained range widened by the extrapolation error."""
    cals = [f.calibration for f in fams]
    t = min(cals, key=lambda cal: cal.dof).quantile(level)
    rows = []
    for i, c in enumerate(table["flops"]):
        row = {k: float(v[i]) for k, v in table.items()}
        if shift.decision == SAME_SLOPE:
            row["multiplier"], row["lo"], row["hi"] = (
                shift.multiplier, shift.multiplier_lo, shift.multiplier_hi)  # fmt: skip
        past = max(math.log10(c / trained_top), 0.0)
        slope = abs(row["slope_baseline"]) or 1e-12
        error = math.hypot(*(float(cal.log_error(past)) for cal in cals))
        extra = t * error / slope  # a log-loss error e is e/|s| in log compute
        log_m = math.log(row["multiplier"])
        row["lo"] = math.exp(log_m - math.hypot(log_m - math.log(row["lo"]), extra))
        row["hi"] = math.exp(min(log_m + math.hypot(math.log(row["hi"]) - log_m, extra), 700.0))
        row["scope"] = "trained" if past == 0 else "extrapolated"
        row["decades_past"] = past
        rows.append(row)
    return rows


def _extrapolated(rows: list[dict], fams, trained_top: float):
    """(verdict, note, extrapolated_to) for the budgets past the trained range."""
    misfit = [f.runs.name for f in fams if f.law_fit["status"] == "misfit"]
    if misfit:
        f = next(f for f in fams if f.runs.name == misfit[0])
        return WITHHELD, (
            f"law_fit: misfit for {', '.join(repr(m) for m in misfit)}: the law misses its own "
            f"measured frontier by {f.law_fit['largest_miss']:+.1%} at "
            f"{f.law_fit['at_flops']:.3g} FLOPs (allowed {f.law_fit['allowed']:.1%}); only the "
            "measured range is compared"), None  # fmt: skip
    past = [r for r in rows if r["scope"] == "extrapolated"]
    near = [r for r in past if r["decades_past"] <= MAX_PAST_DECADES]
    if not past:
        return WITHHELD, "no budget past the trained range was asked for", None
    if not near:
        note = (f"every budget asked for lies more than {MAX_PAST_DECADES:g} decades past the "
                f"trained range (up to {trained_top:.3g} FLOPs)")  # fmt: skip
        return WITHHELD, note, None
    verdict, note = decide([r["lo"] for r in near], [r["hi"] for r in near])
    side = [r["lo"] > 1 or r["hi"] < 1 for r in near]
    upto = None
    for r, excl in zip(near, side, strict=True):
        if not excl:
            break
        upto = r["flops"]
    if verdict == NO_DIFFERENCE and upto is not None:
        verdict = BETTER if near[0]["lo"] > 1 else WORSE
        note = f"the interval excludes 1 up to {upto:.3g} FLOPs, then contains it"
    return verdict, note, upto


def _crossover(measured, fams, laws, search, verdict_x: str, axes: dict) -> float | None:
    """Measured before modelled: where the measured frontiers cross, the laws' crossing when
    both laws fit and it lies between the budgets measured on either side (it uses every run),
    else the measured estimate; with no measured crossing, the laws' one (where both laws fit:
    a crossing the laws see, which the verdicts say whether the runs establish)."""
    fit_ok = all(f.law_fit["status"] == "ok" for f in fams)
    if measured.crossing_between is not None:
        lo, hi = measured.crossing_between
        law = find_crossover(*laws, lo, hi, **axes) if fit_ok else None
        return law if law is not None else measured.crossover
    return find_crossover(*laws, *search, **axes) if fit_ok or verdict_x == CROSSES else None


def _budgets(cb: np.ndarray, cc: np.ndarray, budgets: ArrayLike | None) -> np.ndarray:
    """The budgets to read: the ladder over both families, or the user's, refused when not
    positive or more than ``MAX_PAST_DECADES`` past the larger family's largest run."""
    c = budget_ladder(cb, cc) if budgets is None else np.sort(np.asarray(budgets, float).ravel())
    if c.size == 0 or np.any(~np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"budgets must be positive and finite, got {c.tolist()}")
    past = float(c.max() / max(cb.max(), cc.max()))
    if budgets is not None and past > 10**MAX_PAST_DECADES:
        raise ValueError(
            f"budget {c.max():.3g} FLOPs lies {math.log10(past):.3g} decades past the larger "
            f"family's largest run; compare reads at most {MAX_PAST_DECADES:g} decades past"
        )
    return c


def _fit_both(baseline, candidate, n_boot, seed, huber_delta, level, unsupported):
    """Both families fitted and bootstrapped, and the replicate pairs that are usable."""
    try:
        fams = tuple(fit_family(r, k, n_boot, seed, huber_delta, level)
                     for k, r in enumerate((baseline, candidate)))  # fmt: skip
    except ValueError:
        if unsupported:  # the reason the fit failed is the family's size, say that
            raise ValueError("; ".join(unsupported)) from None
        raise
    keep = _valid_replicates(fams[0].boot) & _valid_replicates(fams[1].boot)
    if keep.sum() < MIN_BOOT:
        raise ValueError(
            f"only {int(keep.sum())} of {n_boot} bootstrap replicate pairs have positive "
            "exponents; the runs do not pin down both frontiers"
        )
    return fams, keep


def _trained_budgets(cb: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """Five budgets over the compute both families trained at (over both ranges when they
    do not overlap): where the shift is read."""
    c_trained = np.geomspace(max(cb.min(), cc.min()), min(cb.max(), cc.max()), 5)
    if c_trained[0] > c_trained[-1]:
        c_trained = np.geomspace(min(cb.min(), cc.min()), max(cb.max(), cc.max()), 5)
    return c_trained


def _warnings(infos: list[dict], n_boot: int, kept: int) -> list[str]:
    warnings = []
    for role, info in zip(("baseline", "candidate"), infos, strict=True):
        if info["phase"] is not None and info["phase"] != "scaling":
            warnings.append(
                f"{role} {info['family']!r} is not in its scaling phase ({info['phase']}): a "
                "multiplier measured off the scaling phase says nothing about scale"
            )
    if n_boot - kept:
        warnings.append(f"{n_boot - kept} of {n_boot} bootstrap replicate pairs had a "
                        "non-positive exponent and were left out of the intervals")  # fmt: skip
    return warnings


# Over 60 lines only by its documented keyword options and docstring; the body is short.
def compare_families(
    baseline: FamilyRuns,
    candidate: FamilyRuns,
    *,
    budgets: ArrayLike | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    huber_delta: float = DEFAULT_HUBER_DELTA,
    check: bool = True,
) -> Comparison:
    """Compare ``candidate`` with ``baseline`` (see the module docstring for every quantity).

    ``check`` runs each family's scaling check (phase and verdict; two more fits per family).
    """
    if n_boot < MIN_BOOT:
        raise ValueError(f"the comparison needs at least {MIN_BOOT} bootstrap replicates, "
                         f"got {n_boot}")  # fmt: skip
    if not 0 < level < 1:
        raise ValueError(f"interval level must lie in (0, 1), got {level}")
    cb, cc = baseline.compute(), candidate.compute()
    c = _budgets(cb, cc, budgets)
    unsupported = [r for r in (support_problem(baseline), support_problem(candidate)) if r]
    fams, keep = _fit_both(baseline, candidate, n_boot, seed, huber_delta, level, unsupported)
    law_b, law_c = fams[0].fit.law, fams[1].fit.law
    rep_b, rep_c = _batch(fams[0].boot.laws(), keep), _batch(fams[1].boot.laws(), keep)
    axes = {"baseline_axis": baseline.axis, "candidate_axis": candidate.axis}
    measured = compare_measured(fams[0].frontier, fams[1].frontier, level=level)
    trained_top = min(cb.max(), cc.max())
    shift = _shift(fams, _trained_budgets(cb, cc), axes, level)

    ladder = budget_ladder(cb, cc)
    search = (float(ladder[0]), float(max(cb.max(), cc.max()) * 10**CROSSOVER_PAST_DECADES))
    grid = _log_grid(min(c.min(), search[0]), max(c.max(), search[1]))
    q = ((1 - level) / 2, 1 - (1 - level) / 2)
    pair = (law_b, law_c, rep_b, rep_c)
    widen = small_sample_widening(min(fams[0].boot.n_groups, fams[1].boot.n_groups))

    def rows_at(budgets_at: np.ndarray) -> list[dict]:
        table = _evaluate(pair, budgets_at, grid, q, axes, widen)
        return _model_rows(table, shift, trained_top, fams, level)

    rows = rows_at(c)
    curve_rows = rows_at(10.0 ** np.linspace(math.log10(c.min()), math.log10(c.max()),
                                             CURVE_POINTS))  # fmt: skip
    verdict_x, note_x, upto = _extrapolated(rows, fams, trained_top)
    reps = replicate_crossovers(rep_b, rep_c, *search, **axes)
    crossing = reps[np.isfinite(reps)]
    interval = None
    if crossing.size >= MIN_BOOT:
        interval = tuple(float(v) for v in np.quantile(crossing, q))
    crossover = _crossover(measured, fams, (law_b, law_c), search, verdict_x, axes)
    verdict, note = measured.verdict, measured.note
    if unsupported:
        verdict, note = WITHHELD, "; ".join(unsupported)
        verdict_x, note_x, upto, crossover = WITHHELD, note, None, None
    infos = family_infos(fams, float(c[-1]), check)
    return Comparison(
        verdict=verdict, note=note, crossover_flops=crossover, crossover_range=search,
        crossover_interval=interval, crossover_share=float(crossing.size / reps.size),
        baseline=infos[0], candidate=infos[1], budgets=rows, level=level,
        n_boot=int(keep.sum()), measured=measured.to_dict(),
        shift_multiplier=shift.shift_dict(), slope_test=shift.slope_dict(),
        verdict_extrapolated=verdict_x, extrapolated_note=note_x, extrapolated_to=upto,
        warnings=_warnings(infos, n_boot, int(keep.sum())),
        curves={k: [r[k] for r in curve_rows] for k in curve_rows[0] if k != "scope"},
        fits=(fams[0].fit, fams[1].fit),
    )  # fmt: skip
