"""Does the idea scale? Two families' compute frontiers, the compute multiplier and a verdict.

Each family f (the baseline b and the candidate c) has a fitted law L_f(N, D) and a compute
axis C = φ_f(N)·D (6ND unless measured). Its **frontier** is the best loss a budget buys,

    L*_f(C) = min_N L_f(N, C/φ_f(N)),

monotone decreasing in C. The **compute multiplier** at budget C is

    m(C) = L*_b⁻¹(L*_c(C)) / C,

the compute the baseline needs to reach the candidate's loss, per unit of the candidate's
compute: m > 1 means the candidate is worth m× more compute, m < 1 that it costs compute.
L*_b⁻¹ is found numerically: L*_b on a log grid of budgets (GRID_PER_DECADE per decade), then
log C interpolated linearly against log L (the frontier is smooth, so this is accurate to a
fraction of a percent). A loss the baseline never reaches (below its floor E) gives the top
of the grid, i.e. m ≈ 10^GRID_MARGIN_DECADES: "more than any budget in sight".

The **local slope** s_f(C) = d log L*_f / d log C (a central difference) says how fast each
frontier still falls; s_c − s_b < 0 means the candidate's advantage grows with scale.

Intervals resample each family's runs independently (:func:`bootstrap_chinchilla`) and
recompute everything on the pairs of replicates: percentile intervals, widened about the point
estimate by sqrt(G/(G − 5)) for the smaller family's G runs (:func:`small_sample_widening`;
without it 95 % intervals covered the truth in 88–100 % of simulated seeds, see
benchmarks/bench_compare.py).

The **crossover** is the budget where the point multiplier crosses 1, searched from the
smallest budget both families cover to two decades past the largest run; ``crossover_share``
is the fraction of replicate pairs that cross there too, and ``crossover_interval`` the
percentile interval of their crossings (when at least MIN_BOOT of them cross). The **verdict**,
from the multiplier's interval [lo, hi] over the budgets (ascending; the last is the target):

* ``crosses``: the interval lies above 1 at some budget and below 1 at another;
* ``better`` / ``worse``: otherwise, the interval lies above / below 1 at the largest budget;
* ``no_difference``: the interval contains 1 at every budget, and also when it excludes 1
  only at smaller budgets but contains it at the largest (a gain seen at small budgets that is
  not established at the target); ``note`` says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .allocation import FLOPS_PER_PARAM_TOKEN, compute_optimal
from .bootstrap import BootstrapFit, bootstrap_chinchilla
from .chinchilla import ChinchillaLaw
from .fitting import DEFAULT_HUBER_DELTA, ChinchillaFit, fit_chinchilla

BETTER, WORSE, CROSSES, NO_DIFFERENCE = "better", "worse", "crosses", "no_difference"
VERDICTS = (BETTER, WORSE, CROSSES, NO_DIFFERENCE)

GRID_PER_DECADE = 24
GRID_MARGIN_DECADES = 6.0
"""The inverse frontier is searched this many decades around the budgets asked about."""
LOG_M_TOLERANCE = 1e-3
"""|log m| below this counts as m = 1 when looking for a crossing (the grid inversion is
accurate to about 1e-4)."""
SLOPE_STEP = 0.05
"""Half-width, in natural-log units of C, of the central difference for the local slope."""
LADDER_PAST_DECADES = 1.0
"""The default budgets end this many decades past the larger family's largest run."""
CROSSOVER_PAST_DECADES = 2.0
"""The crossover is searched up to this many decades past the largest run."""
MIN_BOOT = 10
N_LAW_PARAMS = 5
CURVE_POINTS = 41
"""Budgets of the smooth curves (``curves``) drawn in the figure."""


# --- the frontier and its inverse --------------------------------------------------------------


def frontier_loss(law: ChinchillaLaw, flops: ArrayLike, axis: Any = None) -> np.ndarray:
    """L*(C): the compute-optimal loss at each budget on the family's compute axis.

    ``law`` may be a batch ((R, 1) parameters): the result is then (R, len(flops)).
    ``axis`` None is 6ND.
    """
    return _optimum(law, flops, axis).loss


def _optimum(law: ChinchillaLaw, flops: ArrayLike, axis: Any = None):
    return compute_optimal(law, flops, axis=axis)


def _log_grid(lo: float, hi: float) -> np.ndarray:
    a = math.log10(lo) - GRID_MARGIN_DECADES
    b = math.log10(hi) + GRID_MARGIN_DECADES
    return 10.0 ** np.linspace(a, b, int(math.ceil((b - a) * GRID_PER_DECADE)) + 1)


