"""Phase of a scaling family along one axis: cold start, scaling, plateau or inverse scaling.

Hestness et al. (2017) see three regions in learning curves: a small-data region where the
loss stays near a best guess, a power-law region, and an irreducible-error region. Here they
are ``cold_start``, ``scaling`` and ``plateau``; a loss that *rises* along the axis (by more
than ``flat_drop_per_decade`` per decade) is ``inverse_scaling``. :func:`detect_phases` says
which one a family is in at its frontier (largest x), and where along x each phase holds.

1. **Points.** Several losses at one x (seeds, data budgets) become one per x: the best
   (``reduce="min"``, the frontier; default) or the median (``"median"``); ``"none"`` keeps
   them all. Where every run has its own x (isoFLOP sweeps along C), ``"envelope"`` takes at
   each x the best loss of any run at or below it (the compute-efficient frontier, every x
   kept, so that a stalled frontier shows as a flat tail), and ``"pareto"`` keeps only the
   runs that beat every run at smaller x (a stalled tail then has no points at all: it
   cannot show a plateau).
   Fewer than 3 distinct x, or under ``min_span_decades`` (0.5) of span: ``insufficient_data``.
2. **Model.** Candidate laws, fitted by least squares on ``log(loss)``
   (:data:`CANDIDATES`, with their parameter counts): a constant; a pure power law
   ``A x**-alpha``; the saturating law ``E + A x**-alpha``; two 3-parameter smoothly broken
   power laws (Caballero et al. 2022) with the limit ``a = 0`` and sharpness ``f = 0.25``
   fixed, one flat before its break (``c0 = 0``: the cold-start shape, which no saturating
   law can take) and one flat after it (``c0 + c1 = 0``: a sharp levelling off); and the
   full broken power law with 1 break (from 8 points) and 2 breaks (from 16 points). The
   lowest **AICc** on the log residuals wins:
   ``n log(RSS/n) + 2k + 2k(k+1)/(n-k-1)``, ``k`` the law's parameters (the noise variance,
   common to all, not counted, as in lmfit), a law taking part only where ``n - k - 1 >= 1``,
   the residual RMS floored at 1e-4 so that noiseless data do not reward extra parameters.
   The constant is what keeps noise on a flat family from being read as a trend; the
   reduced broken laws are what let 6-10 points show a break at all. On 3 points only the
   constant and the power law are compared, by plain AIC (AICc is undefined there).
3. **Local slope.** ``s(x) = d log L / d log x`` of the chosen law on a dense log grid over the
   data range; the loss falls by ``1 - 10**s`` per decade.
4. **Flat or falling.** A point is *flat* where the loss falls by less than
   ``flat_drop_per_decade`` (default 2 %: ``s > -0.0088``). A *leading* stretch is also flat
   where it falls at under ``cold_start_ratio`` (default 1/5) of the steepest rate reached at
   larger x, counting only rates with ``min_segment_points`` observed x at or beyond them: a
   cold start is flat relative to the take-off that ends it (the BNSL paper's 4-digit
   addition falls 12 % per decade before its break and > 99 % after). A run of flat or
   falling x holding fewer than ``min_segment_points`` (default 2) observed x is merged into
   its neighbours: a phase must be seen in the data, not only in the fitted curve's bend.
5. **Segments.** Falling runs are ``scaling``; flat runs before the first falling run are
   ``cold_start``; flat runs after a falling run are ``plateau``. A family flat everywhere is
   ``cold_start`` (it never left its starting level), unless ``chance_loss`` (the loss of a
   uniform guess, ``log(vocab)``) is given and the flat level lies more than
   ``chance_tolerance`` (10 %) below it: it learned something and stopped improving, a
   ``plateau``.
6. **Phase at the frontier.** The phase of the last segment, except that a last ``scaling``
   segment after a cold start spanning under ``min_scaling_decades`` (default 1) is still
   ``cold_start`` (still taking off: a power law fitted to it would not extrapolate), and
   that with ``chance_loss`` given, a frontier loss within ``chance_tolerance`` of it is
   ``cold_start`` whatever the shape.

Why 2 % per decade: Chinchilla's own compute-optimal frontier (Epoch's fit) still falls
3.1 % per decade of compute at 5.9e23 FLOPs, and Kaplan's L(N) falls 16 % per decade; a flat
threshold much above 2 % would call the best-known scaling laws plateaus.

A plateau is decided by the slope, not by the distance to a fitted irreducible term: along
one axis a curve that levels off far above the true floor and one that reaches it look the
same, and any saturating fit puts its floor where the curve flattens. Both mean that this
axis alone no longer buys loss; telling them apart needs the other axes (e.g. the joint
fit's E), so the report gives the frontier loss for the caller to compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from mlflow_scaling.laws.bnsl import fit_broken_power_law
from mlflow_scaling.laws.power_law import SaturatingPowerLaw, fit_saturating_power_law
from mlflow_scaling.laws.validation import positive_finite, unit_exponent

from .phase_report import (  # noqa: F401  (re-exported: the report's names)
    INVERSE_SCALING,
    PHASES,
    ConstantLaw,
    PhaseLaw,
    PhaseReport,
    Segment,
    drop_per_decade,
    phase_and_reason,
    reporter,
    slope_for_drop,
)

__all__ = [
    "CANDIDATES",
    "PHASES",
    "REDUCTIONS",
    "ConstantLaw",
    "PhaseLaw",
    "PhaseReport",
    "Segment",
    "detect_phases",
    "drop_per_decade",
    "slope_for_drop",
]

Reduce = Literal["min", "median", "envelope", "pareto", "none"]
REDUCTIONS = ("min", "median", "envelope", "pareto", "none")

# Candidate laws and their number of fitted parameters.
CANDIDATES: dict[str, int] = {
    "constant": 1,
    "power_law": 2,
    "saturating_power_law": 3,
    "broken_power_law_flat_start": 3,
    "broken_power_law_flat_end": 3,
    "broken_power_law_1": 6,
    "broken_power_law_2": 9,
}
# Sharpness f of the two 3-parameter broken laws: the slope changes over ~0.5 decade.
REDUCED_SHARPNESS = 0.25
_GRID_POINTS = 512
# x and loss are fitted in their own units while the log10 of their geometric mean lies within
# these ranges, else in units of a power of ten (``units`` in the report): a law fitted to
# x near 1e300 would overflow its amplitude.
X_UNIT_RANGE = (-12.0, 25.0, 0.0)
LOSS_UNIT_RANGE = (-30.0, 30.0, 0.0)
_RMS_FLOOR = 1e-4  # floor on the RMS log residual used by AICc


# --- input -------------------------------------------------------------------------------


def _reduce_points(
    x: ArrayLike, loss: ArrayLike, reduce: Reduce
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Points to fit, sorted by x, and the input indices they come from."""
    x_arr = np.asarray(x, dtype=float).ravel()
    y_arr = np.asarray(loss, dtype=float).ravel()
    if x_arr.shape != y_arr.shape:
        raise ValueError(f"x has {x_arr.size} values but loss has {y_arr.size}")
    positive_finite(x_arr, "x")
    positive_finite(y_arr, "loss")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    order = np.lexsort((y_arr, x_arr))  # by x, then by loss
    xs, ys = x_arr[order], y_arr[order]
    if reduce == "none":
        return xs, ys, order, x_arr.size
    first = np.flatnonzero(np.concatenate([[True], xs[1:] != xs[:-1]]))
    if reduce == "median":
        groups = np.split(ys, first[1:])
        return xs[first], np.array([np.median(g) for g in groups]), order, x_arr.size
    ux, uy, used = xs[first], ys[first], order[first]  # the best loss at each x
    if reduce == "pareto":
        keep = uy < np.minimum.accumulate(np.concatenate([[np.inf], uy[:-1]]))
        ux, uy, used = ux[keep], uy[keep], used[keep]
    elif reduce == "envelope":
        best = np.minimum.accumulate(uy)
        holder = used[np.maximum.accumulate(np.where(uy <= best, np.arange(uy.size), 0))]
        uy, used = best, np.unique(holder)
    return ux, uy, used, x_arr.size


# --- model choice ------------------------------------------------------------------------


def _information_criterion(log_residuals: np.ndarray, n_params: int, corrected: bool) -> float:
    """AICc (or, with ``corrected=False``, AIC) of a law with ``n_params`` fitted parameters.

    Gaussian errors on log loss: ``n log(RSS / n) + 2k [+ 2k(k + 1) / (n - k - 1)]`` with
    ``k`` the law's parameters (the noise variance, shared by every candidate, is not
    counted, as in lmfit). AICc is infinite where ``n - k - 1 < 1``.
    """
    n = log_residuals.size
    k = n_params
    rss = max(float(np.sum(log_residuals**2)), n * _RMS_FLOOR**2)
    value = n * np.log(rss / n) + 2 * k
    if not corrected:
        return value
    if n - k - 1 < 1:
        return np.inf
    return value + 2 * k * (k + 1) / (n - k - 1)


def _criterion_for(n: int) -> str:
    """AICc, except on 3 points where only a constant and a power law are compared, by AIC."""
    return "aicc" if n >= 4 else "aic"


def _fit_candidates(
    x: np.ndarray, y: np.ndarray, names: Sequence[str]
) -> tuple[dict[str, float], dict[str, PhaseLaw]]:
    """Fit and score every candidate in ``names`` that ``len(x)`` points can score."""
    n = x.size
    corrected = _criterion_for(n) == "aicc"
    log_y = np.log(y)
    scores: dict[str, float] = {}
    laws: dict[str, PhaseLaw] = {}
    for name in names:
        n_params = CANDIDATES[name]
        if not corrected and n_params > 2:
            continue
        if corrected and (n - n_params - 1 < 1 or (name == "broken_power_law_2" and n < 16)):
            continue  # AICc undefined; 2 breaks also need the points to have a chance to win
        if name == "constant":
            law: PhaseLaw = ConstantLaw(float(np.exp(np.mean(log_y))))
        elif name == "power_law":
            slope, intercept = np.polyfit(np.log(x), log_y, 1)
            law = SaturatingPowerLaw(E=0.0, A=float(np.exp(intercept)), alpha=float(-slope))
        elif name == "saturating_power_law":
            law, _ = fit_saturating_power_law(x, y, huber_delta=np.inf)
        elif name == "broken_power_law_flat_start":
            law, _ = fit_broken_power_law(
                x, y, fixed={"a": 0.0, "c0": 0.0, "f": REDUCED_SHARPNESS}, n_polish=1, max_nfev=60
            )
        elif name == "broken_power_law_flat_end":
            law, _ = fit_broken_power_law(
                x,
                y,
                fixed={"a": 0.0, "f": REDUCED_SHARPNESS},
                final_slope=0.0,
                n_polish=1,
                max_nfev=60,
            )
        else:
            law, _ = fit_broken_power_law(x, y, n_breaks=int(name[-1]), n_polish=1, max_nfev=60)
        residuals = log_y - np.log(law.predict(x))
        scores[name] = _information_criterion(residuals, n_params, corrected)
        laws[name] = law
    return scores, laws