def inverse_frontier(
    law: ChinchillaLaw, target_loss: ArrayLike, grid: np.ndarray, axis: Any = None
) -> np.ndarray:
    """The budget at which the frontier of ``law`` reaches ``target_loss``, clipped to ``grid``.

    For a batched law, ``target_loss`` is (R, K): row r is inverted with replicate r.
    """
    curve = np.atleast_2d(frontier_loss(law, grid, axis))  # (R, G), decreasing along G
    t = np.asarray(target_loss, dtype=float)
    flat = t.ndim == 1
    t = np.atleast_2d(t)
    log_c, log_l, log_t = np.log(grid), np.log(curve), np.log(t)
    # i = how many grid points are still above the target: the target lies in [i-1, i].
    i = (log_l[:, None, :] > log_t[:, :, None]).sum(axis=-1)
    j = np.clip(i, 1, grid.size - 1)
    rows = np.arange(log_l.shape[0])[:, None]
    l0, l1 = log_l[rows, j - 1], log_l[rows, j]
    frac = np.where(l1 != l0, (log_t - l0) / np.where(l1 != l0, l1 - l0, 1.0), 0.0)
    out = np.exp(log_c[j - 1] + np.clip(frac, 0.0, 1.0) * (log_c[j] - log_c[j - 1]))
    out = np.where(i == 0, grid[0], np.where(i >= grid.size, grid[-1], out))
    return out[0] if flat else out


def compute_multiplier(
    baseline: ChinchillaLaw,
    candidate: ChinchillaLaw,
    flops: ArrayLike,
    *,
    baseline_axis: Any = None,
    candidate_axis: Any = None,
    grid: np.ndarray | None = None,
) -> np.ndarray:
    """m(C) = L*_b⁻¹(L*_c(C)) / C for each budget (batched laws pair replicates row by row)."""
    c = np.atleast_1d(np.asarray(flops, dtype=float))
    grid = _log_grid(c.min(), c.max()) if grid is None else grid
    target = frontier_loss(candidate, c, candidate_axis)
    return inverse_frontier(baseline, target, grid, baseline_axis) / c


def local_slope(law: ChinchillaLaw, flops: ArrayLike, axis: Any = None) -> np.ndarray:
    """d log L*/d log C at each budget, by a central difference of half-width SLOPE_STEP."""
    c = np.atleast_1d(np.asarray(flops, dtype=float))
    up = np.log(frontier_loss(law, c * math.exp(SLOPE_STEP), axis))
    down = np.log(frontier_loss(law, c * math.exp(-SLOPE_STEP), axis))
    return (up - down) / (2 * SLOPE_STEP)


def _sign(log_m: np.ndarray) -> np.ndarray:
    """Sign of log m along the last axis; within the inversion's accuracy of 0 a point keeps
    the sign before it (0 at the start), so identical frontiers never cross."""
    sign = np.atleast_2d(np.where(np.abs(log_m) < LOG_M_TOLERANCE, 0.0, np.sign(log_m)))
    last = np.maximum.accumulate(np.where(sign != 0, np.arange(sign.shape[1]), 0), axis=1)
    filled = np.take_along_axis(sign, last, axis=1)
    return filled.reshape(np.shape(log_m))


def _scan(lo: float, hi: float) -> np.ndarray:
    count = int(math.log10(hi / lo) * GRID_PER_DECADE) + 2
    return 10.0 ** np.linspace(math.log10(lo), math.log10(hi), count)


def replicate_crossovers(
    baseline: ChinchillaLaw,
    candidate: ChinchillaLaw,
    lo: float,
    hi: float,
    *,
    baseline_axis: Any = None,
    candidate_axis: Any = None,
) -> np.ndarray:
    """For batched laws: each replicate pair's first crossing of m = 1 in [lo, hi] (NaN: none).

    The crossing is interpolated linearly in (log C, log m) between scan points.
    """
    scan = _scan(lo, hi)
    log_m = np.log(compute_multiplier(baseline, candidate, scan, grid=_log_grid(lo, hi),
                                      baseline_axis=baseline_axis,
                                      candidate_axis=candidate_axis))  # fmt: skip
    log_m = np.atleast_2d(log_m)
    sign = _sign(log_m)
    change = sign[:, :-1] * sign[:, 1:] < 0
    k = change.argmax(axis=1)
    rows = np.arange(log_m.shape[0])
    m0, m1 = log_m[rows, k], log_m[rows, k + 1]
    x0, x1 = np.log(scan[k]), np.log(scan[k + 1])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x = x0 - m0 * (x1 - x0) / (m1 - m0)  # (meaningless in rows without a crossing)
        return np.where(change.any(axis=1), np.exp(x), np.nan)


def find_crossover(
    baseline: ChinchillaLaw,
    candidate: ChinchillaLaw,
    lo: float,
    hi: float,
    *,
    baseline_axis: Any = None,
    candidate_axis: Any = None,
) -> float | None:
    """The smallest budget in [lo, hi] where the multiplier crosses 1, or None."""
    found = replicate_crossovers(baseline, candidate, lo, hi, baseline_axis=baseline_axis,
                                 candidate_axis=candidate_axis)  # fmt: skip
    value = float(np.ravel(found)[0])
    return value if math.isfinite(value) else None


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


@dataclass(frozen=True)
class Comparison:
    """The comparison of a candidate family against a baseline."""

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
    warnings: list[str] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)
    fits: tuple[ChinchillaFit, ChinchillaFit] | None = None

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "note": self.note,
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
    out["slope_diff"] = out["slope_candidate"] - out["slope_baseline"]
    rep_diff = local_slope(rep_c, c, ax_c) - local_slope(rep_b, c, ax_b)
    out["slope_diff_lo"], out["slope_diff_hi"] = _interval(out["slope_diff"], rep_diff, q, widen,
                                                           log=False)  # fmt: skip
    return out


def _family_status(runs: FamilyRuns, fit: ChinchillaFit, target_flops: float, check: bool):
    """The family's phase (compute frontier) and scaling-check verdict for the target budget."""
    from .check import scaling_check

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
    ladder = budget_ladder(cb, cc)
    c = ladder if budgets is None else np.sort(np.asarray(budgets, dtype=float).ravel())
    if c.size == 0 or np.any(~np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"budgets must be positive and finite, got {c.tolist()}")

    fits, boots = [], []
    for k, runs in enumerate((baseline, candidate)):
        try:
            fit = fit_chinchilla(runs.n, runs.d, runs.loss, huber_delta=huber_delta)
        except ValueError as exc:
            raise ValueError(f"family {runs.name!r}: {exc}") from None
        if not (fit.law.alpha > 0 and fit.law.beta > 0):
            raise ValueError(
                f"family {runs.name!r}: the fitted exponents are not positive "
                f"(alpha={fit.law.alpha:.4g}, beta={fit.law.beta:.4g}); no frontier to compare"
            )
        fits.append(fit)
        boots.append(bootstrap_chinchilla(runs.n, runs.d, runs.loss, groups=runs.groups,
                                          n_boot=n_boot, seed=seed + k, fit=fit,
                                          huber_delta=huber_delta))  # fmt: skip
    keep = _valid_replicates(boots[0]) & _valid_replicates(boots[1])
    if keep.sum() < MIN_BOOT:
        raise ValueError(
            f"only {int(keep.sum())} of {n_boot} bootstrap replicate pairs have positive "
            "exponents; the runs do not pin down both frontiers"
        )
    law_b, law_c = fits[0].law, fits[1].law
    rep_b, rep_c = _batch(boots[0].laws(), keep), _batch(boots[1].laws(), keep)
    axes = {"baseline_axis": baseline.axis, "candidate_axis": candidate.axis}

    search = (float(ladder[0]), float(max(cb.max(), cc.max()) * 10**CROSSOVER_PAST_DECADES))
    grid = _log_grid(min(c.min(), search[0]), max(c.max(), search[1]))
    q = ((1 - level) / 2, 1 - (1 - level) / 2)

    pair = (law_b, law_c, rep_b, rep_c)
    widen = small_sample_widening(min(boots[0].n_groups, boots[1].n_groups))
    table = _evaluate(pair, c, grid, q, axes, widen)
    rows = [{k: float(v[i]) for k, v in table.items()} for i in range(c.size)]
    curve_c = 10.0 ** np.linspace(math.log10(c.min()), math.log10(c.max()), CURVE_POINTS)
    curves = {k: v.tolist() for k, v in _evaluate(pair, curve_c, grid, q, axes, widen).items()}
    m_lo, m_hi = table["lo"], table["hi"]
    verdict, note = decide(m_lo, m_hi)
    crossover = find_crossover(law_b, law_c, *search, **axes)
    reps = replicate_crossovers(rep_b, rep_c, *search, **axes)
    crossing = reps[np.isfinite(reps)]
    interval = None
    if crossing.size >= MIN_BOOT:
        interval = tuple(float(v) for v in np.quantile(crossing, q))

    infos = [_family_status(r, f, float(c[-1]), check)
             for r, f in zip((baseline, candidate), fits, strict=True)]  # fmt: skip
    warnings = []
    for role, info in zip(("baseline", "candidate"), infos, strict=True):
        if info["phase"] is not None and info["phase"] != "scaling":
            warnings.append(
                f"{role} {info['family']!r} is not in its scaling phase ({info['phase']}): a "
                "multiplier measured off the scaling phase says nothing about scale"
            )
    dropped = n_boot - int(keep.sum())
    if dropped:
        warnings.append(f"{dropped} of {n_boot} bootstrap replicate pairs had a non-positive "
                        "exponent and were left out of the intervals")  # fmt: skip
    return Comparison(
        verdict=verdict,
        note=note,
        crossover_flops=crossover,
        crossover_range=search,
        crossover_interval=interval,
        crossover_share=float(crossing.size / reps.size),
        baseline=infos[0],
        candidate=infos[1],
        budgets=rows,
        level=level,
        n_boot=int(keep.sum()),
        warnings=warnings,
        curves=curves,
        fits=(fits[0], fits[1]),
    )