# --- segments ----------------------------------------------------------------------------


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges of equal consecutive labels."""
    edges = np.flatnonzero(np.diff(labels.astype(int))) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [labels.size]])
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _merge_unsupported_runs(labels: np.ndarray, point_index: np.ndarray, min_points: int) -> None:
    """Flip runs holding fewer than ``min_points`` observed x into their neighbours.

    ``point_index`` is the grid index of each observed x. The least supported run goes first
    (ties: the shorter one), until every run is supported or one run is left.
    """
    while True:
        runs = _runs(labels)
        if len(runs) <= 1:
            return
        support = [(int(np.sum((point_index >= a) & (point_index < b))), b - a) for a, b in runs]
        weakest = min(range(len(runs)), key=lambda i: support[i])
        if support[weakest][0] >= min_points:
            return
        a, b = runs[weakest]
        labels[a:b] = ~labels[a:b]


def _segments(falling: np.ndarray) -> list[tuple[str, int, int]]:
    """Name the runs of ``falling``: (phase, start, stop) with half-open grid indices."""
    out = []
    seen_fall = False
    for a, b in _runs(falling):
        if falling[a]:
            phase, seen_fall = "scaling", True
        else:
            phase = "plateau" if seen_fall else "cold_start"
        out.append((phase, a, b))
    return out


def _rising_named(segments: tuple[Segment, ...], flat_drop: float) -> tuple[Segment, ...]:
    """Flat segments whose loss in fact rises by more than ``flat_drop`` per decade are
    ``inverse_scaling``: more of the axis makes the loss worse."""
    return tuple(
        replace(s, phase=INVERSE_SCALING) if s.drop_per_decade < -flat_drop else s for s in segments
    )


def _falling(rate, flat_rate: float, point_index, min_segment_points: int, cold_start_ratio):
    """Where along the grid the law falls (not flat): faster than ``flat_rate`` per decade, and
    not within a leading cold start."""
    flat = rate < flat_rate
    # Cold start: a leading stretch that falls at under `cold_start_ratio` of the steepest
    # rate reached later. That steep rate only counts where at least `min_segment_points`
    # observed x lie at or beyond it, so one run alone cannot make a take-off.
    witnessed = (
        np.arange(rate.size) <= np.sort(point_index)[-min(min_segment_points, point_index.size)]
    )
    steepest_after = np.maximum.accumulate(np.where(witnessed, rate, -np.inf)[::-1])[::-1]
    relatively_flat = rate < cold_start_ratio * steepest_after
    flat |= np.logical_and.accumulate(flat | relatively_flat)
    return ~flat


def _classify(
    law: PhaseLaw,
    x_points: np.ndarray,
    *,
    flat_drop_per_decade: float,
    cold_start_ratio: float,
    min_scaling_decades: float,
    min_segment_points: int,
    chance_loss: float | None,
    chance_tolerance: float,
    loss_unit: float = 1.0,
) -> tuple[str, tuple[Segment, ...], tuple[float, ...], str, float, float]:
    """Phase, segments, breaks and reason; ``x_points``, ``chance_loss`` in the law's units."""
    x_points = np.unique(x_points)  # support is counted in distinct x
    x_min, x_max = float(x_points[0]), float(x_points[-1])
    log10_grid = np.linspace(np.log10(x_min), np.log10(x_max), _GRID_POINTS)
    grid = 10.0**log10_grid
    slope = np.asarray(law.local_slope(grid), dtype=float)
    rate = -slope
    flat_rate = -slope_for_drop(flat_drop_per_decade)
    point_index = np.clip(
        np.searchsorted(log10_grid, np.log10(x_points) - 1e-9), 0, log10_grid.size - 1
    )
    falling = _falling(rate, flat_rate, point_index, min_segment_points, cold_start_ratio)
    _merge_unsupported_runs(falling, point_index, min_segment_points)
    raw = _segments(falling)

    frontier_loss = float(law.predict(np.array([x_max]))[0])
    frontier_slope = float(slope[-1])
    all_flat = len(raw) == 1 and raw[0][0] == "cold_start"
    below_chance = chance_loss is not None and frontier_loss < (1 - chance_tolerance) * chance_loss
    if all_flat and below_chance:
        raw = [("plateau", raw[0][1], raw[0][2])]

    segments = _rising_named(tuple(
        Segment(
            phase=phase,
            x_min=float(grid[a]),
            x_max=float(grid[min(b, grid.size - 1)]),
            slope=float(np.mean(slope[a:b])),
        )
        for phase, a, b in raw
    ), flat_drop_per_decade)  # fmt: skip
    breaks = tuple(float(grid[a]) for _, a, _ in raw[1:])

    phase, reason = phase_and_reason(
        segments, all_flat=all_flat, below_chance=below_chance, chance_loss=chance_loss,
        chance_tolerance=chance_tolerance, frontier_loss=frontier_loss, loss_unit=loss_unit,
        min_scaling_decades=min_scaling_decades,
    )  # fmt: skip
    return phase, segments, breaks, reason, frontier_loss, frontier_slope


# --- the detector ------------------------------------------------------------------------


def detect_phases(
    x: ArrayLike,
    loss: ArrayLike,
    *,
    reduce: Reduce = "min",
    flat_drop_per_decade: float = 0.02,
    cold_start_ratio: float = 0.2,
    min_scaling_decades: float = 1.0,
    min_segment_points: int = 2,
    chance_loss: float | None = None,
    chance_tolerance: float = 0.1,
    min_span_decades: float = 0.5,
    models: Sequence[str] | None = None,
) -> PhaseReport:
    """Detect the phase of one family along one axis from points ``(x, loss)``.

    ``x`` is one axis (N, D or C) and ``loss`` the loss of each run. See the module docstring
    for the rules and the defaults. ``models`` restricts the candidate laws to names from
    :data:`CANDIDATES`. Raises ``ValueError`` on non-positive or non-finite values, naming the
    index.
    """
    names = _checked_models(
        flat_drop_per_decade, cold_start_ratio, chance_loss, chance_tolerance,
        min_segment_points, min_scaling_decades, min_span_decades, models,
    )  # fmt: skip
    settings: dict[str, object] = {
        "reduce": reduce,
        "flat_drop_per_decade": flat_drop_per_decade,
        "cold_start_ratio": cold_start_ratio,
        "min_scaling_decades": min_scaling_decades,
        "min_segment_points": min_segment_points,
        "chance_loss": chance_loss,
        "chance_tolerance": chance_tolerance,
        "min_span_decades": min_span_decades,
    }
    xs, ys, used, n_input = _reduce_points(x, loss, reduce)
    n_distinct = np.unique(xs).size
    x_min = float(xs.min()) if xs.size else 0.0
    x_max = float(xs.max()) if xs.size else 0.0
    span = float(np.log10(x_max / x_min)) if xs.size else 0.0

    report = reporter(xs, used, n_input, x_min, x_max, settings)
    if n_distinct < 3:
        return report("insufficient_data", f"{n_distinct} distinct x; at least 3 are needed")
    if span < min_span_decades:
        return report(
            "insufficient_data",
            f"x spans {span:.2f} decade; at least {min_span_decades} are needed",
        )

    return _fit_and_classify(
        xs, ys, names, report, flat_drop_per_decade=flat_drop_per_decade,
        cold_start_ratio=cold_start_ratio, min_scaling_decades=min_scaling_decades,
        min_segment_points=min_segment_points, chance_loss=chance_loss,
        chance_tolerance=chance_tolerance,
    )  # fmt: skip


def _checked_models(
    flat_drop_per_decade, cold_start_ratio, chance_loss, chance_tolerance, min_segment_points,
    min_scaling_decades, min_span_decades, models,
) -> list[str]:  # fmt: skip
    """The candidate laws to fit, once every setting of :func:`detect_phases` is valid."""
    if not 0.0 < flat_drop_per_decade < 1.0:
        raise ValueError(f"flat_drop_per_decade must lie in (0, 1), got {flat_drop_per_decade}")
    if not 0.0 <= cold_start_ratio < 1.0:
        raise ValueError(f"cold_start_ratio must lie in [0, 1), got {cold_start_ratio}")
    if chance_loss is not None and not (np.isfinite(chance_loss) and chance_loss > 0):
        raise ValueError(f"chance_loss must be finite and > 0, got {chance_loss!r}")
    if not 0.0 <= chance_tolerance < 1.0:
        raise ValueError(f"chance_tolerance must lie in [0, 1), got {chance_tolerance}")
    if min_segment_points < 1 or min_scaling_decades < 0 or min_span_decades < 0:
        raise ValueError(
            "min_segment_points must be >= 1 and min_scaling_decades, min_span_decades >= 0"
        )
    names = list(CANDIDATES) if models is None else list(models)
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {list(CANDIDATES)}")
    return names


def _fit_and_classify(
    xs, ys, names, report, *, flat_drop_per_decade, cold_start_ratio, min_scaling_decades,
    min_segment_points, chance_loss, chance_tolerance,
) -> PhaseReport:  # fmt: skip
    """Fit the candidate laws (in the data's units), keep the best by AICc, classify along it."""
    x_unit = 10.0 ** unit_exponent(xs, *X_UNIT_RANGE)
    loss_unit = 10.0 ** unit_exponent(ys, *LOSS_UNIT_RANGE)
    scores, laws = _fit_candidates(xs / x_unit, ys / loss_unit, names)
    if not scores:
        return report("insufficient_data", f"none of {names} can be scored on {xs.size} points")
    model = min(scores, key=lambda k: (scores[k], CANDIDATES[k]))
    law = laws[model]

    phase, segments, breaks, reason, frontier_loss, frontier_slope = _classify(
        law,
        xs / x_unit,
        flat_drop_per_decade=flat_drop_per_decade,
        cold_start_ratio=cold_start_ratio,
        min_scaling_decades=min_scaling_decades,
        min_segment_points=min_segment_points,
        chance_loss=None if chance_loss is None else chance_loss / loss_unit,
        chance_tolerance=chance_tolerance,
        loss_unit=loss_unit,
    )
    return report(
        phase,
        reason + f" [model {model}]",
        segments=tuple(
            replace(s, x_min=s.x_min * x_unit, x_max=s.x_max * x_unit) for s in segments
        ),
        breaks=tuple(b * x_unit for b in breaks),
        model=model,
        law=law,
        scores=scores,
        frontier_loss=frontier_loss * loss_unit,
        frontier_slope=frontier_slope,
        criterion=_criterion_for(xs.size),
        units={"x": x_unit, "loss": loss_unit},
    )
